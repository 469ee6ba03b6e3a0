"""Prepare recordings into a window store: parallel, resumable, idempotent.

One joblib task per recording reads, preprocesses and writes the recording into its own
staging folder; the calling process commits the staged groups one by one, in source order,
with an atomic rename (so the store's channel list and the manifest never depend on which
worker finished first). Recordings already committed are skipped, so a killed preparation
re-run with the same arguments gives the same store as an uninterrupted run. A recording that
cannot be prepared is a counted skip (reason code + message in the summary and the manifest).
"""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from csbrain import units
from csbrain.data.prepconfig import PrepConfig
from csbrain.data.preprocess import RecordingError
from csbrain.data.readers import ReadError, Recording, Trials, load_recording, source_sha256
from csbrain.data.store import UNITS, WindowStore, write_windows
from csbrain.data.windows import REJECT_REASONS, Windows, preprocess_raw, preprocess_trials

logger = logging.getLogger(__name__)

__all__ = ["prepare", "prepare_recording", "RecordingResult", "PrepareSummary"]


@dataclass
class RecordingResult:
    """Outcome of one recording: ``status`` is ``prepared``, ``skipped`` or ``done`` (already
    in the store)."""

    rec_id: str
    status: str
    n_windows: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    reason: str | None = None
    message: str | None = None
    staged: str | None = None
    entry: dict[str, Any] | None = None


@dataclass
class PrepareSummary:
    """What a :func:`prepare` call did (this run) and what the store holds."""

    store: str
    n_sources: int
    prepared: int = 0
    already: int = 0
    skipped: dict[str, tuple[str, str]] = field(default_factory=dict)
    windows_kept: int = 0
    windows_rejected: dict[str, int] = field(default_factory=dict)
    store_recordings: int = 0
    store_windows: int = 0

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        rej = ", ".join(f"{k} {v}" for k, v in self.windows_rejected.items() if v) or "none"
        out = [f"store {self.store}: {self.store_recordings} recordings, "
               f"{self.store_windows} windows",
               f"this run: {self.n_sources} sources: {self.prepared} prepared, {self.already} "
               f"already in the store, {len(self.skipped)} skipped",
               f"windows kept {self.windows_kept}; rejected {sum(self.windows_rejected.values())}"
               f" ({rej})"]
        for rec_id, (reason, msg) in sorted(self.skipped.items()):
            out.append(f"  skipped {rec_id} [{reason}]: {msg.splitlines()[0]}")
        return out


def prepare_recording(rec: Recording, cfg: PrepConfig) -> Windows:
    """Read and preprocess one recording in memory (no store).

    Raises
    ------
    RecordingError
        With a reason code (unreadable files become ``unreadable``).
    """
    try:
        data = load_recording(rec, allow_truncated=cfg.input.allow_truncated)
    except (ReadError, FileNotFoundError) as err:
        raise RecordingError("unreadable", str(err)) from None
    if isinstance(data, Trials):
        return preprocess_trials(data, cfg, rec_id=rec.rec_id)
    return preprocess_raw(data, cfg, rec_id=rec.rec_id)


def _entry(rec: Recording, w: Windows, cfg: PrepConfig) -> dict[str, Any]:
    m = w.montage
    counts = Counter(int(v) for v in w.y)
    return {
        "id": rec.rec_id, "kind": rec.kind, "source": rec.path,
        "source_sha256": source_sha256(rec), "subject": rec.subject, "session": rec.session,
        "task": rec.task, "run": rec.run, "split": rec.split,
        "channels": list(m.canonical), "source_channels": list(w.source_channels),
        "regions": list(m.regions), "order": list(m.order), "montage": m.to_dict(),
        "sfreq": units.SFREQ, "source_sfreq": w.source_sfreq, "units": UNITS,
        "dtype": cfg.store.dtype, "n_patches": cfg.windows.n_patches,
        "n_windows": int(len(w.x)), "n_candidates": int(w.n_candidates),
        "rejected": dict(w.rejected), "labels": {str(k): counts[k] for k in sorted(counts)},
        "label_names": list(cfg.labels.names), "duration_s": round(float(w.duration_s), 6),
    }


def _stage(rec: Recording, cfg: PrepConfig, stage_dir: str) -> RecordingResult:
    """Worker: prepare one recording and write it to ``stage_dir`` (never raises)."""
    try:
        w = prepare_recording(rec, cfg)
        entry = _entry(rec, w, cfg)
        write_windows(stage_dir, w.x, w.y, w.start, entry, cfg.store)
    except RecordingError as err:
        shutil.rmtree(stage_dir, ignore_errors=True)
        return RecordingResult(rec.rec_id, "skipped", reason=err.reason, message=str(err))
    except Exception as err:  # one bad recording must not stop a multi-file preparation
        shutil.rmtree(stage_dir, ignore_errors=True)
        logger.debug("recording %s failed", rec.rec_id, exc_info=True)
        return RecordingResult(rec.rec_id, "skipped", reason="bad_input",
                               message=f"{type(err).__name__}: {err}")
    return RecordingResult(rec.rec_id, "prepared", n_windows=len(w.x), rejected=w.rejected,
                           staged=stage_dir, entry=entry)


