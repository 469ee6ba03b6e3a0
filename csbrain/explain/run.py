"""``explain(model, data, out)``: load a model and its data, explain, write the outputs.

The model and data load as ``csbrain evaluate`` (a window store and its split) and ``csbrain
predict`` (an EEG file prepared like the model's training data) load them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from csbrain._io import atomic_write_text
from csbrain.explain.core import METHODS, explain_windows, summarise
from csbrain.explain.figures import write_figures
from csbrain.report.html import image, table, write_html_report

logger = logging.getLogger(__name__)

__all__ = ["explain", "load_windows", "html_section"]


def load_windows(model_dir: str | Path, data: str | Path, split: str = "test",
                 max_windows: int | None = None):
    """Model, windows ``(n, C, P, 200)``, labels ``(n,)`` (-1: none) and class names."""
    from csbrain.engine.rundata import labelled_indices, open_run_data
    from csbrain.engine.rundir import RUN_CONFIG, read_run_config
    from csbrain.eval.config import InferenceConfig
    from csbrain.eval.evaluate import _windows_of_split, check_compatible, model_task
    from csbrain.eval.predict import load_prep_config, prepare_like_model
    from csbrain.models import (
        CSBrainForSequenceClassification,
        load_model,
        read_model_config,
    )

    model_dir, data = Path(model_dir), Path(data)
    meta = read_model_config(model_dir)
    model = load_model(model_dir)
    extra = meta.get("extra") or {}
    if model_task(model, extra) == "regression":
        raise ValueError(f"--model {str(model_dir)!r} is a regressor; explain needs a classifier")
    if isinstance(model, CSBrainForSequenceClassification):
        raise ValueError(f"--model {str(model_dir)!r} labels sequences of windows; explain "
                         f"needs a model of single windows (fine-tune without "
                         f"sequence_length)")
    if data.is_file():
        _, w = prepare_like_model(data, load_prep_config(meta, InferenceConfig()))
        check_compatible(meta, w.montage, None, model_name=str(model_dir), data_name=str(data))
        x, y = w.x, np.asarray(w.y)
    else:
        rd = open_run_data(data)
        check_compatible(meta, rd.montage, rd.prep_config, model_name=str(model_dir),
                         data_name=rd.source)
        labelled = labelled_indices(rd.labels)
        run_cfg = read_run_config(model_dir) if (model_dir / RUN_CONFIG).is_file() else None
        idx = _windows_of_split(rd, labelled, run_cfg, split) if len(labelled) else \
            np.arange(len(rd.labels))
        if max_windows:
            idx = idx[:max_windows]
        if len(idx) == 0:
            raise ValueError(f"split={split!r} of {rd.source!r} holds no window")
        items = [rd.dataset[int(i)] for i in idx]
        x = np.stack([np.asarray(it[0]) for it in items])
        y = np.asarray([int(it[1]) for it in items])
    if max_windows:
        x, y = x[:max_windows], y[:max_windows]
    n_classes = max(2, getattr(model, "n_outputs", 2))
    names = list(extra.get("label_names") or []) or [str(k) for k in range(n_classes)]
    return model, x, y, names


def html_section(summary: dict[str, Any], figs: Sequence[tuple[str, Path]]) -> str:
    """HTML body of the explanations (a table of region rankings, timings and the figures)."""
    rows = []
    for m, per_class in summary["methods"].items():
        for cls, e in per_class.items():
            ranked = sorted(e["region"], key=e["region"].get, reverse=True)
            rows.append({"method": m, "class": cls, "windows": e["n_windows"],
                         "regions, most important first": " > ".join(ranked)})
    times = [{"method": m, "seconds per window": f"{s:.4f}"}
             for m, s in summary["seconds_per_window"].items()]
    return (table(rows) + table(times)
            + "".join(image(p, cap) for cap, p in figs))


def explain(model_dir: str | Path, data: str | Path, out: str | Path, *,
            methods: Sequence[str] = tuple(METHODS), split: str = "test",
            max_windows: int | None = None, ig_steps: int = 32,
            gradcam_layer: str = "embedding", batch_size: int = 32,
            device: str = "cpu", progress: bool = False) -> dict[str, Any]:
    """Explain a fine-tuned classifier on a store split or an EEG file; write ``out``.

    Parameters
    ----------
    model_dir : path-like
        Run or model folder of a classifier.
    data : path-like
        A window store (its ``split``) or one EEG file (prepared like the model's data).
    out : path-like
        Folder for the PNGs, ``explanations.json`` (every plotted number) and ``index.html``.
    methods : sequence of str
        Keys of :data:`csbrain.explain.core.METHODS`.
    split, max_windows, ig_steps, batch_size, device, progress
        Windows explained (first ``max_windows`` of the split), IG steps, batching, tqdm.
    gradcam_layer : {"embedding", "output"}
        Grad-CAM's token map (:data:`csbrain.explain.attribution.GRADCAM_LAYERS`).

    Returns
    -------
    dict
        The summary written to ``explanations.json``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model, x, y, names = load_windows(model_dir, data, split, max_windows)
    if (y < 0).any():  # unlabelled windows: explain the predicted class
        from csbrain.engine.inference import predict_windows

        pred = predict_windows(model, x, batch_size=batch_size, device=device)
        pred = (pred[:, 0] > 0).astype(int) if pred.shape[1] == 1 else pred.argmax(1)
        target = np.where(y < 0, pred, y)
    else:
        target = y
    raw = explain_windows(model, x, target, methods=methods, ig_steps=ig_steps,
                          gradcam_layer=gradcam_layer, batch_size=batch_size, device=device,
                          progress=progress)
    summary = summarise(model, raw, target, names, x=x, y=y if (y >= 0).all() else None)
    summary.update(model=str(model_dir), data=str(data), split=split)
    if "gradcam" in methods:
        summary["gradcam_layer"] = gradcam_layer
    figs = write_figures(summary, out)
    atomic_write_text(out / "explanations.json", json.dumps(summary, indent=1))
    write_html_report(out / "index.html", "CSBrain explanations",
                      [("Explanations", html_section(summary, figs))])
    logger.info("wrote %d figures, explanations.json and index.html to %s", len(figs), out)
    return summary
