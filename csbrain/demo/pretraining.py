"""The demo's pretraining: every channel of every source, the held-out windows' representation
diagnostics (pretrained vs random backbones), and the smaller corpora of the scaling analysis."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from csbrain.demo.common import overrides, train_run
from csbrain.demo.data import pretraining_corpus, subsample, window_seconds
from csbrain.demo.plan import DemoPlan

logger = logging.getLogger(__name__)

#: Feature sets of the diagnostics shown in the report (the embedding and the last layer).
DIAG_FEATURES = ("embedding_pooled", "last_pooled", "last_channels")


def pretrain_config(plan: DemoPlan, progress: bool):
    """The :class:`~csbrain.train.PretrainConfig` of ``plan`` (seed 0)."""
    from csbrain.configio import load_config
    from csbrain.train import PretrainConfig

    return load_config(PretrainConfig, None, overrides(plan.model, plan.pretrain, seed=0,
                                                       progress=progress))


def held_out(data: list, cfg: Any) -> list[np.ndarray]:
    """Per source, the indices of the windows ``pretrain(cfg, data, ...)`` holds out.

    The same rule as :func:`csbrain.train.pretrain`: :func:`csbrain.engine.splits.
    holdout_indices` of the corpus's ``cfg.val_by`` groups with ``cfg.val_fraction`` and
    ``cfg.split_seed``; positions are mapped back to each in-memory source.
    """
    from csbrain.engine.corpus import open_corpus
    from csbrain.engine.splits import holdout_indices

    if len(data) == 1:
        groups = data[0].groups[cfg.val_by]
        sources = np.zeros(len(groups), dtype=np.int64)
    else:
        corpus = open_corpus(data)
        groups, sources = corpus.holdout_groups[cfg.val_by], corpus.sources
    _, val = holdout_indices(groups, cfg.val_fraction, cfg.split_seed)
    offsets = np.cumsum([0] + [len(rd) for rd in data])
    return [np.sort(val[sources[val] == s] - offsets[s]) for s in range(len(data))]


def pretrain_stage(plan: DemoPlan, sources: dict, out: Path, progress: bool) -> dict[str, Any]:
    """Pretrain on every channel of every continuous source (windows before the hold-out
    point); return the run folder, corpus facts and the per-source held-out windows."""
    from csbrain.train import pretrain

    data, corpus = pretraining_corpus(sources)
    cfg = pretrain_config(plan, progress)
    val = held_out(data, cfg)
    for entry, v in zip(corpus, val):
        entry["held_out"] = int(len(v))
    result = train_run(pretrain, cfg, data, out / "runs" / "pretrain")
    return {"run_dir": result.run_dir, "val_fraction": cfg.val_fraction,
            "mask_ratio": cfg.mask_ratio, "corpus": corpus,
            "n_windows": int(sum(len(rd) for rd in data)),
            "window_s": window_seconds(next(iter(sources.values()))),
            "hours": round(sum(c["hours"] for c in corpus), 3),
            "window_hours": round(sum(c["window_hours"] for c in corpus), 3),
            "metrics": result.metrics, "data": data, "held_out_index": val}


def _compact(name: str, entry: dict[str, Any]) -> dict[str, Any]:
    keys = ("spread", "effective_rank", "mean_cosine")
    return {"features": name, "collapsed": entry["collapsed"],
            "pretrained": {k: entry["model"][k] for k in keys},
            "random": {k: entry["random_mean"][k] for k in keys} if "random_mean" in entry
            else None,
            "random_per_backbone": [{k: r[k] for k in keys} for r in entry["random"]]}


def diagnostics_stage(plan: DemoPlan, pre: dict[str, Any], *, max_windows: int = 128
                      ) -> list[dict[str, Any]]:
    """Representation diagnostics of the pretrained backbone vs ``plan.n_random`` random-init
    backbones on each source's windows held out from pretraining.

    Returns
    -------
    list of dict
        Per source: ``source``, ``n_windows`` and ``features``: for the pooled embedding, the
        pooled last layer and the per-channel last layer, the pretrained and mean random
        spread / RMS, effective rank and mean pairwise cosine, and ``collapsed``.
    """
    import torch

    from csbrain.engine.diagnostics import diagnose
    from csbrain.models import load_model

    backbone = load_model(pre["run_dir"]).backbone
    n_layers = len(backbone.layers)
    rows = []
    for entry, rd, idx in zip(pre["corpus"], pre["data"], pre["held_out_index"]):
        if len(idx) < 3:
            continue
        backbone.set_montage(rd.montage)
        x = rd.dataset.tensors[0][torch.as_tensor(idx)]
        res = diagnose(backbone, x, n_random=plan.n_random, seed=0, max_windows=max_windows)
        feats = res["features"]
        names = {"embedding_pooled": "embedding_pooled",
                 "last_pooled": f"layer{n_layers}_pooled",
                 "last_channels": f"layer{n_layers}_channels"}
        rows.append({"source": entry["source"], "n_windows": res["n_windows"],
                     "n_random": res["n_random"],
                     "features": [_compact(label.replace("last", f"layer{n_layers}"),
                                           feats[names[label]]) for label in DIAG_FEATURES]})
    return rows


def scaling_pretrains(plan: DemoPlan, pre: dict[str, Any], fractions: tuple[float, ...],
                      out: Path) -> dict[float, Path | None]:
    """The pretrained backbone of each fraction of the pretraining windows: ``None`` for 0
    (random initialisation), the main run for 1, otherwise a run on a seeded subset of every
    source with the same config: the same epochs (so proportionally fewer optimiser steps), or
    the same steps when the plan sets ``max_steps``."""
    from csbrain.train import pretrain

    cfg = pretrain_config(plan, progress=False)
    runs: dict[float, Path | None] = {}
    for f in fractions:
        if f == 0:
            runs[f] = None
        elif f == 1:
            runs[f] = Path(pre["run_dir"])
        else:
            data = subsample(pre["data"], f, seed=0)
            runs[f] = train_run(pretrain, cfg, data, out / "runs" / f"pretrain-frac{f:g}").run_dir
    return runs
