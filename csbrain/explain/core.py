"""Explain a task model on windows: per-window attributions and their per-class summaries.

:func:`explain_windows` is the computation (arrays in, numbers out); :func:`explain` loads a
model folder and a window store or EEG file as ``csbrain evaluate`` / ``predict`` do, runs it in
batches and writes figures, ``explanations.json`` and ``index.html``.

Shapes: n windows, C channels (input order), P patches, R regions present, K classes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from csbrain._checks import check_option
from csbrain.explain import attribution
from csbrain.explain.attention import read_attention
from csbrain.montage import REGION_NAMES
from csbrain.report.importance import occlusion_importance

logger = logging.getLogger(__name__)

__all__ = ["METHODS", "explain_windows", "summarise"]

#: The attribution methods (name -> what it measures); ``attention`` is read, not attributed.
METHODS = {"ig": "integrated gradients (Captum), |attribution| per channel and patch",
           "gradcam": "Grad-CAM on a token map of the backbone (patch embedding by default)",
           "occlusion": "drop of the target score when a channel / region is zeroed",
           "attention": "attention weights of the inter-window and inter-region modules"}


def explain_windows(model: torch.nn.Module, x: np.ndarray, target: np.ndarray, *,
                    methods: Sequence[str] = tuple(METHODS), ig_steps: int = 32,
                    gradcam_layer: str = "embedding", batch_size: int = 32,
                    device: str | torch.device = "cpu",
                    progress: bool = False) -> dict[str, Any]:
    """Per-window attributions of ``model`` for the class ``target`` of each window.

    Parameters
    ----------
    model : torch.nn.Module
        A csbrain classifier (``model.backbone`` a :class:`~csbrain.models.CSBrain`).
    x : ndarray, shape (n, C, P, 200)
        Windows in model units, channels in the montage's input order.
    target : ndarray of int, shape (n,)
        Class explained per window (the true label, or the prediction when unlabelled).
    methods : sequence of str
        Keys of :data:`METHODS`.
    ig_steps, batch_size, device, progress
        Integrated-gradients steps, windows per batch, torch device, tqdm bar.
    gradcam_layer : {"embedding", "output"}
        Token map of Grad-CAM (:data:`csbrain.explain.attribution.GRADCAM_LAYERS`).

    Returns
    -------
    dict
        ``ig`` / ``gradcam``: ``(n, C, P)``; ``occlusion``: ``(n, C)`` channel and ``(n, R)``
        region drops under ``occlusion`` and ``occlusion_region``; ``attention_window``:
        per layer ``(K, w, w)`` and ``attention_region``: per layer ``(K, C, C)`` (sorted
        order), sums over the windows of each target class (counts in ``attention_count``
        ``(K,)``; summed as batches go, so memory does not grow with ``n``);
        ``seconds_per_window`` per method.
    """
    from tqdm.auto import tqdm

    for m in methods:
        check_option("method", m, tuple(METHODS))
    check_option("gradcam_layer", gradcam_layer, tuple(attribution.GRADCAM_LAYERS))
    model = model.to(device).eval()
    regions = np.asarray(model.backbone.montage.regions)
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    tt = torch.from_numpy(np.asarray(target, dtype=np.int64))
    parts: dict[str, list] = {}
    sums: dict[str, Any] = {}
    n_classes = int(tt.max()) + 1 if len(tt) else 0
    seconds: dict[str, float] = {m: 0.0 for m in methods}
    bar = tqdm(total=len(xt), desc="explain", unit="window", disable=not progress)
    for i in range(0, len(xt), batch_size):
        xb, tb = xt[i:i + batch_size].to(device), tt[i:i + batch_size].to(device)
        for m in methods:
            t0 = time.perf_counter()
            if m == "ig":
                parts.setdefault("ig", []).append(
                    attribution.integrated_gradients(model, xb, tb, n_steps=ig_steps)[0])
            elif m == "gradcam":
                parts.setdefault("gradcam", []).append(
                    attribution.grad_cam(model, xb, tb, gradcam_layer))
            elif m == "occlusion":
                ch, reg = attribution.occlusion(model, xb, tb, regions)
                parts.setdefault("occlusion", []).append(ch)
                parts.setdefault("occlusion_region", []).append(reg)
            else:
                with read_attention(model) as att:
                    model(xb)
                _add_per_class(sums, "attention_window", att["window"], tb, n_classes)
                _add_per_class(sums, "attention_region", att["region"], tb, n_classes)
                sums["attention_count"] = sums.get("attention_count", 0) + np.bincount(
                    tb.cpu().numpy(), minlength=n_classes)
            seconds[m] += time.perf_counter() - t0
        bar.update(len(xb))
    bar.close()
    out: dict[str, Any] = {}
    for k, v in parts.items():
        out[k] = np.concatenate(v)
    out.update(sums)
    out["seconds_per_window"] = {m: s / max(len(xt), 1) for m, s in seconds.items()}
    for m, s in out["seconds_per_window"].items():
        logger.info("%s: %.4f s per window", m, s)
    return out


def _add_per_class(sums: dict[str, Any], key: str, layers: list[torch.Tensor],
                   target: torch.Tensor, n_classes: int) -> None:
    """Add each layer's ``(B, a, b)`` weights to per-class sums ``(K, a, b)`` in ``sums[key]``."""
    onehot = torch.nn.functional.one_hot(target.cpu(), n_classes).to(torch.float64)  # (B, K)
    new = [torch.einsum("bk,bij->kij", onehot, a.double()).numpy() for a in layers]
    sums[key] = new if key not in sums else [s + n for s, n in zip(sums[key], new)]


