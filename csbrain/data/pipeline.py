"""Prepare recordings into a window store: parallel, resumable, idempotent.

One joblib task per recording reads, preprocesses and writes the recording into its own
staging folder; the calling process commits the staged groups one by one, in source order,
with an atomic rename (so the store's channel list and the manifest never depend on which
worker finished first). Recordings already committed are skipped, so a killed preparation
re-run with the same arguments gives the same store as an uninterrupted run. A recording that
cannot be prepared is a counted skip (reason code + message in the summary and the manifest);
so is one whose every window is rejected (reason ``no_windows``, with the option that keeps
them). A source file whose sha256 differs from the one recorded is prepared again and replaces
its recording. A file-system error while writing the store (disk full, permission denied)
stops the run with :class:`~csbrain.data.store.StoreError`; the recordings committed before it
stay, and rerunning the same command resumes.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from csbrain import units
from csbrain._checks import more
from csbrain.data.labels import label_key_matches
from csbrain.data.prepconfig import PrepConfig
from csbrain.data.preprocess import RecordingError
from csbrain.data.readers import (
    ReadError,
    Recording,
    Trials,
    load_recording,
    source_sha256,
    source_stat,
)
from csbrain.data.store import UNITS, StoreError, WindowStore, write_windows
from csbrain.data.windows import (
    REJECT_REASONS,
    Windows,
    preprocess_raw,
    preprocess_trials,
    rejection_text,
)

logger = logging.getLogger(__name__)

__all__ = ["prepare", "prepare_recording", "RecordingResult", "PrepareSummary",
           "unmatched_label_keys"]


#: Skipped recordings listed one per line in the summary (the manifest lists every one).
_LISTED = 20


@dataclass
class RecordingResult:
    """Outcome of one recording: ``status`` is ``prepared``, ``skipped``, ``done`` (already
    in the store) or ``failed`` (the store could not be written: the run stops)."""

    rec_id: str
    status: str
    n_windows: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    reason: str | None = None
    message: str | None = None
    staged: str | None = None
    entry: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


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
    changed: list[str] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=dict)
    unmatched_labels: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        rej = rejection_text(self.windows_rejected) or "none"
        out = [f"store {self.store}: {self.store_recordings} recordings, "
               f"{self.store_windows} windows",
               f"this run: {self.n_sources} sources: {self.prepared} prepared, {self.already} "
               f"already in the store, {len(self.skipped)} skipped",
               f"windows kept {self.windows_kept}; rejected {sum(self.windows_rejected.values())}"
               f" ({rej})"]
        if self.changed:
            out.append(f"prepared again (source file changed): {more(self.changed)}")
        for note, ids in sorted(self.notes.items()):
            out.append(f"adapted: {note} ({len(ids)} recording(s): {more(ids, 5)})")
        if self.unmatched_labels:
            out.append(f"labels.recording keys that matched no recording: "
                       f"{more(self.unmatched_labels)}")
        skipped = sorted(self.skipped.items())
        for rec_id, (reason, msg) in skipped[:_LISTED]:
            out.append(f"  skipped {rec_id} [{reason}]: {msg.splitlines()[0]}")
        if len(skipped) > _LISTED:
            out.append(f"  … and {len(skipped) - _LISTED} more skipped (the manifest lists all)")
        return out

    def no_window_lines(self) -> list[str]:
        """Why the store holds no window, with the options that keep some ([] if it has one)."""
        if self.store_windows:
            return []
        out = [f"no window could be prepared into {self.store}"]
        if sum(self.windows_rejected.values()):
            out.append(f"windows rejected: {rejection_text(self.windows_rejected, options=True)}")
        reasons = Counter(reason for reason, _ in self.skipped.values())
        if reasons:
            out.append("recordings skipped: " + ", ".join(f"{r} {n}" for r, n in
                                                          reasons.most_common()))
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
    except (ReadError, OSError) as err:
        raise RecordingError("unreadable", str(err)) from None
    if isinstance(data, Trials):
        return preprocess_trials(data, cfg, rec_id=rec.rec_id)
    return preprocess_raw(data, cfg, rec_id=rec.rec_id)


def _entry(rec: Recording, w: Windows, cfg: PrepConfig) -> dict[str, Any]:
    m = w.montage
    counts = Counter(int(v) for v in w.y)
    return {
        "id": rec.rec_id, "kind": rec.kind, "source": rec.path,
        "source_sha256": source_sha256(rec), "source_stat": source_stat(rec),
        "subject": rec.subject, "session": rec.session,
        "task": rec.task, "run": rec.run, "split": rec.split,
        "channels": list(m.canonical), "source_channels": list(w.source_channels),
        "regions": list(m.regions), "order": list(m.order), "montage": m.to_dict(),
        "sfreq": units.SFREQ, "source_sfreq": w.source_sfreq, "units": UNITS,
        "dtype": cfg.store.dtype, "n_patches": cfg.windows.n_patches,
        "n_windows": int(len(w.x)), "n_candidates": int(w.n_candidates),
        "rejected": dict(w.rejected), "labels": {str(k): counts[k] for k in sorted(counts)},
        "label_names": list(cfg.labels.names), "duration_s": round(float(w.duration_s), 6),
        "filter": dict(w.filter), "interpolated": list(w.interpolated), "notes": list(w.notes),
    }


_WATCHDOG: list[threading.Thread] = []


def _exit_with_parent(parent: int) -> None:
    """In a worker process: exit as soon as ``parent`` (the preparing process) is gone.

    A killed ``prepare --jobs N`` would otherwise leave its workers computing (and the pool
    idling) after it; this thread notices within a second that the worker was re-parented.
    """
    if os.getpid() == parent or _WATCHDOG:
        return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    _WATCHDOG.append(threading.Thread(target=watch, name="csbrain-exit-with-parent",
                                      daemon=True))
    _WATCHDOG[0].start()


def _stage(rec: Recording, cfg: PrepConfig, stage_dir: str, parent: int = 0
           ) -> RecordingResult:
    """Worker: prepare one recording and write it to ``stage_dir`` (never raises).

    ``parent``: the pid of the preparing process; a worker process exits when it dies.
    """
    if parent:
        _exit_with_parent(parent)
    try:
        w = prepare_recording(rec, cfg)
        if len(w.x) == 0:
            return RecordingResult(rec.rec_id, "skipped", rejected=w.rejected,
                                   reason="no_windows", message=(
                f"all {w.n_candidates} windows were rejected: "
                f"{rejection_text(w.rejected, options=True) or 'none was cut'}"))
        entry = _entry(rec, w, cfg)
    except RecordingError as err:
        return RecordingResult(rec.rec_id, "skipped", reason=err.reason, message=str(err))
    except Exception as err:  # one bad recording must not stop a multi-file preparation
        logger.debug("recording %s failed", rec.rec_id, exc_info=True)
        return RecordingResult(rec.rec_id, "skipped", reason="bad_input",
                               message=f"{type(err).__name__}: {err}")
    try:
        write_windows(stage_dir, w.x, w.y, w.start, entry, cfg.store)
    except OSError as err:  # disk full, permission denied: the whole run stops
        shutil.rmtree(stage_dir, ignore_errors=True)
        return RecordingResult(rec.rec_id, "failed", message=f"{err.strerror or err} "
                               f"({err.filename or stage_dir})")
    except ValueError as err:  # e.g. values that do not fit store.dtype
        shutil.rmtree(stage_dir, ignore_errors=True)
        return RecordingResult(rec.rec_id, "skipped", reason="bad_input", message=str(err))
    return RecordingResult(rec.rec_id, "prepared", n_windows=len(w.x), rejected=w.rejected,
                           staged=stage_dir, entry=entry, notes=list(w.notes))


def _commit(store: WindowStore, res: RecordingResult, cfg: PrepConfig,
            replace: bool) -> RecordingResult:
    if res.status != "prepared":
        if replace:
            store.remove(res.rec_id)  # a changed source that no longer prepares
        return res
    if not cfg.channels.allow_mixed:
        wanted = store.claim_channels(res.entry["channels"])
        if wanted != res.entry["channels"]:
            shutil.rmtree(res.staged, ignore_errors=True)
            return RecordingResult(res.rec_id, "skipped", reason="channels_differ", message=(
                f"its channels [{more(res.entry['channels'], 20)}] differ from the store's "
                f"[{more(wanted, 20)}]; pick the same channels (channels.pick) or set "
                f"channels.allow_mixed=true"))
    store.commit(res.staged, res.rec_id, replace=replace)
    return res


def _changed(store: WindowStore, recordings: Sequence[Recording], done: set[str]) -> set[str]:
    """Ids of committed recordings whose source file no longer has the recorded sha256.

    Only files whose size or modification time differ from the recorded ones are hashed
    again, so resuming a large preparation does not read every source twice.
    """
    out = set()
    for r in recordings:
        if r.rec_id in done and r.path is not None:
            entry = store.entry(r.rec_id)
            try:
                if source_stat(r) == entry.get("source_stat"):
                    continue
                now = source_sha256(r)
            except OSError:
                continue  # an unreadable source keeps its committed recording
            if now != entry.get("source_sha256", now):
                logger.info("source of %s changed since it was prepared", r.rec_id)
                out.add(r.rec_id)
    return out


def unmatched_label_keys(recordings: Sequence[Recording], cfg: PrepConfig) -> list[str]:
    """``labels.recording`` keys (``labels.mode="recording"``) that name none of
    ``recordings`` (exact ids or glob patterns, :func:`~csbrain.data.windows.label_key_matches`).
    """
    if cfg.labels.mode != "recording":
        return []
    return [k for k in cfg.labels.recording
            if not any(label_key_matches(k, r.rec_id) for r in recordings)]


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
                             windows_rejected={r: 0 for r in REJECT_REASONS},
                             unmatched_labels=unmatched_label_keys(recordings, cfg))
    if summary.unmatched_labels:
        logger.warning("labels.recording keys that match no recording id: %s (keys match the "
                       "whole id, or are glob patterns such as '*task-EC*')",
                       more(summary.unmatched_labels))
    try:
        store.clean_staging()
        done = set(store.recordings())
        changed = _changed(store, recordings, done)
        summary.changed = sorted(changed)
        todo = [r for r in recordings if r.rec_id not in done or r.rec_id in changed]
        for r in recordings:
            if r.rec_id in done and r.rec_id not in changed:
                summary.already += 1
                if progress:
                    progress(RecordingResult(r.rec_id, "done"))
        by_id = {r.rec_id: r for r in todo}
        tasks = (delayed(_stage)(r, cfg, str(store.stage_dir(r.rec_id)), os.getpid())
                 for r in todo)
        results = Parallel(n_jobs=jobs, return_as="generator")(tasks) if todo else []
        for res in results:
            if res.status == "failed":
                raise StoreError(f"cannot write recording {res.rec_id!r} into store "
                                 f"{str(store.path)!r}: {res.message}; the store keeps the "
                                 f"recordings committed before it: fix the cause and rerun "
                                 f"the same command to resume")
            res = _commit(store, res, cfg, res.rec_id in changed)
            _count(summary, store, res, by_id[res.rec_id])
            if progress:
                progress(res)
        manifest = store.write_manifest()
    finally:
        store.unlock()
    summary.store_recordings = manifest["n_recordings"]
    summary.store_windows = manifest["n_windows"]
    return summary


def _count(summary: PrepareSummary, store: WindowStore, res: RecordingResult,
           rec: Recording) -> None:
    for key, v in res.rejected.items():
        summary.windows_rejected[key] = summary.windows_rejected.get(key, 0) + v
    if res.status == "prepared":
        summary.prepared += 1
        summary.windows_kept += res.n_windows
        for note in res.notes:
            summary.notes.setdefault(note, []).append(res.rec_id)
        return
    summary.skipped[res.rec_id] = (res.reason or "bad_input", res.message or "")
    store.mark_skipped(res.rec_id, res.reason or "bad_input", res.message or "", rec.path)
    logger.warning("skipped %s [%s]: %s", res.rec_id, res.reason, res.message)


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
