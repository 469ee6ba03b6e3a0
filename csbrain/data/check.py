"""What preparation will do to each recording, before any work: :func:`check_recordings`.

For each recording: its channels -> 10-05 names -> regions (unknown names with the closest
valid ones), sampling rate, duration, unit and amplitude statistics per channel (median and
robust range, flagged when implausible for EEG), flat and noisy channels by name, the filters
adapted to its rate, how many windows each rejection rule removes and the options that would
change the outcome. The windows are counted by the preparation code itself
(:func:`csbrain.data.pipeline.prepare_recording`), so the check and ``prepare`` agree.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from csbrain import units
from csbrain._checks import more
from csbrain.data import quality
from csbrain.data.pipeline import prepare_recording
from csbrain.data.prepconfig import PrepConfig
from csbrain.data.preprocess import RecordingError, select_channels
from csbrain.data.readers import ReadError, Recording, Trials, find_recordings, load_recording
from csbrain.data.windows import KEEP_OPTIONS, rejection_text
from csbrain.montage import REGION_NAMES, canonical_name, region_of

logger = logging.getLogger(__name__)

__all__ = ["ChannelCheck", "RecordingCheck", "SKIP_OPTIONS", "check_recording",
           "check_recordings", "summary_line", "as_dict"]

#: The options that change the outcome for each reason a recording is skipped.
SKIP_OPTIONS: dict[str, str] = {
    "unreadable": "input.allow_truncated=true keeps the readable part of a truncated file",
    "no_channels": "channels.types or channels.pick",
    "missing_channels": "channels.pick (only channels the recording has)",
    "unknown_channels": "channels.exclude (drop them), channels.pick, or channels.positions",
    "too_short": "a shorter windows.length_s, smaller windows.crop_start_s/crop_end_s",
    "sfreq_too_low": "a lower filter.l_freq, or filter.l_freq=null",
    "implausible_amplitude": "input.unit (the unit of the numbers), or "
                             "input.allow_implausible=true",
    "flat_channels": "channels.exclude (drop them) or reject.flat_channels=reject",
    "no_labels": "labels.mode, labels.events or labels.recording",
    "bad_input": "see the message",
}


@dataclass
class ChannelCheck:
    """One source channel: its 10-05 name and region, and its amplitude in µV.

    ``canonical`` and ``region`` are None for a name that is not a 10-05 electrode
    (``problem`` then names the closest valid names). ``flags``: ``not-kept`` (excluded by
    the ``channels`` options), ``implausible``, ``flat``, ``noisy``.
    """

    name: str
    canonical: str | None
    region: str | None
    median_uv: float = float("nan")
    p01_uv: float = float("nan")
    p99_uv: float = float("nan")
    std_uv: float = float("nan")
    flags: list[str] = field(default_factory=list)
    problem: str | None = None


@dataclass
class RecordingCheck:
    """What preparation will do to one recording (see the module docstring)."""

    rec_id: str
    source: str | None
    sfreq: float | None = None
    duration_s: float | None = None
    unit: str | None = None
    channels: list[ChannelCheck] = field(default_factory=list)
    annotations: dict[str, int] = field(default_factory=dict)
    n_candidates: int = 0
    n_windows: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    flagged: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    reason: str | None = None
    message: str | None = None
    options: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the recording would prepare into at least one window."""
        return self.reason is None and self.n_windows > 0

    def lines(self) -> list[str]:
        """A human-readable report (a channel table, then the outcome)."""
        head = f"{self.rec_id}: " + ("OK" if self.ok else f"WOULD BE SKIPPED [{self.reason}]")
        out = [head, f"  source {self.source or '(array)'}"]
        if self.sfreq is not None:
            out.append(f"  {self.sfreq:g} Hz, {self.duration_s:.1f} s, read in {self.unit} "
                       f"(stored in model units of {units.MICROVOLTS_PER_UNIT:g} µV at "
                       f"{units.SFREQ:g} Hz)")
        if self.channels:
            out.append(f"  {'channel':<16}{'10-05':<10}{'region':<11}{'median µV':>11}"
                       f"{'p1..p99 µV':>22}{'std µV':>10}  flags")
            for c in self.channels:
                out.append(f"  {c.name:<16}{c.canonical or '?':<10}{c.region or '?':<11}"
                           f"{c.median_uv:>11.3g}{f'{c.p01_uv:.3g}..{c.p99_uv:.3g}':>22}"
                           f"{c.std_uv:>10.3g}  {','.join(c.flags)}")
            for c in self.channels:
                if c.problem:
                    out.append(f"  ! {c.problem}")
        if self.annotations:
            out.append("  annotations (labels.events keys): " + more(
                (f"{k} x{v}" for k, v in self.annotations.items()), 20))
        for note in self.notes:
            out.append(f"  adapted: {note}")
        if self.n_candidates:
            rej = rejection_text(self.rejected) or "none"
            out.append(f"  windows: {self.n_windows} of {self.n_candidates} kept; rejected: "
                       f"{rej}")
            alone = rejection_text(self.flagged)
            if alone and alone != rej:
                out.append(f"  each rule on its own would remove: {alone}")
        first = (self.message or "").splitlines()[:1]
        if first and not any(c.problem == first[0] for c in self.channels):
            out.append(f"  {first[0]}")
        out += [f"  option: {o}" for o in self.options]
        return out