def _region_mean(values: np.ndarray, regions: np.ndarray, present: list[int]) -> np.ndarray:
    """Mean over the channels of each region along axis 0: ``(C, ...)`` -> ``(R, ...)``."""
    return np.stack([values[regions == r].mean(0) for r in present])


def summarise(model: torch.nn.Module, raw: dict[str, Any], target: np.ndarray,
              class_names: Sequence[str], x: np.ndarray | None = None,
              y: np.ndarray | None = None) -> dict[str, Any]:
    """Per-class numbers of :func:`explain_windows`: everything the figures plot.

    For each method and class: ``channel`` ``(C,)`` (mean |attribution| over the class's windows
    and patches; occlusion: mean score drop), ``region`` ``{name: value}`` (mean over the
    region's channels) and, for IG / Grad-CAM, ``region_time`` ``(R, P)``. Attention: per
    layer and averaged, the region ``(C, C)`` matrix (sorted channel labels) and its ``(R, R)``
    reduction, and the window matrix. With ``x`` and labels ``y``, ``occlusion_accuracy``:
    the drop of balanced accuracy (:func:`csbrain.report.importance.occlusion_importance`).
    """
    backbone = model.backbone
    montage = backbone.montage
    regions = np.asarray(montage.regions)
    present = sorted(set(regions.tolist()))
    names = [REGION_NAMES[r] for r in present]
    target = np.asarray(target)
    res: dict[str, Any] = {"channels": list(montage.channels), "regions": names,
                           "channel_regions": [REGION_NAMES[r] for r in regions],
                           "classes": list(class_names), "n_windows": int(len(target)),
                           "seconds_per_window": raw.get("seconds_per_window", {}),
                           "methods": {}}
    for m in ("ig", "gradcam", "occlusion"):
        if m not in raw:
            continue
        per_class = {}
        for k, name in enumerate(class_names):
            sel = target == k
            if not sel.any():
                continue
            if m == "occlusion":
                ch = raw[m][sel].mean(0)
                reg = raw["occlusion_region"][sel].mean(0)
                entry = {"channel": ch.tolist(), "region": dict(zip(names, reg.tolist()))}
            else:
                cp = np.abs(raw[m][sel]).mean(0)                     # (C, P)
                rt = _region_mean(cp, regions, present)              # (R, P)
                entry = {"channel": cp.mean(1).tolist(),
                         "region": dict(zip(names, rt.mean(1).tolist())),
                         "region_time": rt.tolist()}
            entry["n_windows"] = int(sel.sum())
            per_class[name] = entry
        res["methods"][m] = per_class
    if "occlusion" in raw and x is not None and y is not None and len(set(y.tolist())) > 1:
        def predict(z: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                zt = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))
                dev = next(model.parameters()).device
                return np.concatenate([attribution.class_scores(model, zt[i:i + 64].to(dev))
                                       .argmax(1).cpu().numpy() for i in range(0, len(z), 64)])
        drop, region_drop = occlusion_importance(predict, x, y, list(regions))
        res["occlusion_accuracy"] = {"channel": drop.tolist(), "region": region_drop}
    if "attention_region" in raw:
        sorted_names = [montage.channels[i] for i in montage.order]
        sorted_regions = regions[list(montage.order)]
        att: dict[str, Any] = {"sorted_channels": sorted_names, "per_class": {}}
        count = np.asarray(raw["attention_count"])
        for k, name in enumerate(class_names):
            if k >= len(count) or count[k] == 0:
                continue
            layers = [a[k] / count[k] for a in raw["attention_region"]]       # (C, C) each
            mats = {f"layer {i + 1}": a for i, a in enumerate(layers)}
            mats["mean"] = np.mean(layers, axis=0)
            wins = {f"layer {i + 1}": a[k] / count[k] for i, a in
                    enumerate(raw["attention_window"])}
            wins["mean"] = np.mean(list(wins.values()), axis=0)
            att["per_class"][name] = {
                "channel": {k2: v.tolist() for k2, v in mats.items()},
                # rows: query region (mean over its channels); columns: total weight on the
                # key region's channels
                "region": {k2: [[float(v[np.ix_(sorted_regions == a, sorted_regions == b)]
                                       .sum(1).mean()) for b in present] for a in present]
                           for k2, v in mats.items()},
                "window": {k2: v.tolist() for k2, v in wins.items()}}
        res["attention"] = att
    return res
