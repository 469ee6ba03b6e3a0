"""Per-window attributions of a task model: integrated gradients, Grad-CAM, occlusion.

Every method returns, for each window and its target class, a ``(C, P)`` map over input
channels (the montage's input order) and patches, so all methods aggregate the same way
(:mod:`csbrain.explain.summary`).

Shapes: B windows, C channels (input order), P patches, S = 200 samples per patch, K classes.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from csbrain._checks import CSBrainError, check_option

logger = logging.getLogger(__name__)

__all__ = ["baseline_of", "class_scores", "integrated_gradients", "grad_cam", "occlusion",
           "require_captum"]


def require_captum():
    """Import Captum or fail with one line naming the extra."""
    try:
        import captum.attr
    except ImportError:  # pragma: no cover - depends on the environment
        raise CSBrainError("integrated gradients need Captum: pip install csbrain-eeg[explain]"
                           ) from None
    return captum.attr


def class_scores(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Per-class scores ``(B, K)``: the logits, or ``[-z, z]`` for a single-logit binary model."""
    out = model(x)
    return torch.cat([-out, out], dim=1) if out.shape[1] == 1 else out


def baseline_of(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The integrated-gradients baseline: white noise with each window's per-channel std.

    Not zeros: the patch embedding's GroupNorm makes the model nearly invariant to the input's
    scale, so along the path ``a * x`` the output jumps between ``a = 1e-5`` and ``1e-4`` (the
    norm's epsilon) and the path integral misses it (completeness failed by more than the
    output itself, measured on the tests' tiny model). A noise window of the same power has no
    class signal and keeps the whole path away from zero.
    """
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(x.shape, generator=g).to(x.device, x.dtype)
    return noise * x.std(dim=(2, 3), keepdim=True)


def integrated_gradients(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, *,
                         n_steps: int = 32, return_delta: bool = False):
    """Integrated gradients (Captum) from a noise baseline (:func:`baseline_of`).

    Parameters
    ----------
    model : torch.nn.Module
        A task model in eval mode.
    x : Tensor, shape (B, C, P, S)
    target : Tensor, shape (B,)
        Class explained for each window.
    n_steps : int
        Riemann steps of the path integral.
    return_delta : bool
        Also return the completeness error ``sum(attr) - (F(x) - F(baseline))`` ``(B,)``.

    Returns
    -------
    attr : ndarray, shape (B, C, P)
        Attributions summed over the samples of each patch (signed).
    full : ndarray, shape (B, C, P, S)
        The raw attributions (for the completeness check).
    delta : ndarray, shape (B,), only with ``return_delta``
    """
    attr_mod = require_captum()
    ig = attr_mod.IntegratedGradients(lambda z: class_scores(model, z))
    a, delta = ig.attribute(x, baselines=baseline_of(x), target=target, n_steps=n_steps,
                            return_convergence_delta=True, internal_batch_size=len(x) * 8)
    full = a.detach().float().cpu().numpy()
    out = (full.sum(-1), full)
    return (*out, delta.detach().cpu().numpy()) if return_delta else out


#: Token maps Grad-CAM can read, each ``(B, C, P, D)`` in sorted channel order, with the token
#: axes its gradient weights are averaged over. ``embedding`` (default): the patch embedding's
#: map, the last one where a token belongs to one electrode (what a topomap needs), with
#: weights per electrode averaged over its patches (the Grad-CAM average taken over time).
#: ``output``: the backbone's final map with weights averaged over every token, the literal
#: transfer of Grad-CAM to the last layer; its tokens are mixed across electrodes by the
#: inter-region attention; on the tests' one-region task it ranks the informative region first
#: for 14 of 17 trained models, the embedding map for 17 of 17
#: (``benchmarks/gradcam_localisation.py --seeds 20``).
GRADCAM_LAYERS = {"embedding": (lambda backbone: backbone.patch_embedding, (2,)),
                  "output": (lambda backbone: backbone, (1, 2))}


def grad_cam(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor,
             layer: str = "embedding") -> np.ndarray:
    """Grad-CAM on a token map of the backbone (:data:`GRADCAM_LAYERS`).

    Hand-rolled with a forward hook: Captum's ``LayerGradCam`` averages the gradient over the
    dimensions after the second, i.e. it expects ``(B, D, ...)`` maps, while CSBrain's tokens
    are ``(B, C, P, D)`` with the features last.

    Returns
    -------
    ndarray, shape (B, C, P)
        ``relu(sum_d w_d h[c, p, d])`` with ``w_d`` the gradient of the target score averaged
        over the layer's token axes; channels back in the input order.
    """
    check_option("gradcam_layer", layer, tuple(GRADCAM_LAYERS))
    module_of, pooled = GRADCAM_LAYERS[layer]
    backbone = model.backbone
    kept: dict[str, torch.Tensor] = {}

    def hook(_m, _inp, out):
        out.retain_grad()
        kept["h"] = out

    handle = module_of(backbone).register_forward_hook(hook)
    try:
        with torch.enable_grad():
            scores = class_scores(model, x)
            scores.gather(1, target[:, None]).sum().backward()
    finally:
        handle.remove()
    h, g = kept["h"], kept["h"].grad                                 # (B, C, P, D) sorted
    w = g.mean(dim=pooled, keepdim=True)
    cam = torch.relu((w * h).sum(-1)).detach().float().cpu().numpy()  # (B, C, P) sorted
    out = np.empty_like(cam)
    out[:, list(backbone.layout.order.cpu().numpy())] = cam           # slot i = input order[i]
    return out


def occlusion(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor,
              regions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop of the target score when a channel or a region is replaced by zeros, per window.

    The per-window counterpart of :func:`csbrain.report.importance.occlusion_importance`
    (which measures the drop of balanced accuracy over a set; :func:`csbrain.explain.explain`
    reports both).

    Returns
    -------
    channel : ndarray, shape (B, C)
    region : ndarray, shape (B, R)
        For the regions in ``sorted(set(regions))``.
    """
    def score(z: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return class_scores(model, z).gather(1, target[:, None])[:, 0].float().cpu().numpy()

    base = score(x)

    def drop(sel: np.ndarray) -> np.ndarray:
        z = x.clone()
        z[:, torch.as_tensor(sel)] = 0.0
        return base - score(z)

    C = x.shape[1]
    channel = np.stack([drop(np.arange(C) == c) for c in range(C)], axis=1)
    region = np.stack([drop(regions == r) for r in sorted(set(regions.tolist()))], axis=1)
    return channel, region