def _channels(raw, cfg: PrepConfig, unit: str) -> list[ChannelCheck]:
    picks = [i for i, t in enumerate(raw.get_channel_types()) if t in cfg.channels.types]
    if not picks:
        return []
    names = [raw.ch_names[i] for i in picks]
    try:
        kept = set(select_channels(raw.ch_names, raw.get_channel_types(), cfg.channels)[0])
    except RecordingError:
        kept = set(names)
    x = units.to_model_units(raw.get_data(picks=picks), unit)
    stats = quality.channel_stats(x)
    flat = set(quality.flat_channels(x - np.nanmedian(x, axis=1, keepdims=True), names,
                                     cfg.reject.flat_std or 1e-4))
    noisy = set(quality.noisy_channels(x, names))
    lo, hi = quality.PLAUSIBLE_UV
    out = []
    for i, name in enumerate(names):
        try:
            canon, problem = canonical_name(name), None
            region = REGION_NAMES[region_of(canon)]
        except ValueError as err:
            canon, region, problem = None, None, str(err)
        std = float(stats["std"][i])
        flags = [f for f, hit in (("not-kept", name not in kept),
                                  ("implausible", np.isfinite(std) and std > 0
                                   and not lo <= std <= hi),
                                  ("flat", name in flat), ("noisy", name in noisy)) if hit]
        problem = problem if name in kept else None
        out.append(ChannelCheck(name, canon, region, float(stats["median"][i]),
                                float(stats["p01"][i]), float(stats["p99"][i]), std, flags,
                                problem))
    return out


def check_recording(rec: Recording, config: PrepConfig | None = None) -> RecordingCheck:
    """Check one recording (see :func:`check_recordings`); never raises for bad data."""
    cfg = config or PrepConfig()
    report = RecordingCheck(rec.rec_id, rec.path)
    try:
        data = load_recording(rec, allow_truncated=cfg.input.allow_truncated)
    except (ReadError, OSError, ValueError) as err:
        report.reason, report.message = "unreadable", str(err)
        report.options = [SKIP_OPTIONS["unreadable"]]
        return report
    if isinstance(data, Trials):
        report.sfreq = data.sfreq or cfg.input.sfreq
        report.unit = data.unit or cfg.input.unit
        if report.sfreq:
            report.duration_s = data.data.shape[0] * data.data.shape[2] / report.sfreq
    else:
        report.sfreq = float(data.info["sfreq"])
        report.duration_s = data.n_times / report.sfreq
        report.unit = cfg.input.unit or "V"
        report.channels = _channels(data, cfg, report.unit)
        report.annotations = dict(Counter(str(d) for d in data.annotations.description))
    _outcome(report, rec, cfg)
    return report


def _outcome(report: RecordingCheck, rec: Recording, cfg: PrepConfig) -> None:
    """Prepare the recording in memory and record what happened."""
    try:
        w = prepare_recording(rec, cfg)
    except RecordingError as err:
        report.reason, report.message = err.reason, str(err)
        report.options.append(SKIP_OPTIONS.get(err.reason, SKIP_OPTIONS["bad_input"]))
        if err.reason != "implausible_amplitude":
            return
        try:  # how the windows would fare if the amplitude were confirmed
            confirmed = dataclasses.replace(
                cfg, input=dataclasses.replace(cfg.input, allow_implausible=True),
                reject=dataclasses.replace(cfg.reject, flat_channels="reject"))
            w = prepare_recording(rec, confirmed)
        except RecordingError:
            return
        report.n_candidates, report.rejected = w.n_candidates, dict(w.rejected)
        report.flagged = dict(w.flagged)
        return
    report.n_candidates, report.n_windows = w.n_candidates, len(w.x)
    report.rejected, report.notes = dict(w.rejected), list(w.notes)
    report.flagged = dict(w.flagged)
    if not len(w.x):
        report.reason = "no_windows"
    report.options += [f"{k}: {KEEP_OPTIONS[k]}" for k, v in w.rejected.items() if v]


def check_recordings(recordings: Sequence[Recording | str | os.PathLike],
                     config: PrepConfig | None = None) -> list[RecordingCheck]:
    """What ``prepare`` would do to each recording, without writing anything.

    Parameters
    ----------
    recordings : sequence of Recording or path-like
        Recordings (from :func:`csbrain.data.readers.find_recordings` or
        :func:`csbrain.data.sources.resolve_sources`), or files and folders to find them in.
    config : PrepConfig | None
        The preprocessing to check against (None: defaults).

    Returns
    -------
    list of RecordingCheck
        One per recording, in order; ``ok`` is True for those that would prepare into at
        least one window.

    Examples
    --------
    >>> from csbrain.data import check_recordings
    >>> for report in check_recordings(["recordings/"]):  # doctest: +SKIP
    ...     print("\\n".join(report.lines()))
    """
    paths = [r for r in recordings if not isinstance(r, Recording)]
    recs = [r for r in recordings if isinstance(r, Recording)]
    if paths:
        recs += find_recordings(paths)
    return [check_recording(r, config) for r in recs]


def summary_line(reports: Sequence[RecordingCheck]) -> str:
    """``"3 recordings: 2 would prepare (57 windows), 1 would be skipped (too_short 1)"``."""
    ok = [r for r in reports if r.ok]
    bad: dict[str, int] = {}
    for r in reports:
        if not r.ok:
            bad[r.reason or "no_windows"] = bad.get(r.reason or "no_windows", 0) + 1
    text = (f"{len(reports)} recordings: {len(ok)} would prepare "
            f"({sum(r.n_windows for r in ok)} windows)")
    if bad:
        text += f", {len(reports) - len(ok)} would be skipped (" + ", ".join(
            f"{k} {v}" for k, v in bad.items()) + ")"
    return text


def as_dict(report: RecordingCheck) -> dict[str, Any]:
    """The report as JSON-ready data."""
    return dataclasses.asdict(report) | {"ok": report.ok}
