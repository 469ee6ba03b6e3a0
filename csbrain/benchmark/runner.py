"""``run``: fine-tune a prepared benchmark store with its recipe, one run folder per seed.

Each seed is an ordinary :func:`csbrain.train.finetune` run (the project's training engine) in
``OUT/<recipe>-<variant>/seed<k>/``, configured from the recipe: learning rate, weight decay,
head dropout, epochs, batch size, head, the checkpoint metric of the released script and, for a
recipe with ``sequence_length`` (ISRUC), the released sequence model; the
split is the store's (recorded per recording by ``prepare``), with the recipe's validation rule
where the store has none (Siena). Variant rules that act on training data (SHU-MI's random 30 %,
TUAB's first 50,000 files) drop training windows with the split seed, so every seed sees the same
data. Resumable: a seed with ``metrics.json`` is done; one with a checkpoint is resumed; a folder
with neither (killed before its first checkpoint) is started again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from csbrain.benchmark.prepare import read_benchmark
from csbrain.benchmark.recipes import BenchmarkError, get_recipe

logger = logging.getLogger(__name__)

__all__ = ["RUN_FILE", "finetune_config", "run_data", "run_benchmark"]

#: Written in each benchmark run folder: recipe, variant, seed, store.
RUN_FILE = "benchmark_run.json"


def finetune_config(recipe: dict[str, Any], seed: int, init: str | None,
                    overrides: Sequence[str] = ()):
    """The :class:`~csbrain.train.FinetuneConfig` of a recipe and seed (``key=value`` overrides
    on top, e.g. ``model.preset=tiny`` for tests)."""
    from csbrain.configio import to_dict
    from csbrain.train import FinetuneConfig, load_run_config

    h, split = recipe["hparams"], recipe["split"]
    base = FinetuneConfig()
    cfg = dataclasses.replace(
        base, seed=seed, epochs=h["epochs"], batch_size=h["batch_size"], lr=h["lr"],
        weight_decay=h["weight_decay"], head=h["head"], head_dropout=h["dropout"],
        select_metric=recipe["select_metric"], task=recipe["task"], init=init,
        sequence_length=int(recipe.get("sequence_length", 0)),
        split=dataclasses.replace(base.split, use_store_splits=True, test_fraction=0.0,
                                  val_fraction=float(split.get("val_fraction", 0.0))
                                  if split["kind"] == "file" else 0.0,
                                  val_by=split.get("val_by"), seed=int(split.get("seed", 0))))
    if not overrides:
        return cfg
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "cfg.json"
        p.write_text(json.dumps(to_dict(cfg)))
        return load_run_config(FinetuneConfig, str(p), list(overrides))


def run_data(store: str | Path, recipe: dict[str, Any]):
    """The store as :class:`~csbrain.engine.rundata.RunData`, with the variant's training-data
    rules applied (dropped windows become unlabelled) and float targets for regression."""
    from csbrain.data.store import WindowStore
    from csbrain.engine.rundata import RunData, open_run_data

    rd = open_run_data(store)
    if recipe["task"] == "regression":
        ws = WindowStore(store)
        recs = list(dict.fromkeys(rd.groups["recording"].tolist()))
        import zarr

        xs, ts = [], []
        for r in recs:
            xs.append(np.asarray(ws.arrays(r)[0][:], dtype=np.float32))
            ts.append(np.asarray(zarr.open_array(str(ws.data_path / r / "target"), mode="r")[:]))
        rd = RunData.from_arrays(np.concatenate(xs), np.concatenate(ts), rd.montage,
                                 subject=rd.groups["subject"], recording=rd.groups["recording"],
                                 split=rd.groups["split"], prep_config=rd.prep_config)
    rng = np.random.default_rng(int(recipe["split"].get("seed", 0)))
    train = np.flatnonzero(rd.groups["split"] == "train")
    drop = np.zeros(len(rd.labels), dtype=bool)
    if recipe.get("max_train_files"):
        recs = sorted(set(rd.groups["recording"][train].tolist()))
        keep = {recs[i] for i in rng.permutation(len(recs))[:int(recipe["max_train_files"])]}
        drop[train] = ~np.isin(rd.groups["recording"][train], list(keep))
    if recipe.get("train_fraction"):
        k = int(round(float(recipe["train_fraction"]) * len(train)))
        drop[train[rng.permutation(len(train))[k:]]] = True
    if drop.any():
        labels = np.array(rd.labels, copy=True)
        labels[drop] = np.nan if labels.dtype.kind == "f" else -1
        rd = dataclasses.replace(rd, labels=labels)
        logger.info("variant %s: %d training windows dropped", recipe["variant"], drop.sum())
    return rd


def run_benchmark(store: str | Path, out: str | Path, *, init: str | None = None,
                  seeds: Sequence[int] = (0, 1, 2, 3, 4), variant: str | None = None,
                  overrides: Sequence[str] = (),
                  progress: Callable[[int, str], None] | None = None) -> list[Path]:
    """Fine-tune a benchmark store once per seed (resumable).

    Parameters
    ----------
    store : path-like
        Made by :func:`csbrain.benchmark.prepare.prepare_benchmark`.
    out : path-like
        Parent folder; runs go to ``out/<recipe>-<variant>/seed<k>``.
    init : str | None
        Initial backbone (the released ``CSBrain.pth``, a csbrain model or run folder).
    seeds : sequence of int
    variant : {"released", "fixed"} | None
        Must be the store's (None: the store's).
    overrides : sequence of str
        ``key=value`` run-config overrides applied after the recipe's.
    progress : callable | None
        Called with ``(seed, "done"|"skipped")``.

    Returns
    -------
    list of Path
        The run folders.
    """
    from csbrain.engine.rundir import METRICS_FINAL
    from csbrain.train import finetune

    bench = read_benchmark(store)
    if variant is not None and variant != bench["variant"]:
        raise BenchmarkError(f"store {str(store)!r} was prepared for variant "
                             f"{bench['variant']!r}; prepare another store with --variant "
                             f"{variant} (the variants preprocess differently)")
    recipe = get_recipe(bench["recipe"], bench["variant"])
    rd = run_data(store, recipe)
    base = Path(out) / f"{recipe['name']}-{recipe['variant']}"
    dirs = []
    for seed in seeds:
        d = base / f"seed{seed}"
        dirs.append(d)
        if (d / METRICS_FINAL).is_file():
            if progress:
                progress(seed, "skipped")
            continue
        resume = (d / "trainer_state.pt").is_file()
        if d.exists() and not resume:
            shutil.rmtree(d)
        cfg = finetune_config(recipe, seed, init, overrides)
        finetune(cfg, rd, d, resume=resume)
        (d / RUN_FILE).write_text(json.dumps(
            {"recipe": recipe["name"], "variant": recipe["variant"], "seed": seed,
             "store": str(store), "init": init, "overrides": list(overrides),
             "splits_sha256": bench.get("splits_sha256")}, indent=1) + "\n")
        if progress:
            progress(seed, "done")
    return dirs
