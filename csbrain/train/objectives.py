"""The two objectives of :func:`csbrain.train.loop.train_loop`: masked reconstruction and
supervised fine-tuning (classification / regression)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from csbrain.engine.distributed import DistInfo, all_reduce_sum, unwrap
from csbrain.engine.inference import predict_outputs
from csbrain.engine.metrics import LOSS, compute_metrics, metric_mode, scores_from_outputs
from csbrain.train.losses import masked_mse, supervised_loss
from csbrain.train.masking import bernoulli_mask, sorted_target
from csbrain.train.seeds import stream_seed

logger = logging.getLogger(__name__)

__all__ = ["MaskedReconstruction", "Supervised"]

#: Stream offsets (:func:`~csbrain.train.seeds.stream_seed`): training masks (plus
#: ``_RANK_STRIDE * rank``, so ranks draw different masks) and the fixed validation masks.
_MASK_STREAM, _RANK_STRIDE, _VAL_MASK_STREAM = 1, 7919, 104729


class MaskedReconstruction:
    """Masked patch reconstruction (spec §4), target and output both in sorted order.

    Parameters
    ----------
    mask_ratio : float
    seed : int
        Seeds the mask generator (offset by the rank, so ranks draw different masks).
    rank : int
    select_val_loss : bool
        Select the saved model by the validation loss (``val_loss``; else keep the last).
    batch_size : int
        Batch size of the validation pass.
    """

    select_mode = "min"

    def __init__(self, mask_ratio: float, *, seed: int = 0, rank: int = 0,
                 select_val_loss: bool = False, batch_size: int = 64) -> None:
        self.mask_ratio = mask_ratio
        self.seed = seed
        self.generator = torch.Generator().manual_seed(
            stream_seed(seed, _MASK_STREAM + _RANK_STRIDE * rank))
        self.select_key = LOSS if select_val_loss else None
        self.batch_size = batch_size

    def loss(self, model: torch.nn.Module, batch: Any, info: DistInfo) -> torch.Tensor:
        x = batch[0]                                             # (B, C, P, S), input order
        mask = bernoulli_mask(x.shape[:3], self.mask_ratio, generator=self.generator,
                              device=x.device)                  # (B, C, P), sorted slots
        recon = model(x, mask)                                   # (B, C, P, S), sorted order
        target = sorted_target(x, unwrap(model).backbone.layout.order)
        n_masked = mask.sum().float()
        if info.distributed:  # global mean: DDP averages gradients over ranks
            n_masked = all_reduce_sum(n_masked) / info.world_size
        return masked_mse(recon, target, mask, n_masked=n_masked)

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, dataset: Dataset, info: DistInfo) -> dict[str, Any]:
        """Masked MSE over ``dataset`` with masks drawn from a fixed seed (comparable evals)."""
        gen = torch.Generator().manual_seed(stream_seed(self.seed, _VAL_MASK_STREAM))
        total, count = 0.0, 0.0
        order = model.backbone.layout.order
        for x, _ in DataLoader(dataset, batch_size=self.batch_size, shuffle=False):
            x = x.to(info.device)
            mask = bernoulli_mask(x.shape[:3], self.mask_ratio, generator=gen, device=x.device)
            recon = model(x, mask)
            n = float(mask.sum())
            total += float(masked_mse(recon, sorted_target(x, order), mask)) * max(n, 1.0)
            count += n
        return {LOSS: total / max(count, 1.0)}

    def train_mode(self, model: torch.nn.Module) -> None:
        model.train()

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


class Supervised:
    """Classification / regression with the spec §5 losses and metrics.

    Parameters
    ----------
    task : {"multiclass", "binary", "regression"}
    label_smoothing : float
        Multi-class only.
    select : str | None
        Metric of :meth:`evaluate` that selects the saved model (a name of
        :func:`csbrain.engine.metrics.selectable_metrics`, without ``val_``); None: the last.
    freeze_backbone : bool
        Keep the backbone in eval mode while training (linear probing).
    batch_size : int
        Batch size of evaluation.
    """

    def __init__(self, task: str, *, label_smoothing: float = 0.0, select: str | None = None,
                 freeze_backbone: bool = False, batch_size: int = 64) -> None:
        self.task = task
        self.label_smoothing = label_smoothing if task == "multiclass" else 0.0
        self.select_key = select
        self.select_mode = metric_mode(select or LOSS)
        self.freeze_backbone = freeze_backbone
        self.batch_size = batch_size

    def loss(self, model: torch.nn.Module, batch: Any, info: DistInfo) -> torch.Tensor:
        x, y = batch[0], batch[1]
        return supervised_loss(model(x), y, self.task, label_smoothing=self.label_smoothing)

    def metrics(self, outputs: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        """Spec §5 metrics plus the loss, from outputs ``(n, n_outputs)`` and labels ``(n,)``."""
        out = compute_metrics(self.task, y, scores_from_outputs(self.task, outputs))
        out[LOSS] = float(supervised_loss(torch.from_numpy(outputs), torch.from_numpy(y),
                                            self.task, label_smoothing=self.label_smoothing))
        return out

    def evaluate(self, model: torch.nn.Module, dataset: Dataset, info: DistInfo) -> dict[str, Any]:
        outputs, y = predict_outputs(model, dataset, batch_size=self.batch_size,
                                     device=info.device)
        return self.metrics(outputs, y)

    def train_mode(self, model: torch.nn.Module) -> None:
        model.train()
        if self.freeze_backbone:
            unwrap(model).backbone.eval()

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass
