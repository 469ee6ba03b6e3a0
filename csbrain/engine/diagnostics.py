"""Representation diagnostics: do a frozen backbone's features vary across windows, and do they
carry the labels?

:func:`extract_features` reads the tokens after the patch embedding and after every encoder
layer (forward hooks on those modules, so the fused CPU kernels still run), pooled over all
tokens (``*_pooled``, ``(n, D)``) and per channel (mean over patches, channels concatenated in
the model's sorted order: ``*_channels``, ``(n, C*D)``). :func:`feature_stats` measures spread
across windows, effective rank and mean pairwise cosine; :func:`linear_probe` cross-validates a
standardised logistic regression. :func:`diagnose` reports all of it for a model next to
randomly initialised backbones of the same configuration and montage, and flags collapse.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from csbrain.engine.rundata import labelled_indices

logger = logging.getLogger(__name__)

__all__ = ["feature_stats", "extract_features", "linear_probe", "diagnose",
           "SPREAD_THRESHOLD", "RANDOM_FRACTION"]

#: With random backbones to compare with, a feature set whose spread (std across windows /
#: RMS) is below this fraction of theirs (mean over the random backbones) is flagged collapsed
#: (the issue-12 demo backbone: 0.035-0.06 against 0.3-0.6).
RANDOM_FRACTION = 0.25
#: Without random backbones (``n_random=0``), a spread below this is flagged collapsed.
SPREAD_THRESHOLD = 0.1
#: Windows whose pairwise cosines :func:`feature_stats` averages (a seeded subset if more).
MAX_COSINE_WINDOWS = 1024


def feature_stats(features: np.ndarray | torch.Tensor, *, seed: int = 0) -> dict[str, float]:
    """Spread, effective rank and mean pairwise cosine of a set of feature vectors.

    Parameters
    ----------
    features : array-like, shape (n, d)
        One vector per window, ``n >= 2``.
    seed : int
        Seeds the subset of :data:`MAX_COSINE_WINDOWS` windows whose cosines are averaged
        when ``n`` is larger.

    Returns
    -------
    dict
        ``spread``: mean over dimensions of the std across windows, divided by the RMS of all
        features (scale-free; 0 when every window maps to the same vector).
        ``effective_rank``: participation ratio ``(sum λ)² / sum λ²`` of the covariance
        eigenvalues (between 1 and ``min(n - 1, d)``; windows that all map to one vector
        count as 1). ``mean_cosine``: mean cosine similarity over pairs of different windows
        (1 when all vectors point the same way, ~0 for isotropic features).
    """
    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().numpy()
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features have shape {f.shape}; expected (n >= 2 windows, d)")
    n, d = f.shape
    second = float(np.mean(f ** 2))
    rms = math.sqrt(second)
    spread = float(np.mean(f.std(axis=0)) / rms) if rms > 0 else 0.0
    centred = f - f.mean(axis=0)
    eig = np.linalg.svd(centred, compute_uv=False) ** 2 / (n - 1)
    total = float(eig.sum())
    if total <= 1e-12 * d * max(second, np.finfo(float).tiny):   # one point (up to rounding)
        rank = 1.0
    else:
        rank = total ** 2 / float(np.sum(eig ** 2))
    sub = f
    if n > MAX_COSINE_WINDOWS:
        idx = np.random.default_rng(seed).choice(n, MAX_COSINE_WINDOWS, replace=False)
        sub = f[np.sort(idx)]
    norms = np.linalg.norm(sub, axis=1, keepdims=True)
    u = sub / np.where(norms > 0, norms, 1.0)
    m = len(u)
    gram_sum = float(np.sum(u.sum(axis=0) ** 2))          # sum over all pairs, self included
    cosine = (gram_sum - float(np.sum(u ** 2))) / (m * (m - 1))
    return {"spread": spread, "effective_rank": float(rank), "mean_cosine": float(cosine)}


def _batches(windows: Any, batch_size: int):
    """Yield float tensors ``(b, C, P, S)`` from an array / tensor or a dataset of items."""
    if isinstance(windows, (np.ndarray, torch.Tensor)):
        x = torch.as_tensor(windows)
        for i in range(0, len(x), batch_size):
            yield x[i:i + batch_size]
        return
    for item in DataLoader(windows, batch_size=batch_size, shuffle=False):
        yield item[0] if isinstance(item, (list, tuple)) else item


def extract_features(model: torch.nn.Module, windows: Any, *, batch_size: int = 64,
                     device: str | torch.device | None = None) -> dict[str, np.ndarray]:
    """Frozen features of ``model`` at the patch embedding and after each encoder layer.

    Parameters
    ----------
    model : CSBrain | task model
        A backbone, or a model with a ``backbone`` attribute (its head is not used).
    windows : ndarray | Tensor, shape (n, C, P, S) | Dataset
        Windows in the model's input channel order, or a dataset of ``(x, ...)`` items.
    batch_size : int
    device : str | torch.device | None
        Where the forward passes run (the backbone is moved there); ``None``: where the
        backbone is.

    Returns
    -------
    dict of str to ndarray (float32)
        ``embedding_pooled``, ``layer1_pooled``, ... ``(n, D)``: mean over all tokens;
        ``embedding_channels``, ``layer1_channels``, ... ``(n, C*D)``: mean over patches of
        each channel (sorted order), channels concatenated.

    Notes
    -----
    The backbone runs in eval mode without gradients (its mode is restored afterwards). The
    hooks sit on ``backbone.patch_embedding`` and ``backbone.layers[i]``, not on their
    submodules, so :mod:`csbrain.models.fused_cpu` keeps running its kernels; outputs are the
    same with and without them.
    """
    backbone = getattr(model, "backbone", model)
    if device is not None:
        backbone.to(device)
    device = next(backbone.parameters()).device
    sites = [("embedding", backbone.patch_embedding)] + [
        (f"layer{i + 1}", layer) for i, layer in enumerate(backbone.layers)]
    parts: dict[str, list[np.ndarray]] = {}

    def hook_for(name: str):
        def hook(module, inputs, output):
            h = output.detach().float()                                     # (B, C, P, D)
            parts.setdefault(f"{name}_pooled", []).append(h.mean(dim=(1, 2)).cpu().numpy())
            parts.setdefault(f"{name}_channels", []).append(
                h.mean(dim=2).flatten(1).cpu().numpy())
        return hook

    handles = [module.register_forward_hook(hook_for(name)) for name, module in sites]
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            for x in _batches(windows, batch_size):
                backbone(x.to(device=device, dtype=next(backbone.parameters()).dtype))
    finally:
        for handle in handles:
            handle.remove()
        backbone.train(was_training)
    if not parts:
        raise ValueError("no window to extract features from")
    return {k: np.concatenate(v) for k, v in parts.items()}


def linear_probe(features: np.ndarray, labels: np.ndarray, *, groups: np.ndarray | None = None,
                 n_splits: int = 5, seed: int = 0, C: float = 1.0,
                 max_iter: int = 2000) -> dict[str, Any]:
    """Cross-validated standardised logistic regression on frozen features.

    Parameters
    ----------
    features : ndarray, shape (n, d)
    labels : ndarray, shape (n,)
        Class labels (at least two classes).
    groups : ndarray, shape (n,) | None
        Windows of one group stay in one fold (``StratifiedGroupKFold``); else
        ``StratifiedKFold``. Both shuffle with ``seed``.
    n_splits : int
        Folds (reduced to the smallest class size, or to the fewest groups of any class).
    seed : int
    C, max_iter : float, int
        Of :class:`sklearn.linear_model.LogisticRegression`.

    Returns
    -------
    dict
        ``balanced_accuracy`` and ``balanced_accuracy_std`` over folds, ``n_splits``; for two
        classes also ``auroc`` and ``auroc_std`` (``None`` if no fold had both classes).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(features, dtype=np.float64)
    classes, y = np.unique(np.asarray(labels), return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"a linear probe needs two classes or more; the labels hold "
                         f"{len(classes)}")
    if len(x) != len(y):
        raise ValueError(f"{len(x)} feature rows for {len(y)} labels")
    k = min(n_splits, int(np.bincount(y).min()))
    if groups is not None:                          # every class can reach every test fold
        groups = np.asarray(groups)
        k = min(k, min(len(np.unique(groups[y == c])) for c in range(len(classes))))
    if k < 2:
        raise ValueError("too few windows per class (or groups) for a cross-validated probe")
    cv = (StratifiedGroupKFold(k, shuffle=True, random_state=seed) if groups is not None
          else StratifiedKFold(k, shuffle=True, random_state=seed))
    baccs, aucs = [], []
    for train, test in cv.split(x, y, groups):
        if len(np.unique(y[train])) < 2:
            continue
        pipe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
        pipe.fit(x[train], y[train])
        baccs.append(balanced_accuracy_score(y[test], pipe.predict(x[test])))
        if len(classes) == 2 and len(np.unique(y[test])) == 2:
            aucs.append(roc_auc_score(y[test], pipe.decision_function(x[test])))
    out: dict[str, Any] = {"balanced_accuracy": _mean(baccs),
                           "balanced_accuracy_std": _std(baccs), "n_splits": k}
    if len(classes) == 2:
        out.update(auroc=_mean(aucs), auroc_std=_std(aucs))
    return out


def _mean(v: list[float]) -> float | None:
    return float(np.mean(v)) if v else None


def _std(v: list[float]) -> float | None:
    return float(np.std(v)) if v else None


def _random_backbone(backbone: torch.nn.Module, seed: int) -> torch.nn.Module:
    """A freshly initialised :class:`~csbrain.models.CSBrain` of ``backbone``'s configuration
    and montage (seeded; the global RNG is left as it was)."""
    from csbrain.models import CSBrain

    p = next(backbone.parameters())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        rand = CSBrain(backbone.montage, backbone.config)
    rand.fused_cpu = getattr(backbone, "fused_cpu", True)
    return rand.to(device=p.device, dtype=p.dtype)


def diagnose(model: torch.nn.Module, windows: Any, labels: np.ndarray | None = None, *,
             groups: np.ndarray | None = None, n_random: int = 3, seed: int = 0,
             batch_size: int = 64, device: str | torch.device | None = None,
             max_windows: int | None = None, n_splits: int = 5) -> dict[str, Any]:
    """Feature statistics (and linear probes) of a frozen model next to random backbones.

    Parameters
    ----------
    model : CSBrain | task model
    windows : ndarray | Tensor, shape (n, C, P, S) | Dataset
        As :func:`extract_features` takes them (input channel order of the model's montage).
    labels : ndarray, shape (n,) | None
        Class ids (-1: unlabelled); with two classes or more among the labelled windows each
        feature set is probed (:func:`linear_probe`). Float (regression) labels are not probed.
    groups : ndarray, shape (n,) | None
        Probe folds keep each group together (e.g. the recording).
    n_random : int
        Random-initialised backbones (same config and montage, seeds ``seed + 1 ...``).
    seed : int
        Seeds the random backbones, the window subset, the cosine subset and the folds.
    batch_size : int
    device : str | torch.device | None
    max_windows : int | None
        Use a seeded random subset of this many windows.
    n_splits : int

    Returns
    -------
    dict (JSON-able)
        ``n_windows``, ``n_random``, ``seed``, ``thresholds`` and ``features``: per feature
        set ``model`` (:func:`feature_stats`), ``random`` (one per random backbone),
        ``random_mean``, ``probe`` (``{"model": ..., "random": [...]}``, only with labels)
        and ``collapsed``: spread below :data:`RANDOM_FRACTION` of the random backbones' mean
        spread (with ``n_random=0``: below :data:`SPREAD_THRESHOLD`). Random backbones are
        the reference because the spread of a healthy encoder depends on its size and on the
        data (pooling many tokens of a wide model lowers it).
    """
    backbone = getattr(model, "backbone", model)
    n = len(windows)
    idx = np.arange(n)
    if max_windows is not None and n > max_windows:
        idx = np.sort(np.random.default_rng(seed).choice(n, max_windows, replace=False))
        windows = windows[idx] if isinstance(windows, (np.ndarray, torch.Tensor)) else \
            Subset(windows, idx.tolist())
    probe_idx = None
    if labels is not None:
        labels = np.asarray(labels)[idx]
        groups = None if groups is None else np.asarray(groups)[idx]
        if labels.dtype.kind == "f":
            logger.info("float (regression) labels: no linear probe")
        else:
            probe_idx = labelled_indices(labels)
            if len(np.unique(labels[probe_idx])) < 2:
                logger.warning("fewer than two classes among the labelled windows: no probe")
                probe_idx = None
    sets = [extract_features(backbone, windows, batch_size=batch_size, device=device)]
    for k in range(n_random):
        rand = _random_backbone(backbone, seed + 1 + k)
        sets.append(extract_features(rand, windows, batch_size=batch_size))
    features: dict[str, Any] = {}
    for name in sets[0]:
        stats = [feature_stats(s[name], seed=seed) for s in sets]
        entry: dict[str, Any] = {"model": stats[0], "random": stats[1:]}
        if n_random:
            entry["random_mean"] = {k: float(np.mean([s[k] for s in stats[1:]]))
                                    for k in stats[0]}
        spread = stats[0]["spread"]
        entry["collapsed"] = bool(spread < RANDOM_FRACTION * entry["random_mean"]["spread"]
                                  if n_random else spread < SPREAD_THRESHOLD)
        if probe_idx is not None:
            g = None if groups is None else groups[probe_idx]
            probes = [linear_probe(s[name][probe_idx], labels[probe_idx], groups=g,
                                   n_splits=n_splits, seed=seed) for s in sets]
            entry["probe"] = {"model": probes[0], "random": probes[1:]}
        features[name] = entry
        logger.info("%s: spread %.3g, effective rank %.3g, mean cosine %.3g%s", name, spread,
                    stats[0]["effective_rank"], stats[0]["mean_cosine"],
                    " (collapsed)" if entry["collapsed"] else "")
    return {"n_windows": len(idx), "n_random": n_random, "seed": seed,
            "n_probe_windows": None if probe_idx is None else len(probe_idx),
            "thresholds": {"spread": SPREAD_THRESHOLD, "random_fraction": RANDOM_FRACTION},
            "features": features}
