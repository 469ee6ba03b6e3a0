"""The demo's figures, computed from the runs it just made (nothing typed by hand)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from csbrain.demo.plan import IMPORTANCE_TASK, PRETRAIN_CHANNELS
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


def _reconstruction(pre: dict[str, Any], lw, test: np.ndarray, path: Path, task_title: str
                    ) -> Path:
    """Mask patches of one held-out (test) window (pretraining's mask ratio) and reconstruct it."""
    from csbrain.models import load_model

    model = load_model(pre["run_dir"])
    idx = [lw.ch_names.index(c) for c in PRETRAIN_CHANNELS]
    window = lw.x[test[0]][idx]                      # (6, P, S), input order
    x = torch.from_numpy(window[None])
    gen = torch.Generator().manual_seed(0)
    mask = (torch.rand(1, len(idx), x.shape[2], generator=gen)
            < pre["mask_ratio"]).long()                                # (1, 6, P), sorted slots
    with torch.no_grad():
        recon = model(x, mask)[0].numpy()                               # sorted order
    order = np.asarray(model.backbone.channel_order)
    inv = np.argsort(order)                                            # sorted -> input order
    return plot_reconstruction(window, recon[inv], mask[0].numpy()[inv], list(PRETRAIN_CHANNELS),
                               path, title=f"Masked reconstruction of a test window (never seen "
                               f"in pretraining), grey patches masked\n{task_title}")


def make_figures(out: Path, pre: dict[str, Any], tasks: dict[str, Any], task_data: dict
                 ) -> tuple[dict[str, Path], dict[str, Any]]:
    """Write every PNG of the report; return their paths and the importance numbers."""
    from csbrain.models import load_model

    figs: dict[str, Path] = {}
    rec = _records(pre["run_dir"])
    panels = {"train loss (per step)": {"train": _curve(rec, "loss", "step")},
              "masked MSE (per epoch)": {"train": _curve(rec, "train_loss", "epoch")}}
    val_key = next((k for r in rec for k in r if k.startswith("val_")), None)
    if val_key:
        held_out = f"held-out {100 * pre['val_fraction']:g}%"
        panels["masked MSE (per epoch)"][held_out] = _curve(rec, val_key, "epoch")
    figs["pretrain_loss"] = plot_curves(panels, out / "pretrain_loss.png", xlabel=["step", "epoch"],
                                        logy=True, title="Pretraining: masked patch "
                                        "reconstruction (MSE in (100 µV)², log scale)")
    imp_task = tasks[IMPORTANCE_TASK]
    lw, test = task_data[imp_task["dataset"]], np.asarray(imp_task["test_index"])
    figs["reconstruction"] = _reconstruction(pre, lw, test, out / "reconstruction.png",
                                             imp_task["title"])
    curves = {}
    for key, t in tasks.items():
        curves[t["title"]] = {init: _mean_curve([s["run_dir"] for s in t["runs"][init]],
                                                "val_balanced_accuracy") for init in t["runs"]}
    figs["finetune_curves"] = plot_curves(curves, out / "finetune_curves.png", xlabel="epoch",
                                          title="Fine-tuning: validation balanced accuracy "
                                                "(mean over seeds)")
    for key, t in tasks.items():
        cm = np.sum([s["test"]["confusion_matrix"] for s in t["runs"]["pretrained"]], axis=0)
        figs[f"confusion_{key}"] = plot_confusion(
            cm, t["label_names"], out / f"confusion_{key}.png",
            title=f"{t['title']}\npretrained CSBrain, test, summed over seeds")
        y = np.asarray(t["y_test"])
        figs[f"roc_{key}"] = plot_roc(
            {"CSBrain pretrained (seed 0)": (y, np.asarray(t["runs"]["pretrained"][0]["proba"])),
             "CSBrain scratch (seed 0)": (y, np.asarray(t["runs"]["scratch"][0]["proba"])),
             f"baseline {t['baseline']['name']}": (y, np.asarray(t["baseline"]["proba"]))},
            out / f"roc_{key}.png", title=t["title"])
    # importance: the seed-0 model of the CSBrain variant (pretrained or scratch) with the better
    # mean validation balanced accuracy on one task, occlusion on its test windows
    variant = max(("pretrained", "scratch"), key=lambda v: np.mean(
        [(s["val"] or {}).get("balanced_accuracy", 0.0) for s in imp_task["runs"][v]]))
    model = load_model(imp_task["runs"][variant][0]["run_dir"])
    drop, region_drop = occlusion_importance(
        lambda x: (scores_from_outputs("binary", predict_windows(model, x))
                   >= BINARY_THRESHOLD).astype(np.int64),
        lw.x[test], lw.y[test], lw.montage.regions)
    figs["importance_topomap"] = plot_topomap_importance(
        drop, lw.ch_names, region_drop, out / "importance_topomap.png",
        title=f"{imp_task['title']}, CSBrain {variant} (seed 0)\n"
              "drop of test balanced accuracy when a channel / region is zeroed")
    importance = {"task": IMPORTANCE_TASK, "model": variant,
                  "channel_drop": dict(zip(lw.ch_names, drop.tolist())), "region_drop": region_drop}
    return figs, importance
