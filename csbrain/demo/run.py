"""``csbrain demo``: pretrain and fine-tune CSBrain on real EEG, compare, report.

Stages (each timed): fetch and prepare the real recordings; pretrain by masked reconstruction on
the unlabelled continuous EEG; fine-tune every task from the pretrained backbone and from
scratch over several seeds; fit the classical baseline; occlusion importance; figures; report.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from csbrain._checks import check_int
from csbrain._io import atomic_write_json
from csbrain.demo.data import pretraining_corpus, task_split, window_seconds
from csbrain.demo.plan import (
    BASELINE,
    HOLDOUT_FROM,
    IMPORTANCE_TASK,
    PLANS,
    PRETRAIN_CHANNELS,
    PRETRAIN_SOURCES,
    TASKS,
    DemoPlan,
    DemoTask,
)

logger = logging.getLogger(__name__)

INITS = ("pretrained", "scratch")
#: written first: which plan the run in this folder uses (checked by ``resume``)
PLAN_FILE = "demo_plan.json"


class Stages:
    """Wall time of each stage, in seconds."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        t0 = time.perf_counter()
        logger.info("stage %s ...", name)
        yield
        self.seconds[name] = round(time.perf_counter() - t0, 1)
        logger.info("stage %s done in %.1f s", name, self.seconds[name])


def _overrides(*sections: dict[str, Any], **more: Any) -> list[str]:
    merged: dict[str, Any] = {}
    for s in sections:
        merged.update(s)
    merged.update(more)
    return [f"{k}={json.dumps(v) if isinstance(v, list | dict) else v}" for k, v in merged.items()
            if v is not None]


def _subset(lw, keep: np.ndarray, split: np.ndarray):
    from csbrain.engine.rundata import RunData

    return RunData.from_arrays(lw.x[keep], lw.y[keep], lw.montage, subject=lw.subject[keep],
                               recording=lw.recording[keep], split=split[keep],
                               prep_config=lw.config, label_names=lw.label_names)


def _train(fn, cfg: Any, data: Any, run_dir: Path) -> Any:
    """``fn(cfg, data, run_dir)`` (pretrain / finetune), continuing the run if ``run_dir`` holds
    its checkpoint (a finished run only re-evaluates). A folder that an interrupted demo left
    without a checkpoint holds no progress and is started again."""
    from csbrain.engine.checkpoint import TRAINER_STATE

    resume = (run_dir / TRAINER_STATE).is_file()
    if not resume and run_dir.exists():
        logger.info("%s: no checkpoint yet, starting this run again", run_dir)
        shutil.rmtree(run_dir)
    return fn(cfg, data, run_dir, resume=resume)


def _summary(values: list[float | None]) -> dict[str, Any]:
    vals = [v for v in values if v is not None]
    return {"per_seed": values, "mean": float(np.mean(vals)) if vals else None,
            "std": float(np.std(vals)) if vals else None}


def pretrain_stage(plan: DemoPlan, sources: dict, out: Path, progress: bool) -> dict[str, Any]:
    """Pretrain on the continuous sources; return the run folder and corpus facts."""
    from csbrain.configio import load_config
    from csbrain.data.store import UNLABELLED
    from csbrain.engine.rundata import RunData
    from csbrain.train import PretrainConfig, pretrain

    x, montage, corpus = pretraining_corpus(sources)
    data = RunData.from_arrays(x, np.full(len(x), UNLABELLED), montage)
    cfg = load_config(PretrainConfig, None, _overrides(plan.model, plan.pretrain, seed=0,
                                                       progress=progress))
    result = _train(pretrain, cfg, data, out / "runs" / "pretrain")
    return {"run_dir": result.run_dir, "val_fraction": cfg.val_fraction,
            "mask_ratio": cfg.mask_ratio, "corpus": corpus, "n_windows": int(len(x)),
            "window_s": window_seconds(next(iter(sources.values()))),
            "hours": round(sum(c["hours"] for c in corpus), 3),
            "window_hours": round(sum(c["window_hours"] for c in corpus), 3),
            "metrics": result.metrics}


