"""The demo's figures, computed from the runs it just made (nothing typed by hand)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from csbrain.demo.plan import IMPORTANCE_TASK
from csbrain.demo.plots import plot_scaling, plot_spectral_reconstruction
from csbrain.engine.inference import predict_windows
from csbrain.engine.metrics import BINARY_THRESHOLD, scores_from_outputs
from csbrain.engine.rundir import METRICS_LOG
from csbrain.report import (
    plot_confusion,
    plot_curves,
    plot_reconstruction,
    plot_roc,
    plot_topomap_importance,
)
from csbrain.report.importance import occlusion_importance
from csbrain.report.plots import plot_feature_diagnostics


def _records(run_dir: str | Path) -> list[dict]:
    return [json.loads(line) for line in (Path(run_dir) / METRICS_LOG).read_text().splitlines()]


def _curve(records: list[dict], key: str, x: str) -> tuple[list[float], list[float]]:
    pts = [(r[x] + (1 if x == "epoch" else 0), r[key]) for r in records
           if r.get(key) is not None and (x == "epoch") == ("train_loss" in r)]
    return [p[0] for p in pts], [p[1] for p in pts]


def _mean_curve(run_dirs: list[str], key: str) -> tuple[list[float], list[float]]:
    curves = [_curve(_records(d), key, "epoch") for d in run_dirs]
    n = min(len(c[0]) for c in curves)
    return curves[0][0][:n], list(np.mean([c[1][:n] for c in curves], axis=0))


def _reconstruction(pre: dict[str, Any], target: str, lw, test: np.ndarray, path: Path,
                    task_title: str) -> Path:
    """Mask patches of one test window (never seen in pretraining; every channel of the task's
    own montage, pretraining's mask ratio) and reconstruct it: the waveform, or with a
    spectral target the predicted log-amplitude spectra of the masked patches."""
    from csbrain.models import load_model
    from csbrain.train.losses import spectral_target

    model = load_model(pre["run_dir"])
    model.backbone.set_montage(lw.montage)
    window = lw.x[test[0]]                                             # (C, P, S), input order
    x = torch.from_numpy(window[None])
    gen = torch.Generator().manual_seed(0)
    mask = (torch.rand(1, window.shape[0], x.shape[2], generator=gen)
            < pre["mask_ratio"]).long()                                # (1, C, P), sorted slots
    inv = np.argsort(np.asarray(model.backbone.channel_order))         # sorted -> input order
    title = (f"Masked reconstruction of a test window (never seen in pretraining)\n"
             f"{task_title}")
    if target == "spectral":
        with torch.no_grad():
            _, spec = model(x, mask, return_spectral=True)
        order = torch.as_tensor(model.backbone.channel_order)
        want = spectral_target(x[:, order])[0].numpy()                 # sorted order
        return plot_spectral_reconstruction(want[inv], spec[0].numpy()[inv],
                                            mask[0].numpy()[inv], list(lw.ch_names), path,
                                            title=title + " (spectral target, mean ± sd)")
    with torch.no_grad():
        recon = model(x, mask)[0].numpy()                              # sorted order
    return plot_reconstruction(window, recon[inv], mask[0].numpy()[inv], list(lw.ch_names),
                               path, title=title + ", grey patches masked")


def make_figures(out: Path, pre: dict[str, Any], tasks: dict[str, Any], task_data: dict,
                 scaling: dict[str, Any], target: str = "waveform"
                 ) -> tuple[dict[str, Path], dict[str, Any]]:
    """Write every PNG of the report; return their paths and the importance numbers.

    Fine-tuning curves, confusion matrices, ROC curves and importance use the ``full``
    method's runs (the first method of the plan when ``full`` is not among them).
    """
    from csbrain.models import load_model

    figs: dict[str, Path] = {}
    rec = _records(pre["run_dir"])
    panels = {"train loss (per step)": {"train": _curve(rec, "loss", "step")},
              "loss (per epoch)": {"train": _curve(rec, "train_loss", "epoch")}}
    val_key = "val_loss" if any("val_loss" in r for r in rec) else None
    if val_key:
        held_out = f"held-out {100 * pre['val_fraction']:g}%"
        panels["loss (per epoch)"][held_out] = _curve(rec, val_key, "epoch")
        for i, c in enumerate(pre["corpus"]):
            if any(f"val_loss_mem_{i}" in r for r in rec):
                panels["loss (per epoch)"][f"held-out {c['source']}"] = _curve(
                    rec, f"val_loss_mem_{i}", "epoch")
    figs["pretrain_loss"] = plot_curves(panels, out / "pretrain_loss.png", xlabel=["step", "epoch"],
                                        logy=True, title="Pretraining: masked patch "
                                        f"reconstruction, target {target} (log scale)")
    diag = [r for r in rec if r.get("val_feature_spread") is not None]
    if diag:
        if len({r.get("epoch") for r in diag}) < len(diag):  # evaluated within epochs: by step
            diag = [{k: v for k, v in r.items() if k != "epoch"} for r in diag]
        figs["feature_diagnostics"] = plot_feature_diagnostics(
            diag, out / "feature_diagnostics.png", spread_threshold=None,
            title="Pretraining: pooled features of the held-out windows per evaluation")
    imp_task = tasks[IMPORTANCE_TASK]
    lw, test = task_data[imp_task["dataset"]], np.asarray(imp_task["test_index"])
    figs["reconstruction"] = _reconstruction(pre, target, lw, test, out / "reconstruction.png",
                                             imp_task["title"])
    figs["scaling"] = plot_scaling(
        scaling["rows"], out / "scaling.png",
        title=f"{tasks[scaling['task']]['title']}\nagainst the pretraining data "
              f"(same {scaling['same'].split(' (')[0]}), mean ± std over seeds")
    method = "full" if all("full" in t["runs"] for t in tasks.values()) else \
        next(iter(next(iter(tasks.values()))["runs"]))
    runs = {key: t["runs"][method] for key, t in tasks.items()}
    curves = {}
    for key, t in tasks.items():
        if method == "linear":
            break
        curves[t["title"]] = {init: _mean_curve([s["run_dir"] for s in runs[key][init]],
                                                "val_balanced_accuracy") for init in runs[key]}
    if curves:
        figs["finetune_curves"] = plot_curves(curves, out / "finetune_curves.png",
                                              xlabel="epoch", title=f"Fine-tuning ({method}): "
                                              "validation balanced accuracy (mean over seeds)")
    for key, t in tasks.items():
        cm = np.sum([s["test"]["confusion_matrix"] for s in runs[key]["pretrained"]], axis=0)
        figs[f"confusion_{key}"] = plot_confusion(
            cm, t["label_names"], out / f"confusion_{key}.png",
            title=f"{t['title']}\npretrained CSBrain ({method}), test, summed over seeds")
        y = np.asarray(t["y_test"])
        figs[f"roc_{key}"] = plot_roc(
            {"CSBrain pretrained (seed 0)": (y, np.asarray(runs[key]["pretrained"][0]["proba"])),
             "CSBrain scratch (seed 0)": (y, np.asarray(runs[key]["scratch"][0]["proba"])),
             f"baseline {t['baseline']['name']}": (y, np.asarray(t["baseline"]["proba"]))},
            out / f"roc_{key}.png", title=t["title"])
    # importance: the seed-0 model of the CSBrain variant (pretrained or scratch) with the better
    # mean validation balanced accuracy on one task, occlusion on its test windows
    variant = max(("pretrained", "scratch"), key=lambda v: np.mean(
        [(s["val"] or {}).get("balanced_accuracy", 0.0) for s in runs[IMPORTANCE_TASK][v]]))
    model = load_model(runs[IMPORTANCE_TASK][variant][0]["run_dir"])
    drop, region_drop = occlusion_importance(
        lambda x: (scores_from_outputs("binary", predict_windows(model, x))
                   >= BINARY_THRESHOLD).astype(np.int64),
        lw.x[test], lw.y[test], lw.montage.regions)
    figs["importance_topomap"] = plot_topomap_importance(
        drop, lw.ch_names, region_drop, out / "importance_topomap.png",
        title=f"{imp_task['title']}, CSBrain {variant}, {method} (seed 0)\n"
              "drop of test balanced accuracy when a channel / region is zeroed")
    importance = {"task": IMPORTANCE_TASK, "model": variant, "method": method,
                  "channel_drop": dict(zip(lw.ch_names, drop.tolist())), "region_drop": region_drop}
    importance["explanations"] = _explanations(model, lw.x[test], lw.y[test], out, figs,
                                               imp_task.get("label_names") or ["0", "1"])
    return figs, importance


#: Windows and integrated-gradients steps of the demo's explanations (a few seconds on CPU).
EXPLAIN_WINDOWS, EXPLAIN_IG_STEPS = 16, 8


def _explanations(model, x: np.ndarray, y: np.ndarray, out: Path, figs: dict,
                  names: list[str]) -> dict:
    """``csbrain explain``'s numbers and figures on the first test windows of each class
    (IG, Grad-CAM, attention); figure paths go into ``figs`` as ``explain: <caption>``."""
    from csbrain.explain import explain_windows, summarise
    from csbrain.explain.figures import write_figures

    keep = np.concatenate([np.flatnonzero(y == k)[:EXPLAIN_WINDOWS // 2] for k in (0, 1)])
    raw = explain_windows(model, x[keep], y[keep], methods=("ig", "gradcam", "attention"),
                          ig_steps=EXPLAIN_IG_STEPS)
    summary = summarise(model, raw, y[keep], list(names))
    (out / "explanations").mkdir(exist_ok=True)
    for caption, path in write_figures(summary, out / "explanations"):
        figs[f"explain: {caption}"] = path
    return summary
