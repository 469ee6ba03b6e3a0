"""All preprocessing parameters in one config object, :class:`PrepConfig` (saved with the data).

Sections (dotted keys for ``--set`` and config files, e.g. ``filter.l_freq=0.5``):

``input``     what the reader cannot know (the unit, rate and channel names of ``.ts`` files)
``channels``  which channels, in which order, and how names/positions map to regions
``reference`` optional re-reference (``["average"]`` or channel names)
``filter``    band-pass and notch, applied at the source rate before resampling to 200 Hz
``windows``   window length/stride in seconds (whole 1-s patches), crops, padding of short trials
``labels``    where labels come from: none, annotations/events, one label per recording, trials
``reject``    amplitude / flat-channel / bad-annotation rejection (NaN windows are always rejected)
``store``     storage dtype, compression and shard size of the window store
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Literal

from csbrain import units
from csbrain._checks import check_float, check_int

__all__ = ["PrepConfig", "InputConfig", "ChannelConfig", "FilterConfig", "WindowConfig",
           "LabelConfig", "RejectConfig", "StoreConfig", "config_sha256"]


@dataclass(frozen=True)
class InputConfig:
    """What readers cannot know.

    Parameters
    ----------
    unit : str | None
        Amplitude unit of the numbers a reader returns when it does not know it (``.ts`` files,
        arrays): one of :data:`csbrain.units.UNIT_SCALES`. For MNE-readable files (which MNE
        converts to volts) leave it None; setting it reinterprets MNE's numbers.
    sfreq : float | None
        Sampling rate of ``.ts`` files, in Hz (the format has none).
    channels : tuple of str
        Channel names of ``.ts`` files, in file order.
    allow_truncated : bool
        Keep the readable part of a truncated file (MNE warns) instead of skipping it.
    allow_implausible : bool
        Keep a recording whose typical channel amplitude is implausible for EEG in the unit
        it was read in (:data:`csbrain.data.quality.PLAUSIBLE_UV`; e.g. volts read as µV).
        By default such a recording is skipped with reason ``implausible_amplitude``.
    """

    unit: str | None = None
    sfreq: float | None = None
    channels: tuple[str, ...] = ()
    allow_truncated: bool = False
    allow_implausible: bool = False

    def __post_init__(self) -> None:
        if self.unit is not None:
            units.unit_scale(self.unit)
        if self.sfreq is not None:
            check_float("input.sfreq", self.sfreq, min_value=0.0, inclusive=False)


@dataclass(frozen=True)
class ChannelConfig:
    """Channel picking and mapping through :mod:`csbrain.montage`.

    Parameters
    ----------
    pick : tuple of str
        Names to keep (any alias: ``T3`` finds ``T7``, ``EEG FP1-REF`` finds ``Fp1``), in this
        order; a recording lacking any of them is skipped. Empty: every channel of ``types``.
    types : tuple of str
        MNE channel types considered when ``pick`` is empty.
    exclude : tuple of str
        Names dropped (e.g. ``A1,A2`` reference electrodes).
    positions : str | None
        Electrode positions: None (names only), ``"file"`` (positions the file carries) or an
        MNE standard montage name applied by channel name (e.g. ``"biosemi128"``).
    match : {"names", "positions"}
        ``"positions"``: channel names carry no 10-05 meaning (BioSemi ``A1..D32``); each
        channel keeps its name tagged ``NAME@SOURCE`` and takes the region of the nearest
        10-05 electrode (needs ``positions``).
    nearest_1020 : bool
        Keep only the 19 channels nearest the 10-20 sites of the pretraining montage (one
        channel per site), renamed to those sites (needs positions).
    allow_mixed : bool
        Let recordings of one store resolve to different channel lists. By default every
        recording must give the store's channel list (fixed by the first recording committed)
        so that windows batch together; a recording that differs is skipped.
    """

    pick: tuple[str, ...] = ()
    types: tuple[str, ...] = ("eeg",)
    exclude: tuple[str, ...] = ()
    positions: str | None = None
    match: Literal["names", "positions"] = "names"
    nearest_1020: bool = False
    allow_mixed: bool = False

    def __post_init__(self) -> None:
        if (self.match == "positions" or self.nearest_1020) and self.positions is None:
            raise ValueError("channels.match='positions' and channels.nearest_1020 need "
                             "channels.positions ('file' or an MNE montage name such as "
                             "'biosemi128')")
        if self.nearest_1020 and self.pick:
            raise ValueError("channels.nearest_1020 and channels.pick exclude each other; "
                             "set only one")


@dataclass(frozen=True)
class FilterConfig:
    """Band-pass and notch filters (MNE, zero-phase FIR by default), at the source rate.

    ``l_freq``/``h_freq`` None disable the high-/low-pass edge. ``h_freq`` must be below
    100 Hz (Nyquist of 200 Hz). The filters adapt to each recording's rate
    (:func:`csbrain.data.preprocess.adapt_filter`): a low-pass at or above the recording's
    Nyquist frequency is lowered to 0.9 of it (a 128 Hz recording is low-passed at 57.6 Hz)
    and a notch at or above Nyquist is dropped; the filters applied are recorded in each
    manifest entry (``filter``). Only an ``l_freq`` at or above Nyquist skips a recording
    (reason ``sfreq_too_low``).
    """

    l_freq: float | None = 0.3
    h_freq: float | None = 75.0
    notch: tuple[float, ...] = ()
    method: Literal["fir", "iir"] = "fir"

    def __post_init__(self) -> None:
        nyq = units.SFREQ / 2
        if self.l_freq is not None:
            check_float("filter.l_freq", self.l_freq, min_value=0.0, inclusive=False)
        if self.h_freq is not None:
            check_float("filter.h_freq", self.h_freq, min_value=0.0, max_value=nyq,
                        inclusive=False)
        if self.l_freq is not None and self.h_freq is not None and self.l_freq >= self.h_freq:
            raise ValueError(f"filter.l_freq={self.l_freq} must be below "
                             f"filter.h_freq={self.h_freq}")
        for i, f in enumerate(self.notch):
            check_float(f"filter.notch[{i}]", f, min_value=0.0, inclusive=False)


@dataclass(frozen=True)
class WindowConfig:
    """Cutting into windows of whole 1-s patches (``P = length_s`` patches of 200 samples).

    Parameters
    ----------
    length_s : float
        Window length in seconds, a whole number of patches (the pretraining corpus: 30).
    stride_s : float | None
        Step between continuous windows (None: ``length_s``, no overlap).
    crop_start_s, crop_end_s : float
        Seconds dropped at the start / end of each continuous recording.
    min_duration_s : float
        Recordings shorter than this (before cropping) are skipped.
    detrend : {"none", "mean"}
        ``"mean"``: subtract each channel's mean within each window (short unfiltered trials).
    pad : {"error", "zero"}
        Trials (``.ts``) shorter than ``length_s``: skip (``"error"``) or zero-pad at the
        end (``"zero"``: a 0.5-s trial becomes one patch of which the last half is 0).
        Longer trials are cropped to ``length_s``.
    """

    length_s: float = 30.0
    stride_s: float | None = None
    crop_start_s: float = 0.0
    crop_end_s: float = 0.0
    min_duration_s: float = 0.0
    detrend: Literal["none", "mean"] = "none"
    pad: Literal["error", "zero"] = "error"

    def __post_init__(self) -> None:
        check_float("windows.length_s", self.length_s, min_value=0.0, inclusive=False)
        n = self.length_s * units.SFREQ
        if abs(n - round(n)) > 1e-6 or round(n) % units.PATCH_SIZE:
            raise ValueError(f"windows.length_s={self.length_s} is not a whole number of "
                             f"{units.PATCH_SIZE / units.SFREQ:g}-s patches; expected 1, 2, ...")
        if self.stride_s is not None:
            check_float("windows.stride_s", self.stride_s, min_value=0.0, inclusive=False)
            s = self.stride_s * units.SFREQ
            if abs(s - round(s)) > 1e-6:
                raise ValueError(f"windows.stride_s={self.stride_s} is not a whole number of "
                                 f"samples at {units.SFREQ:g} Hz")
        for name in ("crop_start_s", "crop_end_s", "min_duration_s"):
            check_float(f"windows.{name}", getattr(self, name), min_value=0.0)

    @property
    def n_samples(self) -> int:
        """Window length in samples at :data:`csbrain.units.SFREQ`."""
        return int(round(self.length_s * units.SFREQ))

    @property
    def n_patches(self) -> int:
        """Patches per window."""
        return self.n_samples // units.PATCH_SIZE

    @property
    def stride_samples(self) -> int:
        """Stride in samples at :data:`csbrain.units.SFREQ`."""
        return int(round((self.stride_s or self.length_s) * units.SFREQ))


@dataclass(frozen=True)
class LabelConfig:
    """Where labels come from (``-1`` means unlabelled).

    Parameters
    ----------
    mode : {"none", "events", "recording", "trials"}
        ``"events"``: one window per annotation whose description is a key of ``events``,
        starting ``tmin`` s after its onset; ``"recording"``: continuous windows, all with the
        label of the key of ``recording`` that names the recording; ``"trials"``: the
        labels the trials carry (``.ts`` class labels, arrays). A recording without labels
        in a labelled mode is skipped (reason ``no_labels``).
    events : dict of str to int
        Annotation description -> label.
    recording : dict of str to int
        Recording id -> label. A key matches the whole id (``sub-01_task-EC``), or is a glob
        pattern (``*task-EC*``); keys that match no recording are reported by ``prepare``.
    names : tuple of str
        Label names, by label id (saved in the manifest).
    tmin : float
        Window start relative to each event onset, seconds.
    """

    mode: Literal["none", "events", "recording", "trials"] = "none"
    events: dict[str, int] = field(default_factory=dict)
    recording: dict[str, int] = field(default_factory=dict)
    names: tuple[str, ...] = ()
    tmin: float = 0.0

    def __post_init__(self) -> None:
        if self.mode == "events" and not self.events:
            raise ValueError("labels.mode='events' needs labels.events, a mapping from "
                             "annotation description to label, e.g. {\"face\": 0, \"house\": 1}")
        if self.mode == "recording" and not self.recording:
            raise ValueError("labels.mode='recording' needs labels.recording, a mapping from "
                             "a recording id or glob pattern to its label, e.g. {\"*task-EC*\": 0}")
        for k, v in {**self.events, **self.recording}.items():
            check_int(f"labels[{k!r}]", v, min_value=0)


@dataclass(frozen=True)
class RejectConfig:
    """Window rejection; every rejected window is counted by reason in the manifest.

    Parameters
    ----------
    max_abs : float | None
        Reject windows where ``|x|`` reaches this, in model units (1.0 = 100 µV, the
        pretraining rule). None disables.
    flat_std : float | None
        Reject windows where a channel's standard deviation is below this, model units
        (1e-4 = 0.01 µV). None disables.
    bad_annotations : bool
        Reject windows overlapping annotations whose description starts with ``bad``.
    flat_channels : {"interpolate", "reject"}
        A channel flat over the whole recording (standard deviation below ``flat_std``):
        ``"interpolate"`` replaces it by spherical-spline interpolation from its neighbours
        (MNE; named in the manifest entry's ``interpolated``); ``"reject"`` rejects every
        window as ``flat``.

    Windows containing NaN/inf samples in the source are always rejected (reason ``nan``).
    """

    max_abs: float | None = 1.0
    flat_std: float | None = 1e-4
    bad_annotations: bool = True
    flat_channels: Literal["interpolate", "reject"] = "interpolate"

    def __post_init__(self) -> None:
        for name in ("max_abs", "flat_std"):
            if getattr(self, name) is not None:
                check_float(f"reject.{name}", getattr(self, name), min_value=0.0, inclusive=False)


@dataclass(frozen=True)
class StoreConfig:
    """How windows are stored.

    Parameters
    ----------
    dtype : {"float32", "float16"}
        ``float16`` halves the size; its rounding error is at most 2**-11 (0.05 %) of each
        value (0.024 µV at 50 µV) and values beyond 65504 units (6.5 V) cannot be stored.
    compression : {"blosc-zstd", "zstd", "blosc-lz4", "none"}
    clevel : int
        Compression level.
    windows_per_shard : int
        Windows per shard file; each window is its own chunk inside it (random access).
    """

    dtype: Literal["float32", "float16"] = "float32"
    compression: Literal["blosc-zstd", "zstd", "blosc-lz4", "none"] = "blosc-zstd"
    clevel: int = 3
    windows_per_shard: int = 64

    def __post_init__(self) -> None:
        check_int("store.clevel", self.clevel, min_value=0, max_value=9)
        check_int("store.windows_per_shard", self.windows_per_shard, min_value=1)


@dataclass(frozen=True)
class PrepConfig:
    """Every preprocessing parameter; see the module docstring for the sections.

    The output is always :data:`csbrain.units.SFREQ` Hz, 200-sample patches, model units.
    """

    input: InputConfig = field(default_factory=InputConfig)
    channels: ChannelConfig = field(default_factory=ChannelConfig)
    reference: tuple[str, ...] = ()
    filter: FilterConfig = field(default_factory=FilterConfig)
    windows: WindowConfig = field(default_factory=WindowConfig)
    labels: LabelConfig = field(default_factory=LabelConfig)
    reject: RejectConfig = field(default_factory=RejectConfig)
    store: StoreConfig = field(default_factory=StoreConfig)

    def __post_init__(self) -> None:
        if "average" in self.reference and len(self.reference) > 1:
            raise ValueError(f"reference={list(self.reference)} mixes 'average' with channel "
                             f"names; expected ['average'] or a list of channel names")


def config_sha256(cfg: PrepConfig) -> str:
    """Hex sha256 of the canonical JSON of ``cfg`` (identifies a store's preprocessing)."""
    from csbrain.configio import to_dict

    text = json.dumps(to_dict(cfg), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def replace(cfg: PrepConfig, **sections) -> PrepConfig:
    """``dataclasses.replace`` for one level (e.g. ``replace(cfg, filter=FilterConfig(...))``)."""
    return dataclasses.replace(cfg, **sections)
