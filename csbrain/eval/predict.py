"""Predictions and embeddings for new recordings, prepared exactly as the model's data were.

A fine-tuned model folder records its preprocessing (``config.json`` ``extra.preprocessing``,
a :class:`~csbrain.data.prepconfig.PrepConfig`). :func:`prepare_like_model` reads any file the
readers support and runs :func:`csbrain.data.prepare_recording` with that config; only the
*labels* step may be relaxed: a new recording has no label, so ``recording`` / ``trials`` label
modes fall back to unlabelled windows (the same windows), and event-locked windows need the
training events (or ``windows="continuous"``).

Outputs: :func:`predict` writes one CSV row per window (recording, window, start_s, label,
predicted, predicted_name, one ``prob_<class>`` column per class or ``prediction`` for
regression); :func:`embed` writes ``.npy`` (the array) or ``.npz`` (array + recording,
window, start_s).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import logging
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from csbrain import units
from csbrain._checks import more
from csbrain._io import check_writable
from csbrain.configio import from_dict, load_config
from csbrain.data import RecordingError, find_recordings, prepare_recording
from csbrain.data.labels import required_label
from csbrain.data.prepconfig import PrepConfig
from csbrain.data.streaming import NotStreamable
from csbrain.data.windows import rejection_text
from csbrain.engine.distributed import resolve_device
from csbrain.engine.metrics import scores_from_outputs
from csbrain.engine.sequences import sequence_forward
from csbrain.eval.config import InferenceConfig
from csbrain.eval.evaluate import check_compatible, model_task, sequence_length_of
from csbrain.eval.streaming import TempOutput, bf16_support, forward_chunks, prefetch_chunks
from csbrain.models import load_model, read_model_config

logger = logging.getLogger(__name__)

__all__ = ["load_prep_config", "prepare_like_model", "predict", "embed", "EMBED_SUFFIXES"]

EMBED_SUFFIXES = (".npy", ".npz")


def load_prep_config(meta: dict[str, Any] | None, cfg: InferenceConfig,
                     prep_overrides: Sequence[str] | Mapping[str, Any] = ()) -> PrepConfig:
    """The :class:`PrepConfig` to prepare recordings with.

    The model's recorded preprocessing; else ``cfg.prep_config`` (a file) and/or
    ``prep_overrides`` (``["filter.h_freq=40", ...]``); else the defaults, whose filters adapt
    to each file's sampling rate.
    """
    saved = ((meta or {}).get("extra") or {}).get("preprocessing")
    given = [f"prep_config={cfg.prep_config}"] if cfg.prep_config is not None else []
    given += [str(o).split("=", 1)[0] for o in prep_overrides]
    if saved is not None:
        if given:
            raise ValueError(f"{', '.join(given)} given, but the model records its own "
                             f"preprocessing, which predictions must use; drop "
                             f"{'it' if len(given) == 1 else 'them'}")
        return from_dict(PrepConfig, saved)
    if not given:
        logger.info("the model records no preprocessing config: using the defaults (filters "
                    "adapted to each file's rate); set them with --set filter.l_freq=... etc.")
    return load_config(PrepConfig, cfg.prep_config, prep_overrides)


def prepare_like_model(path: str | Path, prep, *, windows: str = "saved"):
    """Read one recording and prepare it with ``prep`` (see the module docstring).

    Parameters
    ----------
    path : path-like
        A file any csbrain reader supports (EDF, BDF, FIF, .set, .vhdr, GDF, CNT, .ts).
    prep : PrepConfig
    windows : {"saved", "continuous"}

    Returns
    -------
    rec : Recording
    w : Windows
        ``x`` ``(n, C, P, 200)``, ``y``, ``start``, ``montage``.
    """
    recs = find_recordings([path])
    if len(recs) != 1:
        raise ValueError(f"{str(path)!r} holds {len(recs)} recordings; pass recording files")
    rec = recs[0]
    unlabelled = dataclasses.replace(prep, labels=dataclasses.replace(prep.labels, mode="none"))
    if windows == "continuous":
        prep = unlabelled
    try:
        return rec, prepare_recording(rec, prep)
    except RecordingError as err:
        if err.reason == "no_labels" and prep.labels.mode in ("recording", "trials"):
            return rec, prepare_recording(rec, unlabelled)
        hint = ("; pass windows=continuous to tile the recording instead"
                if err.reason == "no_labels" and prep.labels.mode == "events" else "")
        raise ValueError(f"recording {str(path)!r} cannot be prepared [{err.reason}]: "
                         f"{err}{hint}") from None


def _no_window(path: str | Path, w, empty: dict[str, str]) -> bool:
    """Log rejected windows; record why a recording gave none (True: skip it)."""
    if sum(w.rejected.values()):
        logger.warning("%s: %d windows rejected by the preprocessing (%s)", path,
                       sum(w.rejected.values()), rejection_text(w.rejected))
    if len(w.x):
        return False
    empty[str(path)] = rejection_text(w.rejected, options=True) or "no window fits"
    logger.warning("%s: no window (%s)", path, empty[str(path)])
    return True


def _nothing(what: str, empty: dict[str, str]) -> str:
    return (f"no window could be {what}: "
            + more((f"{p}: {why}" for p, why in empty.items()), 5))


def _start_s(rec, w) -> np.ndarray:
    if rec.kind == "ts":  # trials: no time axis
        return np.full(len(w.start), np.nan)
    return w.start / units.SFREQ


#: Default chunk length of streaming preparation, seconds (memory grows with it, not with
#: the recording's duration).
CHUNK_S: float = 600.0


def _check_bf16(bf16: bool, device) -> None:
    why = bf16_support(device) if bf16 else None
    if why:
        raise ValueError(f"--bf16: {why}; run without --bf16 (fp32)")


def _outputs(path, rec, prep, cfg, fn, device, *, chunk_s: float, bf16: bool, stream: bool,
             check=None, per_chunk: bool = False):
    """Yield ``(start_s, labels, outputs, rejected)`` per chunk of one recording.

    Continuous files stream (:mod:`csbrain.eval.streaming`); anything else (events, trials,
    re-references, whole-file quality fixes) is prepared whole, as before.
    """
    from tqdm.auto import tqdm

    sprep, label = prep, -1
    if prep.labels.mode == "recording" and cfg.windows != "continuous":
        with contextlib.suppress(RecordingError):  # a new recording has no label: -1
            label = required_label(rec.rec_id, prep.labels)
    if cfg.windows == "continuous" or prep.labels.mode in ("recording", "trials"):
        sprep = dataclasses.replace(prep, labels=dataclasses.replace(prep.labels, mode="none"))
    if stream and rec.kind == "file":
        try:
            info, chunks = prefetch_chunks(path, sprep, chunk_s=chunk_s)
        except NotStreamable as why:
            logger.info("%s: prepared whole (%s)", path, why)
        except RecordingError as err:
            raise ValueError(f"recording {str(path)!r} cannot be prepared [{err.reason}]: "
                             f"{err}") from None
        else:
            if check is not None:
                check(info.montage)
            hours = info.duration_s / 3600
            with tqdm(total=round(hours, 3), unit="h EEG", desc=Path(path).name,
                      disable=not cfg.progress, leave=False) as bar:
                for chunk, outputs in forward_chunks(fn, chunks, batch_size=cfg.batch_size,
                                                     device=device, bf16=bf16,
                                                     per_chunk=per_chunk):
                    bar.update(round(chunk.done_s / 3600 - bar.n, 3))
                    yield (chunk.start / units.SFREQ, np.full(len(chunk.start), label), outputs,
                           chunk.rejected)
            return
    rec, w = prepare_like_model(path, prep, windows=cfg.windows)
    if check is not None:
        check(w.montage)
    outputs = np.zeros((0,), np.float32)
    if len(w.x):
        outs = [o for _, o in forward_chunks(fn, iter([_Chunk(w.x, np.asarray(w.start))]),
                                             batch_size=cfg.batch_size, device=device,
                                             bf16=bf16, per_chunk=per_chunk)]
        outputs = outs[0]
    yield _start_s(rec, w), w.y, outputs, w.rejected


@dataclasses.dataclass
class _Chunk:
    x: np.ndarray
    start: np.ndarray


def predict(recordings: Sequence[str | Path], model_dir: str | Path, out: str | Path,
            config: InferenceConfig | None = None, *,
            prep_overrides: Sequence[str] | Mapping[str, Any] = (), chunk_s: float = CHUNK_S,
            bf16: bool = False, stream: bool = True) -> list[dict[str, Any]]:
    """Predict every window of each recording with a fine-tuned model; write a CSV.

    Parameters
    ----------
    recordings : sequence of path-like
    model_dir : path-like
        Run or model folder of a classifier / regressor, or of a sequence model (its windows
        are read in sequences of its ``sequence_length`` consecutive windows, cut at gaps
        (rejected windows) and at the ends of streamed chunks, where the last sequence is
        shorter: :func:`csbrain.engine.sequences.sequence_forward`).
    out : path-like
        CSV file (written atomically; its folder is checked writable first).
    config : InferenceConfig | None
    prep_overrides : sequence of ``"key=value"`` | mapping
        Preprocessing options for a model that records none (see :func:`load_prep_config`).
    chunk_s : float
        Streaming chunk length (continuous files are prepared chunk by chunk, in a background
        thread, with memory bounded by this; see :mod:`csbrain.data.streaming`).
    bf16 : bool
        bfloat16 autocast; refused with one line where the device has no native bfloat16.
    stream : bool
        False: prepare every recording whole (the FFT resampling of prepared stores).

    Returns
    -------
    list of dict
        The CSV rows (also written, row by row, to a temporary file renamed onto ``out`` at
        the end).
    """
    cfg = config or InferenceConfig()
    out = Path(out)
    check_writable(out)
    meta = read_model_config(model_dir)
    prep = load_prep_config(meta, cfg, prep_overrides)
    device = resolve_device(cfg.device)
    _check_bf16(bf16, device)
    model = load_model(model_dir).to(device).eval()
    extra = meta.get("extra") or {}
    task = model_task(model, extra)
    fn = model
    length = sequence_length_of(model, extra, str(model_dir))
    if length:                  # a sequence model reads each chunk's windows in sequences
        fn = sequence_forward(model, length, batch_size=cfg.batch_size)
    n_classes = 2 if task == "binary" else model.n_outputs
    names = list(extra.get("label_names") or []) or [str(k) for k in range(n_classes)]
    fields = ["recording", "window", "start_s", "label"]
    fields += (["prediction"] if task == "regression"
               else ["predicted", "predicted_name", *(f"prob_{n}" for n in names)])
    rows: list[dict[str, Any]] = []
    empty: dict[str, str] = {}
    with TempOutput(out) as tmp:
        writer = csv.DictWriter(tmp.file, fieldnames=fields)
        writer.writeheader()
        for path in recordings:
            rec = _one_recording(path)

            def check(montage, path=path):
                check_compatible(meta, montage, None, model_name=str(model_dir),
                                 data_name=str(path))

            n_rec, rejected = 0, Counter()
            for start_s, y, outputs, rej in _outputs(path, rec, prep, cfg, fn, device,
                                                     chunk_s=chunk_s, bf16=bf16, stream=stream,
                                                     check=check, per_chunk=bool(length)):
                rejected.update(rej)
                new = _rows(task, names, rec.rec_id, n_rec, start_s, y, outputs)
                writer.writerows(new)
                rows += new
                n_rec += len(new)
            if _no_window(path, _Count(n_rec, dict(rejected)), empty):
                continue
        if not rows:
            raise ValueError(_nothing("predicted", empty))
        tmp.commit()
    logger.info("wrote %d predictions to %s", len(rows), out)
    return rows


@dataclasses.dataclass
class _Count:
    """What :func:`_no_window` reads of a recording's windows."""

    n: int
    rejected: dict[str, int]

    @property
    def x(self) -> range:
        return range(self.n)


