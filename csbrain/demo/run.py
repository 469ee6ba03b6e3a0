"""``csbrain demo``: pretrain and fine-tune CSBrain on real EEG, compare, report.

Stages (each timed): fetch and prepare the real recordings; pretrain by masked reconstruction on
every channel of the unlabelled continuous EEG before each recording's hold-out point;
representation diagnostics of the pretrained vs random backbones on the windows pretraining
held out; fine-tune every task with each method of the plan from the pretrained backbone and
from scratch over several seeds; fit the classical baseline; the data-scaling analysis;
occlusion importance; figures; report.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from csbrain._checks import check_int
from csbrain._io import atomic_write_json
from csbrain.demo.common import overrides
from csbrain.demo.finetuning import INITS, TaskData, finetune_stage, scaling_stage
from csbrain.demo.plan import (
    BASELINE,
    HOLDOUT_FROM,
    IMPORTANCE_TASK,
    OBJECTIVE_REASON,
    PLANS,
    PRETRAIN_SOURCES,
    SCALING_FRACTIONS,
    SCALING_TASK,
    TASKS,
)
from csbrain.demo.pretraining import diagnostics_stage, pretrain_stage, scaling_pretrains

logger = logging.getLogger(__name__)

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


#: kept for callers of the former private name
_overrides = overrides


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
    with stages("diagnostics"):
        diagnostics = diagnostics_stage(plan, pre)
    tasks: dict[str, Any] = {}
    prepared = {t.key: TaskData(plan, t, task_data[t.dataset]) for t in TASKS}
    with stages("fine-tune, from scratch and baseline"):
        from tqdm.auto import tqdm

        n_runs = len(TASKS) * len(plan.methods) * len(INITS) * len(plan.seeds)
        with tqdm(total=n_runs, desc="fine-tune runs", disable=not progress) as bar:
            for task in TASKS:
                tasks[task.key] = finetune_stage(plan, prepared[task.key], pre["run_dir"], out,
                                                 bar)
    with stages("data scaling"):
        backbones = scaling_pretrains(plan, pre, SCALING_FRACTIONS, out)
        same = ("optimiser steps" if plan.pretrain.get("max_steps")
                else "epochs (fewer optimiser steps on less data)")
        scaling = {"task": SCALING_TASK, "same": same,
                   "rows": scaling_stage(plan, prepared[SCALING_TASK], backbones,
                                         tasks[SCALING_TASK], out)}
    with stages("figures"):
        figures, importance = make_figures(out, pre, tasks, task_data, scaling,
                                          plan.pretrain.get("target", "waveform"))
    pretraining = {k: (str(v) if isinstance(v, Path) else v) for k, v in pre.items()
                   if k not in ("data", "held_out_index")}
    results = {
        "plan": {"name": plan.name, "model": plan.model, "pretrain": plan.pretrain,
                 "finetune": plan.finetune, "seeds": list(plan.seeds),
                 "methods": list(plan.methods), "scaling_methods": list(plan.scaling_methods),
                 "val_fraction": plan.val_fraction, "n_random": plan.n_random,
                 "objective_reason": OBJECTIVE_REASON,
                 "holdout_from": HOLDOUT_FROM, "baseline": BASELINE,
                 "importance_task": IMPORTANCE_TASK},
        "pretraining": pretraining, "diagnostics": diagnostics, "tasks": tasks,
        "scaling": scaling, "importance": importance,
        "figures": {k: p.name for k, p in figures.items()},
        "environment": environment(), "stage_seconds": stages.seconds,
    }
    results["stage_seconds"]["total"] = round(time.perf_counter() - t0, 1)
    atomic_write_json(out / "results.json", results)
    write_report(out / "report.html", results, figures)
    logger.info("demo finished in %.0f s: %s", results["stage_seconds"]["total"], out)
    return results
