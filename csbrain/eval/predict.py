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

import csv
import dataclasses
import io
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import TensorDataset

from csbrain import units
from csbrain._checks import more
from csbrain._io import atomic_write_bytes, atomic_write_text, check_writable
from csbrain.configio import from_dict, load_config
from csbrain.data import RecordingError, find_recordings, prepare_recording
from csbrain.data.prepconfig import PrepConfig
from csbrain.data.windows import rejection_text
from csbrain.engine.distributed import resolve_device
from csbrain.engine.inference import embed_dataset, predict_outputs
from csbrain.engine.metrics import scores_from_outputs
from csbrain.eval.config import InferenceConfig
from csbrain.eval.evaluate import check_compatible, model_task
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


def predict(recordings: Sequence[str | Path], model_dir: str | Path, out: str | Path,
            config: InferenceConfig | None = None, *,
            prep_overrides: Sequence[str] | Mapping[str, Any] = ()) -> list[dict[str, Any]]:
    """Predict every window of each recording with a fine-tuned model; write a CSV.

    Parameters
    ----------
    recordings : sequence of path-like
    model_dir : path-like
        Run or model folder of a classifier / regressor.
    out : path-like
        CSV file (written atomically; its folder is checked writable first).
    config : InferenceConfig | None
    prep_overrides : sequence of ``"key=value"`` | mapping
        Preprocessing options for a model that records none (see :func:`load_prep_config`).

    Returns
    -------
    list of dict
        The CSV rows.
    """
    cfg = config or InferenceConfig()
    out = Path(out)
    check_writable(out)
    meta = read_model_config(model_dir)
    prep = load_prep_config(meta, cfg, prep_overrides)
    device = resolve_device(cfg.device)
    model = load_model(model_dir).to(device)
    extra = meta.get("extra") or {}
    task = model_task(model, extra)
    n_classes = 2 if task == "binary" else model.n_outputs
    names = list(extra.get("label_names") or []) or [str(k) for k in range(n_classes)]
    rows: list[dict[str, Any]] = []
    empty: dict[str, str] = {}
    for path in recordings:
        rec, w = prepare_like_model(path, prep, windows=cfg.windows)
        check_compatible(meta, w.montage, None, model_name=str(model_dir), data_name=str(path))
        if _no_window(path, w, empty):
            continue
        ds = TensorDataset(torch.from_numpy(w.x), torch.from_numpy(w.y))
        outputs, _ = predict_outputs(model, ds, batch_size=cfg.batch_size, device=device,
                                     progress=cfg.progress)
        scores = scores_from_outputs(task, outputs)
        for i, start in enumerate(_start_s(rec, w)):
            row: dict[str, Any] = {"recording": rec.rec_id, "window": i,
                                   "start_s": "" if np.isnan(start) else round(float(start), 6),
                                   "label": int(w.y[i])}
            if task == "regression":
                row["prediction"] = float(np.ravel(scores[i])[0])
            else:
                proba = scores[i] if task == "multiclass" else np.array([1 - scores[i], scores[i]])
                k = int(np.argmax(proba))
                row.update(predicted=k, predicted_name=names[k] if k < len(names) else str(k),
                           **{f"prob_{n}": round(float(p), 6) for n, p in zip(names, proba)})
            rows.append(row)
    if not rows:
        raise ValueError(_nothing("predicted", empty))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out, buf.getvalue())
    logger.info("wrote %d predictions to %s", len(rows), out)
    return rows


def embed(recordings: Sequence[str | Path], model_path: str | Path, out: str | Path,
          config: InferenceConfig | None = None, *,
          prep_overrides: Sequence[str] | Mapping[str, Any] = ()) -> dict[str, Any]:
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
    meta = None
    if model_path.is_dir():
        meta = read_model_config(model_path)
    prep = load_prep_config(meta, cfg, prep_overrides)
    device = resolve_device(cfg.device)
    model = load_model(model_path).to(device)
    backbone = getattr(model, "backbone", model)
    is_task_model = hasattr(model, "n_outputs")
    chunks, rec_ids, index, starts = [], [], [], []
    empty: dict[str, str] = {}
    for path in recordings:
        rec, w = prepare_like_model(path, prep, windows=cfg.windows)
        if is_task_model:
            check_compatible(meta, w.montage, None, model_name=str(model_path),
                             data_name=str(path))
        elif list(backbone.montage.canonical) != list(w.montage.canonical):
            backbone.set_montage(w.montage)
            logger.info("%s: backbone montage set to the recording's %d channels", path,
                        w.montage.n_chans)
        if _no_window(path, w, empty):
            continue
        ds = TensorDataset(torch.from_numpy(w.x), torch.from_numpy(w.y))
        chunks.append(embed_dataset(model, ds, pooled=cfg.pooled, batch_size=cfg.batch_size,
                                    device=device, progress=cfg.progress))
        rec_ids += [rec.rec_id] * len(w.x)
        index += list(range(len(w.x)))
        starts += list(_start_s(rec, w))
    if not chunks:
        raise ValueError(_nothing("embedded", empty))
    if len({c.shape[1:] for c in chunks}) > 1:
        raise ValueError(f"recordings give embeddings of different shapes "
                         f"{sorted({c.shape[1:] for c in chunks})}; use pooled=true")
    emb = np.concatenate(chunks)
    buf = io.BytesIO()
    if out.suffix.lower() == ".npy":
        np.save(buf, emb)
    else:
        np.savez(buf, embeddings=emb, recording=np.array(rec_ids), window=np.array(index),
                 start_s=np.array(starts, dtype=np.float64))
    atomic_write_bytes(out, buf.getvalue())
    return {"shape": list(emb.shape), "n_windows": len(emb), "out": str(out),
            "recordings": sorted(set(rec_ids))}