def _one_recording(path):
    recs = find_recordings([path])
    if len(recs) != 1:
        raise ValueError(f"{str(path)!r} holds {len(recs)} recordings; pass recording files")
    return recs[0]


def _rows(task: str, names: list[str], rec_id: str, first: int, start_s: np.ndarray,
          y: np.ndarray, outputs: np.ndarray) -> list[dict[str, Any]]:
    if not len(start_s):
        return []
    scores = scores_from_outputs(task, outputs)
    rows = []
    for i, start in enumerate(start_s):
        row: dict[str, Any] = {"recording": rec_id, "window": first + i,
                               "start_s": "" if np.isnan(start) else round(float(start), 6),
                               "label": int(y[i])}
        if task == "regression":
            row["prediction"] = float(np.ravel(scores[i])[0])
        else:
            proba = scores[i] if task == "multiclass" else np.array([1 - scores[i], scores[i]])
            k = int(np.argmax(proba))
            row.update(predicted=k, predicted_name=names[k] if k < len(names) else str(k),
                       **{f"prob_{n}": round(float(p), 6) for n, p in zip(names, proba)})
        rows.append(row)
    return rows


def embed(recordings: Sequence[str | Path], model_path: str | Path, out: str | Path,
          config: InferenceConfig | None = None, *,
          prep_overrides: Sequence[str] | Mapping[str, Any] = (), chunk_s: float = CHUNK_S,
          bf16: bool = False, stream: bool = True) -> dict[str, Any]:
    """Backbone embeddings of every window of each recording.

    Parameters
    ----------
    recordings : sequence of path-like
    model_path : path-like
        Any csbrain model or run folder, or a released ``.pth`` (then ``config.prep_config``
        says how to prepare the recordings). Backbone-only and pretraining models read any
        montage (the weights do not depend on it); task models must match the recording's.
    out : path-like
        ``.npy`` (the embeddings) or ``.npz`` (``embeddings``, ``recording``, ``window``,
        ``start_s``).
    config : InferenceConfig | None
        ``pooled``: ``(n, D)`` mean tokens, else ``(n, C, P, D)`` tokens in sorted channel
        order.
    prep_overrides : sequence of ``"key=value"`` | mapping
        Preprocessing options for a model that records none (see :func:`load_prep_config`).
    chunk_s, bf16, stream
        As in :func:`predict`; embeddings go to a temporary file chunk by chunk, the output
        is assembled from it at the end.

    Returns
    -------
    dict
        ``shape``, ``n_windows``, ``recordings``, ``out``.
    """
    cfg = config or InferenceConfig()
    out = Path(out)
    if out.suffix.lower() not in EMBED_SUFFIXES:
        raise ValueError(f"--out {str(out)!r} must end with {' or '.join(EMBED_SUFFIXES)}")
    check_writable(out)
    model_path = Path(model_path)
    meta = read_model_config(model_path) if model_path.is_dir() else None
    prep = load_prep_config(meta, cfg, prep_overrides)
    device = resolve_device(cfg.device)
    _check_bf16(bf16, device)
    model = load_model(model_path).to(device).eval()
    backbone = getattr(model, "backbone", model)
    is_task_model = hasattr(model, "n_outputs")

    def fn(x: torch.Tensor) -> torch.Tensor:
        h = backbone(x)
        return h.mean(dim=(1, 2)) if cfg.pooled else h

    shapes, rec_ids, index, starts = set(), [], [], []
    empty: dict[str, str] = {}
    with TempOutput(out, "wb", suffix=".bin") as tmp:
        for path in recordings:
            rec = _one_recording(path)

            def check(montage, path=path):
                if is_task_model:
                    check_compatible(meta, montage, None, model_name=str(model_path),
                                     data_name=str(path))
                elif list(backbone.montage.canonical) != list(montage.canonical):
                    backbone.set_montage(montage)
                    logger.info("%s: backbone montage set to the recording's %d channels",
                                path, montage.n_chans)

            n_rec, rejected = 0, Counter()
            for start_s, _, outputs, rej in _outputs(path, rec, prep, cfg, fn, device,
                                                     chunk_s=chunk_s, bf16=bf16, stream=stream,
                                                     check=check):
                rejected.update(rej)
                if len(start_s):
                    shapes.add(outputs.shape[1:])
                    tmp.file.write(np.ascontiguousarray(outputs, np.float32).tobytes())
                    rec_ids += [rec.rec_id] * len(start_s)
                    index += range(n_rec, n_rec + len(start_s))
                    starts += list(start_s)
                    n_rec += len(start_s)
            _no_window(path, _Count(n_rec, dict(rejected)), empty)
        if not rec_ids:
            raise ValueError(_nothing("embedded", empty))
        if len(shapes) > 1:
            raise ValueError(f"recordings give embeddings of different shapes "
                             f"{sorted(shapes)}; use pooled=true")
        tmp.file.flush()
        shape = (len(rec_ids), *shapes.pop())
        final = out.with_name(f".{out.name}.{os.getpid()}.part")
        try:
            emb = np.memmap(tmp.tmp, dtype=np.float32, mode="r", shape=shape)
            with open(final, "wb") as f:
                if out.suffix.lower() == ".npy":
                    np.lib.format.write_array(f, emb)
                else:
                    np.savez(f, embeddings=emb, recording=np.array(rec_ids),
                             window=np.array(index), start_s=np.array(starts, np.float64))
            del emb
            tmp.commit(final)
        finally:
            final.unlink(missing_ok=True)
    return {"shape": list(shape), "n_windows": shape[0], "out": str(out),
            "recordings": sorted(set(rec_ids))}
