"""The :class:`Montage` value object, the released presets and :func:`resolve_montage`."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from csbrain._checks import CSBrainError, CSBrainTypeError, closest
from csbrain._montage_geometry import check_positions, positions_from_chs, sort_by_ring
from csbrain.configio import to_dict as _to_dict
from csbrain.montage.rules import _REGIONS_HELP, N_REGIONS, REGION_NAMES, _label, _site, _tables

__all__ = ["Montage", "list_presets", "resolve_montage"]


# ---------------------------------------------------------------------------- validation
def _as_tuple(field: str, value: Any) -> tuple:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence | np.ndarray):
        raise CSBrainTypeError(f"{field} must be a sequence, got {type(value).__name__}")
    return tuple(value)


def _names(field: str, value: Any) -> tuple[str, ...]:
    """A sequence of non-blank str, as a tuple of str."""
    values = _as_tuple(field, value)
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise CSBrainTypeError(f"{field}[{i}]={v!r} must be a str")
        if not v.strip():
            raise CSBrainError(f"{field}[{i}]={v!r} is blank; expected a channel name")
    return tuple(str(v) for v in values)  # numpy str_ -> str


def _indices(field: str, value: Any, hi: int, what: str) -> tuple[int, ...]:
    """A sequence of integers in ``0..hi`` (not bool), as a tuple of int."""
    values = _as_tuple(field, value)
    for i, v in enumerate(values):
        if isinstance(v, bool | np.bool_) or not isinstance(v, int | np.integer) \
                or not 0 <= v <= hi:
            raise CSBrainError(f"{field}[{i}]={v!r} {what}")
    return tuple(int(v) for v in values)


def _repeated(values: Sequence) -> list:
    return sorted(k for k, c in Counter(values).items() if c > 1)


def _check_montage(m: Montage) -> None:
    """Refuse a montage whose fields disagree (see :class:`Montage`)."""
    n = len(m.channels)
    for field in ("canonical", "regions", "order"):
        if len(getattr(m, field)) != n:
            raise CSBrainError(f"{field} has {len(getattr(m, field))} entries but channels has "
                               f"{n}; expected one per channel")
    if _repeated(m.channels):
        raise CSBrainError(f"channels has duplicate names {_repeated(m.channels)}; expected "
                           f"unique names")
    same = _repeated(m.canonical)
    if same:
        groups = [[ch for ch, c in zip(m.channels, m.canonical) if c == s] for s in same]
        raise CSBrainError(f"channels {groups} are the same electrode(s) {same}; expected each "
                           f"electrode once")
    if _repeated(m.order):
        raise CSBrainError(f"order repeats indices {_repeated(m.order)}; expected a permutation "
                           f"of range({n})")
    for k in range(1, n):
        a, b = m.order[k - 1], m.order[k]
        if m.regions[b] < m.regions[a]:
            raise CSBrainError(
                f"regions[order] must be non-decreasing (regions contiguous in ascending id); "
                f"order[{k}]={b} has region {m.regions[b]} after order[{k - 1}]={a} "
                f"with region {m.regions[a]}")
    if m.preset is not None and not isinstance(m.preset, str):
        raise CSBrainTypeError(f"preset={m.preset!r} must be a str or None")


# ---------------------------------------------------------------------------- presets
@functools.lru_cache(maxsize=1)
def _presets() -> dict[str, dict]:
    text = resources.files("csbrain").joinpath("resources/montage_presets.json").read_text("utf-8")
    return json.loads(text)["presets"]


def list_presets() -> list[str]:
    """Return the preset names (the released per-dataset tables, plus ``PhysioNet-MI``)."""
    return list(_presets())


# ---------------------------------------------------------------------------- the value object
@dataclass(frozen=True, repr=False)
class Montage:
    """Channels, their canonical names, regions and the region-sorting permutation.

    A validated value object: construction refuses empty, mistyped or inconsistent contents
    (lengths differ, a region outside 0..4, ``order`` not a permutation or not sorting the
    regions, a duplicate channel or electrode) with a message naming the field and value.

    Parameters
    ----------
    channels : tuple of str
        Channel names as given, input order; unique, not blank.
    canonical : tuple of str
        Canonical 10-05 names (bipolar pairs canonicalised on both sides); unique.
    regions : tuple of int
        Region id (0..4, see :data:`REGION_NAMES`) per input channel.
    order : tuple of int
        Permutation of ``range(n)``; ``x[:, order]`` is the sorted layout and
        ``regions[order]`` is non-decreasing.
    preset : str | None
        Preset name if built with :meth:`from_preset`.
    """

    channels: tuple[str, ...]
    canonical: tuple[str, ...]
    regions: tuple[int, ...]
    order: tuple[int, ...]
    preset: str | None = None

    def __post_init__(self) -> None:
        fix = functools.partial(object.__setattr__, self)  # frozen: normalise in place
        fix("channels", _names("channels", self.channels))
        if not self.channels:
            raise CSBrainError("channels is empty; a montage needs at least one channel")
        n = len(self.channels)
        fix("canonical", _names("canonical", self.canonical))
        fix("regions", _indices("regions", self.regions, N_REGIONS - 1,
                                "is not a region id; expected " + _REGIONS_HELP))
        fix("order", _indices("order", self.order, n - 1,
                              f"is not a channel index; expected 0..{n - 1}"))
        _check_montage(self)

    # ----------------------------------------------------------------- properties
    @property
    def n_chans(self) -> int:
        """Number of channels."""
        return len(self.channels)

    @property
    def sorted_regions(self) -> tuple[int, ...]:
        """``regions[order]`` (non-decreasing)."""
        return tuple(self.regions[i] for i in self.order)

    @property
    def region_sizes(self) -> tuple[int, ...]:
        """Number of channels per region id (5 ints, zeros allowed)."""
        counts = Counter(self.regions)
        return tuple(counts.get(r, 0) for r in range(N_REGIONS))

    @property
    def sorted_channels(self) -> tuple[str, ...]:
        """Channel names in sorted (model) order."""
        return tuple(self.channels[i] for i in self.order)

    def __len__(self) -> int:
        return len(self.channels)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{REGION_NAMES[r]} {s}" for r, s in enumerate(self.region_sizes))
        src = f"preset={self.preset!r}" if self.preset else "from names"
        return f"<Montage | {self.n_chans} channels, {src}; {sizes}>"

    # ---------------------------------------------------------------- constructors
    @classmethod
    def from_names(cls, names: Sequence[str],
                   positions: Mapping[str, Sequence[float]] | None = None) -> Montage:
        """Build a montage from channel names with the csbrain region rule and ring order.

        Parameters
        ----------
        names : sequence of str
            Channel names in input order (see :func:`canonical_name` for what is accepted).
        positions : dict | None
            Optional ``{name: (x, y, z)}`` in metres, MNE head frame. Required for names that
            are not 10-05 electrodes (they take the region of the nearest template
            electrode and keep their name); for known names it replaces the template
            position in the ring order, and when it lies more than
            ``NAME_POSITION_TOLERANCE`` (5 cm) from the named 10-05 site the position wins:
            the name is treated as a label only (e.g. BioSemi ``A1`` is the vertex, not the
            10-05 ``A1`` by the ear). See :func:`channel_site`.

        Returns
        -------
        Montage
        """
        names = _names("names", names)
        if _repeated(names):
            raise CSBrainError(f"names has duplicate channels {_repeated(names)}; expected "
                               f"unique names")
        given = check_positions(names, positions)
        t = _tables()
        sites, errors = [], []
        for name in names:
            try:
                sites.append(_site(name, given.get(name), t))
            except CSBrainError as err:
                errors.append(str(err))
        if errors:
            raise CSBrainError("\n".join(errors))
        canon = tuple(s.canonical for s in sites)
        regions = tuple(s.region for s in sites)
        return cls(names, canon, regions, sort_by_ring(canon, regions,
                                                       [s.position for s in sites], N_REGIONS))

    @classmethod
    def from_preset(cls, name: str) -> Montage:
        """Return a released per-dataset table (or ``PhysioNet-MI``) by name (any case).

        Parameters
        ----------
        name : str
            One of :func:`list_presets`.

        Returns
        -------
        Montage
        """
        presets = _presets()
        match = {k.lower(): k for k in presets}.get(str(name).lower())
        if match is None:
            near = closest(str(name), list(presets), n=3)
            hint = f" Did you mean {', '.join(repr(n) for n in near)}?" if near else ""
            raise CSBrainError(f"preset={name!r} is unknown; expected one of {list(presets)}."
                               f"{hint}")
        p = presets[match]
        t = _tables()
        canon = tuple(_label(c, t) for c in p["channels"])
        return cls(tuple(p["channels"]), canon, tuple(p["regions"]), tuple(p["order"]), match)

    @classmethod
    def from_info(cls, info: Any) -> Montage:
        """Build a montage from the EEG channels of an :class:`mne.Info` (bads included).

        Positions are read from ``info['chs'][i]['loc'][:3]`` where set (non-zero, finite).

        Parameters
        ----------
        info : mne.Info

        Returns
        -------
        Montage
        """
        import mne

        if not isinstance(info, mne.Info):
            raise CSBrainTypeError(f"info must be an mne.Info, got {type(info).__name__}")
        picks = mne.pick_types(info, meg=False, eeg=True, exclude=[])
        if len(picks) == 0:
            raise CSBrainError("info has no EEG channels; expected at least one channel of "
                               "type 'eeg'")
        names = [info["ch_names"][i] for i in picks]
        positions = positions_from_chs([info["chs"][i] for i in picks])
        return cls.from_names(names, positions or None)

    def to_dict(self) -> dict:
        """Return a JSON-serialisable dict (inverse of :meth:`from_dict`)."""
        return _to_dict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Montage:
        """Rebuild a montage from :meth:`to_dict` output (``canonical``/``preset`` optional).

        Unknown keys are refused (with the closest valid key); a missing ``canonical`` is
        derived from the channel names (canonical name, else the name itself).
        """
        if not isinstance(d, Mapping):
            raise CSBrainTypeError(f"d must be a dict, got {type(d).__name__}")
        fields = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in d if k not in fields]
        if unknown:
            hints = {k: closest(str(k), fields, n=1) for k in unknown}
            raise CSBrainError(f"montage dict has unknown keys {unknown} (closest: {hints}); "
                               f"expected keys among {fields}")
        missing = [k for k in ("channels", "regions", "order") if k not in d]
        if missing:
            raise CSBrainError(f"montage dict lacks keys {missing}; expected keys among {fields} "
                               f"(canonical and preset are optional)")
        channels = _as_tuple("channels", d["channels"])
        canon = d.get("canonical")
        if canon is None:
            t = _tables()
            canon = tuple(_label(c, t) if isinstance(c, str) else c for c in channels)
        return cls(channels, canon, d["regions"], d["order"], d.get("preset"))


def resolve_montage(spec: Any) -> Montage:
    """Turn a montage specification into a :class:`Montage`.

    Parameters
    ----------
    spec : Montage | str | sequence of str | mne.Info | dict
        A montage; a preset name; channel names (:meth:`Montage.from_names`); an
        :class:`mne.Info` (:meth:`Montage.from_info`); or a :meth:`Montage.to_dict` dict.

    Returns
    -------
    Montage
    """
    if isinstance(spec, Montage):
        return spec
    if type(spec).__name__ == "Info":
        return Montage.from_info(spec)
    if isinstance(spec, str):
        return Montage.from_preset(spec)
    if isinstance(spec, Mapping) and "channels" in spec and "order" in spec:
        return Montage.from_dict(spec)
    if isinstance(spec, Sequence | np.ndarray):
        return Montage.from_names(list(spec))
    raise CSBrainTypeError(f"montage={spec!r} is not understood; expected a Montage, a preset "
                           f"name (one of {list_presets()}), a list of channel names or an "
                           f"mne.Info")