def finetune_stage(plan: DemoPlan, task: DemoTask, lw, pretrain_dir: Path, out: Path,
                   bar: Any = None) -> dict[str, Any]:
    """Fine-tune ``task`` from the pretrained backbone and from scratch, every seed.

    ``bar`` (a tqdm bar, optional) advances once per fine-tuning run.
    """
    from csbrain.baselines import fit_predict_baseline
    from csbrain.configio import load_config
    from csbrain.engine.inference import predict_windows
    from csbrain.engine.metrics import binary_metrics, scores_from_outputs
    from csbrain.models import load_model
    from csbrain.train import FinetuneConfig, finetune

    split = task_split(task, lw, val_fraction=plan.val_fraction)
    keep = np.flatnonzero(split != "")
    data = _subset(lw, keep, split)
    test = np.flatnonzero(split == "test")
    trainval = np.flatnonzero((split == "train") | (split == "val"))
    y_test = lw.y[test]
    res: dict[str, Any] = {"title": task.title, "dataset": task.dataset, "split": task.split,
                           "n": {k: int((split == k).sum()) for k in ("train", "val", "test")},
                           "channels": list(lw.ch_names), "label_names": lw.label_names,
                           "runs": {}}
    for init in INITS:
        per_seed = []
        for seed in plan.seeds:
            cfg = load_config(FinetuneConfig, None, _overrides(
                plan.model, plan.finetune, seed=seed, task="binary", progress=False,
                init=str(pretrain_dir) if init == "pretrained" else None,
                **{"split.use_store_splits": True, "split.by": "window"}))
            run_dir = out / "runs" / task.key / f"{init}-seed{seed}"
            r = _train(finetune, cfg, data, run_dir)
            proba = scores_from_outputs("binary", predict_windows(load_model(r.run_dir),
                                                                  lw.x[test]))
            m = binary_metrics(y_test, proba)
            if abs(m["balanced_accuracy"] - r.metrics["test"]["balanced_accuracy"]) > 1e-6:
                raise RuntimeError(f"{task.key}: recomputed test metrics differ from the run's")
            per_seed.append({"seed": seed, "run_dir": str(r.run_dir), "test": m,
                             "val": r.metrics.get("val"), "proba": proba.tolist()})
            if bar is not None:
                bar.set_postfix_str(f"{task.key} {init} seed {seed}: test bal. acc. "
                                    f"{m['balanced_accuracy']:.3f}")
                bar.update(1)
        res["runs"][init] = per_seed
        res[init] = {k: _summary([s["test"][k] for s in per_seed])
                     for k in ("balanced_accuracy", "auroc", "auc_pr")}
    proba = fit_predict_baseline(BASELINE, lw.x[trainval], lw.y[trainval], lw.x[test])[:, 1]
    base = binary_metrics(y_test, proba)
    res["baseline"] = {"name": BASELINE, "test": base, "proba": proba.tolist(),
                       **{k: _summary([base[k]]) for k in ("balanced_accuracy", "auroc", "auc_pr")}}
    res["y_test"] = y_test.tolist()
    res["test_index"] = test.tolist()
    return res


def run_demo(out: str | Path = "csbrain-demo", *, quick: bool = False, progress: bool = True,
             jobs: int = 1, resume: bool = False) -> dict[str, Any]:
    """Run the whole demo into folder ``out``; return the results (also ``results.json``).

    Parameters
    ----------
    out : path-like
        Output folder (created): ``results.json``, ``report.html``, PNGs, ``runs/``.
    quick : bool
        The small plan (for tests): fewer layers, epochs and seeds.
    progress : bool
        tqdm progress bars.
    jobs : int
        Recordings prepared in parallel.
    resume : bool
        Continue an interrupted demo in ``out`` (same plan): finished runs are kept, the
        interrupted one continues from its last checkpoint, the rest run. Without it, a folder
        that already holds a demo run is refused.
    """
    from csbrain.data import load_dataset
    from csbrain.demo.figures import make_figures
    from csbrain.demo.report import environment, write_report

    check_int("jobs", jobs, min_value=1)
    plan = PLANS["quick" if quick else "default"]
    out = Path(out)
    started = out / PLAN_FILE
    if (out / "runs").exists() or started.exists():
        if not resume:
            raise FileExistsError(f"{str(out)!r} already holds a demo run (runs/); pass --resume "
                                  "to continue it, or choose a new --out folder")
        before = json.loads(started.read_text()).get("name") if started.exists() else "unknown"
        if before != plan.name:
            hint = "add --quick" if before == "quick" else "drop --quick"
            raise ValueError(f"cannot resume {str(out)!r}: it holds a demo run with plan "
                             f"{before!r}, not {plan.name!r} ({hint}, or choose a new --out)")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(started, {"name": plan.name})
    stages = Stages()
    t0 = time.perf_counter()
    with stages("fetch and prepare data"):
        task_data = {}
        for t in TASKS:  # tasks that share a dataset share its overrides
            if t.dataset not in task_data:
                task_data[t.dataset] = load_dataset(t.dataset, overrides=t.overrides, jobs=jobs)
        sources = {s.dataset: load_dataset(s.dataset, overrides=s.overrides, jobs=jobs)
                   for s in PRETRAIN_SOURCES}
    with stages("pretrain"):
        pre = pretrain_stage(plan, sources, out, progress)
    tasks: dict[str, Any] = {}
    with stages("fine-tune, from scratch and baseline"):
        from tqdm.auto import tqdm

        with tqdm(total=len(TASKS) * len(INITS) * len(plan.seeds), desc="fine-tune runs",
                  disable=not progress) as bar:
            for task in TASKS:
                tasks[task.key] = finetune_stage(plan, task, task_data[task.dataset],
                                                 pre["run_dir"], out, bar)
    with stages("figures"):
        figures, importance = make_figures(out, pre, tasks, task_data)
    results = {
        "plan": {"name": plan.name, "model": plan.model, "pretrain": plan.pretrain,
                 "finetune": plan.finetune, "seeds": list(plan.seeds),
                 "val_fraction": plan.val_fraction, "pretrain_channels": list(PRETRAIN_CHANNELS),
                 "holdout_from": HOLDOUT_FROM, "baseline": BASELINE,
                 "importance_task": IMPORTANCE_TASK},
        "pretraining": {k: (str(v) if isinstance(v, Path) else v) for k, v in pre.items()},
        "tasks": tasks, "importance": importance,
        "figures": {k: p.name for k, p in figures.items()},
        "environment": environment(), "stage_seconds": stages.seconds,
    }
    results["stage_seconds"]["total"] = round(time.perf_counter() - t0, 1)
    atomic_write_json(out / "results.json", results)
    write_report(out / "report.html", results, figures)
    logger.info("demo finished in %.0f s: %s", results["stage_seconds"]["total"], out)
    return results
