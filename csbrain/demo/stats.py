"""Summaries of the demo's per-seed scores: mean ± std, paired differences, 95 % intervals."""

from __future__ import annotations

from typing import Any

import numpy as np

#: Test metrics summarised for every method and initialisation.
METRICS: tuple[str, ...] = ("balanced_accuracy", "auroc", "auc_pr")


def summary(values: list[float | None]) -> dict[str, Any]:
    """``per_seed``, ``mean`` and ``std`` (population, ddof 0) of the values that exist."""
    vals = [v for v in values if v is not None]
    return {"per_seed": values, "mean": float(np.mean(vals)) if vals else None,
            "std": float(np.std(vals)) if vals else None}


def paired_difference(a: list[float], b: list[float], *, level: float = 0.95) -> dict[str, Any]:
    """Paired difference ``a - b`` (same seed, same split) with a Student-t interval.

    Parameters
    ----------
    a, b : list of float
        Per-seed scores, in the same seed order.
    level : float
        Confidence level of the two-sided interval.

    Returns
    -------
    dict
        ``per_seed`` differences, ``mean``, ``std`` (ddof 1), ``n``, ``ci`` ``[low, high]``:
        mean ± t_{n-1, (1+level)/2} · std / sqrt(n) (``None`` with fewer than two seeds), and
        ``excludes_zero``.
    """
    from scipy import stats

    if len(a) != len(b):
        raise ValueError(f"paired scores need the same seeds: {len(a)} vs {len(b)} values")
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = len(d)
    out: dict[str, Any] = {"per_seed": d.tolist(), "mean": float(d.mean()) if n else None,
                           "n": n, "level": level, "std": None, "ci": None,
                           "excludes_zero": None}
    if n >= 2:
        sd = float(d.std(ddof=1))
        half = float(stats.t.ppf((1 + level) / 2, n - 1)) * sd / np.sqrt(n)
        out.update(std=sd, ci=[float(d.mean() - half), float(d.mean() + half)])
        out["excludes_zero"] = bool(out["ci"][0] > 0 or out["ci"][1] < 0)
    return out


def summarise_task(runs: dict[str, dict[str, list[dict]]]) -> dict[str, Any]:
    """Per method: each init's :func:`summary` per metric and the pretrained − scratch
    :func:`paired_difference` per metric (seeds paired by their ``seed``)."""
    out: dict[str, Any] = {}
    for method, inits in runs.items():
        entry: dict[str, Any] = {init: {k: summary([s["test"][k] for s in per_seed])
                                        for k in METRICS} for init, per_seed in inits.items()}
        if {"pretrained", "scratch"} <= set(inits):
            scratch = {s["seed"]: s["test"] for s in inits["scratch"]}
            pre = [s for s in inits["pretrained"] if s["seed"] in scratch]
            entry["difference"] = {k: paired_difference([s["test"][k] for s in pre],
                                                        [scratch[s["seed"]][k] for s in pre])
                                   for k in METRICS}
        out[method] = entry
    return out
