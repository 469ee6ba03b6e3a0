"""What the demo runs, as data: tasks, pretraining sources, sizes of a default and a quick run.

Every choice that shapes the numbers in the report lives here, so the report can print it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The channels every pretraining recording has (the nap records only these six EEG channels):
#: pretraining reads them from each source; fine-tuning then uses each task's full montage
#: (CSBrain's weights do not depend on the montage).
PRETRAIN_CHANNELS: tuple[str, ...] = ("F3", "F4", "C3", "C4", "O1", "O2")

#: Per base dataset, the fraction of each recording after which windows are held out: test
#: windows come only from after it, pretraining windows only from before it.
HOLDOUT_FROM: dict[str, float] = {"face13": 0.5, "eyes-closed-open": 0.7, "nap": 1.0}


@dataclass(frozen=True)
class PretrainSource:
    """A continuous dataset of the pretraining corpus (``load_dataset`` name + overrides)."""

    dataset: str
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoTask:
    """A labelled evaluation task.

    ``split`` is ``"cross_subject"`` (train on ``train_subject``, test on the held-out part of
    ``test_subject``), ``"holdout"`` (train on the early part of every recording, test on the
    held-out part) or ``"official"`` (the dataset's own train/test split).
    """

    key: str
    title: str
    dataset: str
    split: str
    train_subject: str | None = None
    test_subject: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)


#: 10-s pretraining windows, overlapping by half (more masked-reconstruction examples).
_CONTINUOUS_10S = {"windows.length_s": 10.0, "windows.stride_s": 5.0}
PRETRAIN_SOURCES: tuple[PretrainSource, ...] = (
    PretrainSource("face13:continuous", {**_CONTINUOUS_10S, "channels.nearest_1020": True,
                                         "channels.match": "names"}),
    PretrainSource("eyes-closed-open:continuous", _CONTINUOUS_10S),
    PretrainSource("nap", _CONTINUOUS_10S),
)

TASKS: tuple[DemoTask, ...] = (
    DemoTask("face13_s01_to_s02", "Face vs house, train s01 -> test s02 (19 ch)", "face13:19ch",
             "cross_subject", train_subject="s01", test_subject="s02"),
    DemoTask("face13_s02_to_s01", "Face vs house, train s02 -> test s01 (19 ch)", "face13:19ch",
             "cross_subject", train_subject="s02", test_subject="s01"),
    DemoTask("eyes_closed_open", "Eyes closed vs open, held-out last 30% (32 ch)",
             "eyes-closed-open", "holdout", overrides={"windows.stride_s": 2.0}),
    DemoTask("finger_movements", "FingerMovements left vs right, official split (28 ch)",
             "finger-movements", "official"),
)

#: The task whose fine-tuned model gets the importance topomap.
IMPORTANCE_TASK = "eyes_closed_open"
#: Classical baseline compared on every task (csbrain.baselines).
BASELINE = "riemann"


@dataclass(frozen=True)
class DemoPlan:
    """Sizes of one demo run: model, pretraining and fine-tuning configs (dotted overrides of
    :class:`csbrain.train.PretrainConfig` / :class:`~csbrain.train.FinetuneConfig`), seeds, and
    the fraction of each task's training pool that validates fine-tuning (``val_fraction``)."""

    name: str
    model: dict[str, Any]
    pretrain: dict[str, Any]
    finetune: dict[str, Any]
    seeds: tuple[int, ...]
    val_fraction: float = 0.2


_MODEL = {"model.preset": "small", "model.d_model": 80, "model.n_heads": 4,
          "model.dim_feedforward": 160, "model.n_layers": 4, "model.temporal_mode": "paper"}
#: pretraining holds out ``val_fraction`` of its windows (``val_by``: single windows) to
#: report a validation reconstruction loss (the held-out curve of the pretraining figure)
_PRETRAIN = {"epochs": 60, "batch_size": 16, "lr": 1e-3, "min_lr": 1e-5, "weight_decay": 0.05,
             "warmup_epochs": 3.0, "mask_ratio": 0.5, "val_fraction": 0.1, "val_by": "window"}
_FINETUNE = {"epochs": 12, "batch_size": 16, "lr": 5e-4, "min_lr": 1e-6, "weight_decay": 0.05,
             "head": "mean_bn", "label_smoothing": 0.0}
#: default: about 8 minutes on 2 CPU cores; quick (the tests): the same with 2 layers and fewer
#: epochs, about 2.5 minutes
PLANS: dict[str, DemoPlan] = {
    "default": DemoPlan("default", _MODEL, _PRETRAIN, _FINETUNE, seeds=(0, 1, 2)),
    "quick": DemoPlan(
        "quick", {**_MODEL, "model.n_layers": 2},
        {**_PRETRAIN, "epochs": 6, "batch_size": 32, "warmup_epochs": 1.0},
        {**_FINETUNE, "epochs": 6}, seeds=(0, 1, 2)),
}
