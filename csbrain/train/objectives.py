"""The two objectives of :func:`csbrain.train.loop.train_loop`: masked reconstruction and
supervised fine-tuning (classification / regression)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from csbrain.engine.corpus import grouped_batches
from csbrain.engine.distributed import DistInfo, all_reduce_sum, unwrap
from csbrain.engine.inference import predict_outputs
from csbrain.engine.metrics import LOSS, compute_metrics, metric_mode, scores_from_outputs
from csbrain.engine.sequences import flatten_sequences
from csbrain.train.losses import reconstruction_loss, supervised_loss, vicreg_loss
from csbrain.train.masking import make_mask, sorted_target
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
    mask_strategy : {"random", "time_block", "channel", "region"}
        :func:`csbrain.train.masking.make_mask` (``random``: released).
    target : {"waveform", "normalized", "spectral", "waveform+spectral"}
        :func:`csbrain.train.losses.reconstruction_loss` (``waveform``: released); the
        spectral targets need a model with a spectral head.
    spectral_weight : float
        Weight of the spectral term of ``waveform+spectral``.
    vicreg_weight : float
        Weight of :func:`csbrain.train.losses.vicreg_loss` on the mean-pooled backbone tokens
        of each training batch (0: off). Validation reports the reconstruction loss only.
    """

    select_mode = "min"

    def __init__(self, mask_ratio: float, *, seed: int = 0, rank: int = 0,
                 select_val_loss: bool = False, batch_size: int = 64,
                 mask_strategy: str = "random", target: str = "waveform",
                 spectral_weight: float = 1.0, vicreg_weight: float = 0.0) -> None:
        self.mask_ratio = mask_ratio
        self.mask_strategy, self.target = mask_strategy, target
        self.spectral_weight, self.vicreg_weight = spectral_weight, vicreg_weight
        self.seed = seed
        self.generator = torch.Generator().manual_seed(
            stream_seed(seed, _MASK_STREAM + _RANK_STRIDE * rank))
        self.select_key = LOSS if select_val_loss else None
        self.batch_size = batch_size

    def loss(self, model: torch.nn.Module, batch: Any, info: DistInfo) -> torch.Tensor:
        x = batch[0]                                             # (B, C, P, S), input order
        mask = self.draw_mask(model, x, self.generator)          # (B, C, P), sorted slots
        n_masked = mask.sum().float()
        if info.distributed:  # global mean: DDP averages gradients over ranks
            n_masked = all_reduce_sum(n_masked) / info.world_size
        loss, tokens = self.reconstruction(model, x, mask, n_masked=n_masked,
                                           features=self.vicreg_weight > 0)
        if tokens is not None:
            loss = loss + self.vicreg_weight * vicreg_loss(tokens)
        return loss

    def draw_mask(self, model: torch.nn.Module, x: torch.Tensor,
                  generator: torch.Generator) -> torch.Tensor:
        """A ``(B, C, P)`` mask (sorted slots) of this objective's strategy for ``x``."""
        regions = unwrap(model).backbone.layout.sorted_regions
        return make_mask(self.mask_strategy, tuple(x.shape[:3]), self.mask_ratio,
                         sorted_regions=regions, generator=generator, device=x.device)

    def reconstruction(self, model: torch.nn.Module, x: torch.Tensor, mask: torch.Tensor, *,
                       n_masked: torch.Tensor | float | None = None, features: bool = False
                       ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Reconstruction loss of ``model`` on ``x`` ``(B, C, P, S)`` under ``mask``.

        Returns the scalar loss and, with ``features``, the backbone tokens ``(B, C, P, D)``
        (from the model's forward, so a DDP wrapper sees the whole graph).
        """
        spectral = self.target in ("spectral", "waveform+spectral")
        if spectral or features:
            out = list(model(x, mask, return_spectral=spectral, return_features=features))
        else:
            out = [model(x, mask)]                               # (B, C, P, S), sorted order
        target = sorted_target(x, unwrap(model).backbone.layout.order)
        loss = reconstruction_loss(self.target, target, mask, waveform=out[0],
                                   spectral=out[1] if spectral else None,
                                   spectral_weight=self.spectral_weight, n_masked=n_masked)
        return loss, (out[-1] if features else None)

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, dataset: Dataset, info: DistInfo) -> dict[str, Any]:
        """Masked reconstruction loss (the training target, without the VICReg term) over
        ``dataset`` with masks drawn from a fixed seed (comparable evals), and the
        :func:`~csbrain.engine.diagnostics.feature_stats` (``feature_spread``,
        ``effective_rank``, ``mean_cosine``) of the mean-pooled last-layer tokens of an
        unmasked backbone pass over the first 512 windows (at least two). A corpus of several
        sources (:class:`~csbrain.engine.corpus.CorpusSubset`) is evaluated group by group,
        and each source's loss is reported too (``loss_<source>``)."""
        from csbrain.engine.diagnostics import feature_stats

        gen = torch.Generator().manual_seed(stream_seed(self.seed, _VAL_MASK_STREAM))
        total, count, pooled, max_windows = 0.0, 0.0, [], 512
        per_source: dict[int, list[float]] = {}
        backbone = unwrap(model).backbone
        for x, _, montage, source in grouped_batches(dataset, self.batch_size):
            if montage is not None:
                backbone.set_montage(montage)
            x = x.to(info.device)
            mask = self.draw_mask(model, x, gen)
            n = float(mask.sum())
            loss = float(self.reconstruction(model, x, mask)[0]) * max(n, 1.0)
            total, count = total + loss, count + n
            if source is not None:
                acc = per_source.setdefault(source, [0.0, 0.0])
                acc[0], acc[1] = acc[0] + loss, acc[1] + n
            take = max_windows - sum(len(p) for p in pooled)
            if take > 0:                                          # (b, C, P, D) -> (b, D)
                pooled.append(backbone(x[:take]).float().mean(dim=(1, 2)).cpu())
        metrics: dict[str, Any] = {LOSS: total / max(count, 1.0)}
        if len(per_source) > 1:
            labels = dataset.source_labels
            metrics.update({f"{LOSS}_{labels[s]}": t / max(c, 1.0)
                            for s, (t, c) in sorted(per_source.items())})
        if sum(len(p) for p in pooled) >= 2:
            stats = feature_stats(torch.cat(pooled))
            metrics.update(feature_spread=stats["spread"],
                           effective_rank=stats["effective_rank"],
                           mean_cosine=stats["mean_cosine"])
        return metrics

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
        """Spec §5 metrics plus the loss, from outputs ``(n, n_outputs)`` and labels ``(n,)``
        (sequences ``(n, L, n_outputs)`` and ``(n, L)``: over all their labelled windows, as the
        released ISRUC evaluation pools the epochs of every sequence)."""
        if outputs.ndim == 3:
            o, t = flatten_sequences(torch.from_numpy(outputs), torch.from_numpy(y))
            outputs, y = o.numpy(), t.numpy()
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
