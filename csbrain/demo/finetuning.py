"""The demo's fine-tuning: every adaptation method of the plan from the pretrained backbone and
from scratch over the plan's seeds (same split for every run), and the classical baseline."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from csbrain.demo.common import overrides, train_run
from csbrain.demo.data import task_split, time_fractions
from csbrain.demo.plan import BASELINE, METHOD_OVERRIDES, DemoPlan, DemoTask
from csbrain.demo.stats import METRICS, summarise_task, summary

logger = logging.getLogger(__name__)

INITS = ("pretrained", "scratch")


def _subset(lw, keep: np.ndarray, split: np.ndarray):
    from csbrain.engine.rundata import RunData

    return RunData.from_arrays(lw.x[keep], lw.y[keep], lw.montage, subject=lw.subject[keep],
                               recording=lw.recording[keep], split=split[keep],
                               prep_config=lw.config, label_names=lw.label_names)


class TaskData:
    """One task's fixed split (``split``), its run data and test windows."""

    def __init__(self, plan: DemoPlan, task: DemoTask, lw) -> None:
        self.task, self.lw = task, lw
        self.split = task_split(task, lw, val_fraction=plan.val_fraction)
        keep = np.flatnonzero(self.split != "")
        self.data = _subset(lw, keep, self.split)
        self.test = np.flatnonzero(self.split == "test")
        self.y_test = lw.y[self.test]


def seed_runs(plan: DemoPlan, td: TaskData, method: str, init_dir: str | Path | None,
              run_prefix: Path, seeds: tuple[int, ...], bar: Any = None) -> list[dict]:
    """Fine-tune ``td`` with ``method`` from ``init_dir`` (None: scratch), one run per seed in
    ``run_prefix-seed<s>``; each run's test metrics recomputed from its stored predictions."""
    from csbrain.configio import load_config
    from csbrain.engine.inference import predict_windows
    from csbrain.engine.metrics import binary_metrics, scores_from_outputs
    from csbrain.models import load_model
    from csbrain.train import FinetuneConfig, finetune

    per_seed = []
    for seed in seeds:
        cfg = load_config(FinetuneConfig, None, overrides(
            plan.model, plan.finetune, METHOD_OVERRIDES.get(method, {}), seed=seed,
            task="binary", progress=False, method=method,
            init=None if init_dir is None else str(init_dir),
            **{"split.use_store_splits": True, "split.by": "window"}))
        run_dir = run_prefix.parent / f"{run_prefix.name}-seed{seed}"
        r = train_run(finetune, cfg, td.data, run_dir)
        proba = scores_from_outputs("binary", predict_windows(load_model(r.run_dir),
                                                              td.lw.x[td.test]))
        m = binary_metrics(td.y_test, proba)
        if abs(m["balanced_accuracy"] - r.metrics["test"]["balanced_accuracy"]) > 1e-6:
            raise RuntimeError(f"{run_dir}: recomputed test metrics differ from the run's")
        per_seed.append({"seed": seed, "run_dir": str(r.run_dir), "test": m,
                         "val": r.metrics.get("val"), "proba": proba.tolist()})
        if bar is not None:
            bar.set_postfix_str(f"{run_dir.parent.name}/{run_dir.name}: test bal. acc. "
                                f"{m['balanced_accuracy']:.3f}")
            bar.update(1)
    return per_seed


def finetune_stage(plan: DemoPlan, td: TaskData, pretrain_dir: Path, out: Path,
                   bar: Any = None) -> dict[str, Any]:
    """Every method of ``plan`` x (pretrained, scratch) x seed on one task, and the baseline.

    ``bar`` (a tqdm bar, optional) advances once per fine-tuning run.
    """
    from csbrain.baselines import fit_predict_baseline
    from csbrain.engine.metrics import binary_metrics

    task, lw, split = td.task, td.lw, td.split
    start, _ = time_fractions(lw) if hasattr(lw, "duration_s") else (None, None)
    res: dict[str, Any] = {"title": task.title, "dataset": task.dataset, "split": task.split,
                           "n": {k: int((split == k).sum()) for k in ("train", "val", "test")},
                           "channels": list(lw.ch_names), "label_names": lw.label_names,
                           "test_first_start": None if start is None or task.split == "official"
                           else round(float(start[td.test].min()), 6), "runs": {}}
    for method in plan.methods:
        res["runs"][method] = {
            init: seed_runs(plan, td, method, pretrain_dir if init == "pretrained" else None,
                            out / "runs" / task.key / f"{method}-{init}", plan.seeds, bar)
            for init in INITS}
    res["methods"] = summarise_task(res["runs"])
    # top-level pretrained / scratch: the first method's (``full`` by default), as the CLI prints
    res.update({init: res["methods"][plan.methods[0]][init] for init in INITS})
    trainval = np.flatnonzero((split == "train") | (split == "val"))
    proba = fit_predict_baseline(BASELINE, lw.x[trainval], lw.y[trainval], lw.x[td.test])[:, 1]
    base = binary_metrics(td.y_test, proba)
    res["baseline"] = {"name": BASELINE, "test": base, "proba": proba.tolist(),
                       **{k: summary([base[k]]) for k in METRICS}}
    res["y_test"] = td.y_test.tolist()
    res["test_index"] = td.test.tolist()
    return res


def scaling_stage(plan: DemoPlan, td: TaskData, backbones: dict[float, Path | None],
                  task_result: dict[str, Any], out: Path) -> list[dict[str, Any]]:
    """Score of each ``plan.scaling_methods`` against the fraction of pretraining windows.

    Fractions 0 and 1 reuse the task's scratch and pretrained runs (when the method is among
    ``plan.methods``); other fractions fine-tune from their own backbone over the same seeds.
    """
    rows = []
    for f, backbone in backbones.items():
        entry: dict[str, Any] = {"fraction": f, "backbone": None if backbone is None
                                 else str(backbone), "methods": {}}
        for method in plan.scaling_methods:
            init = "scratch" if f == 0 else "pretrained"
            if f in (0, 1) and method in task_result["runs"]:
                runs = task_result["runs"][method][init]
            else:
                runs = seed_runs(plan, td, method, backbone, out / "runs" / td.task.key /
                                 f"{method}-frac{f:g}", plan.seeds)
            entry["methods"][method] = {
                "per_seed": [{"seed": s["seed"], "test": s["test"]} for s in runs],
                **{k: summary([s["test"][k] for s in runs]) for k in METRICS}}
        rows.append(entry)
    return rows