def _commit(store: WindowStore, res: RecordingResult, cfg: PrepConfig) -> RecordingResult:
    if res.status != "prepared":
        return res
    if not cfg.channels.allow_mixed:
        wanted = store.claim_channels(res.entry["channels"])
        if wanted != res.entry["channels"]:
            shutil.rmtree(res.staged, ignore_errors=True)
            return RecordingResult(res.rec_id, "skipped", reason="channels_differ", message=(
                f"its channels {res.entry['channels'][:20]} differ from the store's "
                f"{wanted[:20]}; pick the same channels (channels.pick) or set "
                f"channels.allow_mixed=true"))
    store.commit(res.staged, res.rec_id)
    return res


def prepare(recordings: Sequence[Recording], out: str | Path, config: PrepConfig | None = None,
            *, jobs: int = 1, overwrite: bool = False,
            progress: Callable[[RecordingResult], None] | None = None) -> PrepareSummary:
    """Prepare recordings into the window store ``out`` (resumable, idempotent).

    Parameters
    ----------
    recordings : sequence of Recording
        From :func:`csbrain.data.readers.find_recordings` or
        :func:`csbrain.data.sources.resolve_sources`; ids must be unique.
    out : path-like
        Store folder (created if absent; reused if it holds a store with the same config).
    config : PrepConfig | None
        None: defaults.
    jobs : int
        Parallel worker processes (joblib); ``-1``: all cores.
    overwrite : bool
        Replace a store at ``out`` made with other parameters.
    progress : callable | None
        Called with each :class:`RecordingResult`, in source order.

    Returns
    -------
    PrepareSummary

    Raises
    ------
    StoreError
        ``out`` holds a store with other parameters, or something that is not a store.
    """
    from joblib import Parallel, delayed

    cfg = config or PrepConfig()
    ids = [r.rec_id for r in recordings]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"recording ids {dup} occur more than once; ids must be unique")
    store = WindowStore.create(out, cfg, overwrite=overwrite)
    store.lock()
    summary = PrepareSummary(store=str(store.path), n_sources=len(recordings),
                             windows_rejected={r: 0 for r in REJECT_REASONS})
    try:
        store.clean_staging()
        done = set(store.recordings())
        todo = [r for r in recordings if r.rec_id not in done]
        for r in recordings:
            if r.rec_id in done:
                summary.already += 1
                if progress:
                    progress(RecordingResult(r.rec_id, "done"))
        tasks = (delayed(_stage)(r, cfg, str(store.stage_dir(r.rec_id))) for r in todo)
        results = Parallel(n_jobs=jobs, return_as="generator")(tasks) if todo else []
        for res in results:
            res = _commit(store, res, cfg)
            if res.status == "prepared":
                summary.prepared += 1
                summary.windows_kept += res.n_windows
                for key, v in res.rejected.items():
                    summary.windows_rejected[key] = summary.windows_rejected.get(key, 0) + v
            else:
                summary.skipped[res.rec_id] = (res.reason or "bad_input", res.message or "")
                rec = next(r for r in todo if r.rec_id == res.rec_id)
                store.mark_skipped(res.rec_id, res.reason or "bad_input", res.message or "",
                                   rec.path)
                logger.warning("skipped %s [%s]: %s", res.rec_id, res.reason, res.message)
            if progress:
                progress(res)
        manifest = store.write_manifest()
    finally:
        store.unlock()
    summary.store_recordings = manifest["n_recordings"]
    summary.store_windows = manifest["n_windows"]
    return summary


def concat_windows(parts: Sequence[tuple[Recording, Windows]]) -> dict[str, Any]:
    """Concatenate prepared recordings (same channel list) into arrays (used by loaders)."""
    if not parts:
        raise ValueError("no recording could be prepared")
    chans = [tuple(w.montage.canonical) for _, w in parts]
    if len(set(chans)) > 1:
        raise ValueError(f"recordings resolve to different channel lists {sorted(set(chans))[:2]}")
    x = np.concatenate([w.x for _, w in parts])
    return {"x": x, "y": np.concatenate([w.y for _, w in parts]),
            "subject": np.array(sum(([r.subject or ""] * len(w.x) for r, w in parts), [])),
            "split": np.array(sum(([r.split or ""] * len(w.x) for r, w in parts), [])),
            "recording": np.array(sum(([r.rec_id] * len(w.x) for r, w in parts), [])),
            "start": np.concatenate([w.start for _, w in parts]),
            "duration_s": {r.rec_id: float(w.duration_s) for r, w in parts},
            "montage": parts[0][1].montage}
