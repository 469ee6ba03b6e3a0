"""Typed run configurations: :class:`PretrainConfig` and :class:`FinetuneConfig`.

Both are frozen dataclasses read by :func:`csbrain.configio.load_config` from a TOML / YAML /
JSON file plus ``key=value`` overrides (dotted keys reach sections: ``model.n_layers=4``,
``split.by=recording``); unknown keys, wrong types and bad booleans are rejected there.

The ``model`` section is :class:`ModelSection`: a preset name plus one optional override per
field of :class:`csbrain.config.CSBrainConfig`. Its fields are generated from that class, so a
new architecture field is a new override without touching this file (one fact, one place).

The ``split`` section of fine-tuning is :class:`csbrain.engine.splits.SplitConfig` (evaluation
repeats a run's split with it). Defaults follow the released recipe (spec §4 pretraining, §5
fine-tuning). No torch import.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from csbrain._checks import check_float, check_int, check_option
from csbrain.config import CONFIG_PRESETS, CSBrainConfig
from csbrain.engine.metrics import LOSS, TASK_METRICS, check_select_metric, selectable_metrics
from csbrain.engine.sampler import WEIGHTINGS
from csbrain.engine.splits import SplitConfig

__all__ = ["ModelSection", "SplitConfig", "TrainConfig", "PretrainConfig", "FinetuneConfig",
           "TASKS", "load_run_config"]

#: Supervised task kinds (spec §5): loss and metrics per kind.
TASKS: tuple[str, ...] = tuple(TASK_METRICS)

#: Pretraining mask strategies and reconstruction targets (the first of each is the released
#: one); see :mod:`csbrain.train.masking` and :mod:`csbrain.train.losses`.
MaskStrategy = Literal["random", "time_block", "channel", "region"]
Target = Literal["waveform", "normalized", "spectral", "waveform+spectral"]
MASK_STRATEGIES: tuple[str, ...] = typing.get_args(MaskStrategy)
TARGETS: tuple[str, ...] = typing.get_args(Target)

#: Fine-tuning adaptation methods (``full`` is the released one); see :mod:`csbrain.train.adapt`.
Method = Literal["full", "probe", "lp_ft", "lora", "linear"]
METHODS: tuple[str, ...] = typing.get_args(Method)
#: Default LoRA targets, named inside each encoder layer (:class:`csbrain.models.blocks.
#: EncoderLayer`): both attentions' qkv and output projections and the feed-forward layers.
LORA_TARGETS: tuple[str, ...] = ("window_attn.qkv", "window_attn.proj", "region_attn.qkv",
                                 "region_attn.proj", "fc1", "fc2")


def _model_section_fields() -> list[tuple[str, Any, Any]]:
    hints = typing.get_type_hints(CSBrainConfig)
    out: list[tuple[str, Any, Any]] = [("preset", str, field(default="released"))]
    for f in dataclasses.fields(CSBrainConfig):
        out.append((f.name, hints[f.name] | None, field(default=None)))
    return out


def _to_model_config(self) -> CSBrainConfig:
    """The :class:`CSBrainConfig`: the preset with every non-None field replaced."""
    overrides = {f.name: getattr(self, f.name) for f in dataclasses.fields(CSBrainConfig)
                 if getattr(self, f.name) is not None}
    return CSBrainConfig.from_preset(self.preset, **overrides)


def _check_model_section(self) -> None:
    check_option("model.preset", self.preset, list(CONFIG_PRESETS))
    self.to_model_config()  # validates the combination (CSBrainConfig.__post_init__)


#: ``model.*`` section: ``preset`` (one of :data:`csbrain.config.CONFIG_PRESETS`) and, for every
#: :class:`CSBrainConfig` field, an optional override (None keeps the preset's value).
ModelSection = dataclasses.make_dataclass(
    "ModelSection", _model_section_fields(), frozen=True,
    namespace={"to_model_config": _to_model_config, "__post_init__": _check_model_section,
               "__doc__": "Model section: ``preset`` plus optional CSBrainConfig overrides.",
               "__module__": __name__})


@dataclass(frozen=True)
class TrainConfig:
    """Fields shared by pretraining and fine-tuning (see the subclasses for defaults).

    Parameters
    ----------
    seed : int
        Seeds python, numpy and torch (model init, shuffling, masks, dropout).
    epochs : int
        Passes over the training set (ignored when ``max_steps`` is set).
    max_steps : int | None
        Total optimiser steps; overrides ``epochs`` and sets the schedule length.
    batch_size : int
        Global batch size (split evenly over DDP ranks; must divide by the world size).
    lr, min_lr : float
        Peak and final learning rate of the cosine schedule (``min_lr`` scales with each
        parameter group's peak).
    weight_decay : float
        AdamW decoupled weight decay.
    decay_norm_and_bias : bool
        True (released): every parameter decays. False: norms, biases and other 1-D
        parameters are excluded (they set scales and offsets, which decay only shrinks).
    warmup_steps : int
        Linear warm-up length in steps; or ``warmup_epochs`` (one of them, not both).
    warmup_epochs : float
    grad_clip : float | None
        Max global gradient norm (None: no clipping).
    model : ModelSection
    num_workers : int
        DataLoader worker processes (each opens the store itself; batches are prefetched, and
        pinned for CUDA).
    shuffle : {"window", "block"}
        Training order. ``"window"`` (default): every window drawn independently (a full
        shuffle; one store read per window). ``"block"``: a random order of blocks of
        ``shuffle_block`` consecutive windows of a recording, each rank's part of a batch then
        shuffled, so a batch is a few contiguous reads (:mod:`csbrain.engine.loader`): several
        times the read rate, for feeding an accelerator from a large store. Both are
        deterministic in ``seed``, shard disjointly over DDP ranks and resume exactly. The
        default stays ``"window"``, so that an existing configuration draws the same batches
        (and gives the same model) as before the option existed.
    loader_threads : int
        > 0: read batches with this many threads of the training process, prefetched ahead
        (:class:`~csbrain.engine.loader.PrefetchLoader`), instead of ``num_workers`` worker
        processes (set one of the two): no copy of each batch between processes, which on a
        small CPU costs more than reading it. Batches are the same as with 0.
    shuffle_block : int
        Windows per block of ``shuffle="block"`` (a divisor of the store's
        ``windows_per_shard``, 64 by default, keeps each block in one shard file).
    device : str
        ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``.
    bf16 : bool | None
        bfloat16 autocast; None: on for CUDA devices that support it, off on CPU.
    log_every : int
        Log train loss / lr every this many steps to ``metrics.jsonl``.
    eval_every, checkpoint_every : int
        Every this many steps; 0 = at the end of every epoch.
    select_metric : str
        Model selection (see the subclasses).
    progress : bool
        tqdm progress bars (rank 0).
    cpu_threads : int | None
        ``torch.set_num_threads`` for the run (None: torch's default). On a small shared CPU, 1
        avoids intra-op threads contending with other processes.
    """

    seed: int = 0
    epochs: int = 50
    max_steps: int | None = None
    batch_size: int = 64
    lr: float = 1e-4
    min_lr: float = 1e-6
    weight_decay: float = 0.01
    decay_norm_and_bias: bool = True
    warmup_steps: int = 0
    warmup_epochs: float = 0.0
    grad_clip: float | None = 1.0
    model: ModelSection = field(default_factory=ModelSection)
    num_workers: int = 0
    shuffle: Literal["window", "block"] = "window"
    shuffle_block: int = 16
    loader_threads: int = 0
    device: str = "auto"
    bf16: bool | None = None
    log_every: int = 10
    eval_every: int = 0
    checkpoint_every: int = 0
    select_metric: str = "auto"
    progress: bool = True
    cpu_threads: int | None = None

    def __post_init__(self) -> None:
        check_int("epochs", self.epochs, min_value=1)
        if self.cpu_threads is not None:
            check_int("cpu_threads", self.cpu_threads, min_value=1)
        if self.max_steps is not None:
            check_int("max_steps", self.max_steps, min_value=1)
        check_int("batch_size", self.batch_size, min_value=1)
        check_float("lr", self.lr, min_value=0.0, inclusive=False)
        check_float("min_lr", self.min_lr, min_value=0.0)
        if self.min_lr > self.lr:
            raise ValueError(f"min_lr={self.min_lr} must not exceed lr={self.lr}")
        check_float("weight_decay", self.weight_decay, min_value=0.0)
        check_int("warmup_steps", self.warmup_steps, min_value=0)
        check_float("warmup_epochs", self.warmup_epochs, min_value=0.0)
        if self.warmup_steps and self.warmup_epochs:
            raise ValueError(f"warmup_steps={self.warmup_steps} and warmup_epochs="
                             f"{self.warmup_epochs} are both set; set only one")
        if self.grad_clip is not None:
            check_float("grad_clip", self.grad_clip, min_value=0.0, inclusive=False)
        check_int("num_workers", self.num_workers, min_value=0)
        check_option("shuffle", self.shuffle, ["window", "block"])
        check_int("shuffle_block", self.shuffle_block, min_value=1)
        check_int("loader_threads", self.loader_threads, min_value=0)
        if self.loader_threads and self.num_workers:
            raise ValueError(f"loader_threads={self.loader_threads} and num_workers="
                             f"{self.num_workers} are both set; set one of them")
        for name in ("log_every", "eval_every", "checkpoint_every"):
            check_int(name, getattr(self, name), min_value=0)
        if self.log_every == 0:
            raise ValueError("log_every must be >= 1 (steps between log lines)")
        dev = self.device.split(":")[0]
        check_option("device", dev, ["auto", "cpu", "cuda", "mps"])

    @property
    def model_config(self) -> CSBrainConfig:
        """The backbone configuration of the ``model`` section."""
        return self.model.to_model_config()


@dataclass(frozen=True)
class PretrainConfig(TrainConfig):
    """Masked patch reconstruction (spec §4); defaults: the released recipe.

    Parameters
    ----------
    mask_ratio : float
        Probability that a (sample, channel, patch) is masked (released: 0.5).
    mask_token : {"zero", "learned"}
        ``"zero"``: masked patches are replaced by zeros (released, fixed); ``"learned"``:
        the replacement patch is a trained parameter.
    mask_strategy : {"random", "time_block", "channel", "region"}
        ``random``: each (sample, channel, patch) independently (released); ``time_block``: one
        contiguous run of patches in all channels; ``channel``: whole channels; ``region``:
        all channels of whole brain regions (:mod:`csbrain.train.masking`).
    target : {"waveform", "normalized", "spectral", "waveform+spectral"}
        Reconstruction target on masked patches: the waveform (released), each patch
        standardised by its own mean and std (MAE's normalised pixels), the per-bin
        standardised log-amplitude spectrum (a second head), or waveform plus
        ``spectral_weight`` x spectral (:mod:`csbrain.train.losses`).
    spectral_weight : float
        Weight of the spectral term of ``target="waveform+spectral"`` (>= 0).
    vicreg_weight : float
        Weight of the VICReg variance + covariance term on mean-pooled backbone features
        (anti-collapse; 0 = off, released).
    head_init_scale : float
        Factor on the reconstruction heads' initial weights and biases (1 = the released
        Kaiming init, > 0).
    val_fraction : float
        Fraction of ``val_by`` groups held out to report a validation reconstruction loss
        (0: none).
    val_by : {"recording", "window"}
        Grouping of that hold-out: whole recordings (default) or single windows (for a corpus
        of few recordings).
    split_seed : int
        Seed of that hold-out (independent of ``seed``).
    source_weighting : {"proportional", "balanced"}
        With several stores: every window once per epoch (sources in proportion to their
        size), or each batch's source drawn uniformly (small sources repeat).
    select_metric : {"auto", "last", "val_loss"}
        Which weights ``model.safetensors`` holds: the last (``auto`` without a validation
        split) or those of the lowest validation loss (``auto`` with one; ``loss`` is the same
        as ``val_loss``).
    """

    epochs: int = 40
    batch_size: int = 128
    lr: float = 5e-4
    min_lr: float = 1e-5
    weight_decay: float = 5e-2
    mask_ratio: float = 0.5
    mask_token: Literal["zero", "learned"] = "zero"
    mask_strategy: MaskStrategy = "random"
    target: Target = "waveform"
    spectral_weight: float = 1.0
    vicreg_weight: float = 0.0
    head_init_scale: float = 1.0
    val_fraction: float = 0.0
    val_by: Literal["recording", "window"] = "recording"
    split_seed: int = 0
    source_weighting: Literal["proportional", "balanced"] = "proportional"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_option("source_weighting", self.source_weighting, WEIGHTINGS)
        check_float("mask_ratio", self.mask_ratio, min_value=0.0, max_value=1.0, inclusive=False)
        check_option("mask_token", self.mask_token, ["zero", "learned"])
        check_option("mask_strategy", self.mask_strategy, MASK_STRATEGIES)
        check_option("target", self.target, TARGETS)
        check_float("spectral_weight", self.spectral_weight, min_value=0.0)
        if self.spectral_weight != 1.0 and self.target != "waveform+spectral":
            raise ValueError(f"spectral_weight={self.spectral_weight} only applies to "
                             f"target='waveform+spectral' (target={self.target!r})")
        check_float("vicreg_weight", self.vicreg_weight, min_value=0.0)
        check_float("head_init_scale", self.head_init_scale, min_value=0.0, inclusive=False)
        check_float("val_fraction", self.val_fraction, min_value=0.0, max_value=1.0)
        if self.val_fraction >= 1.0:
            raise ValueError(f"val_fraction={self.val_fraction} must be below 1")
        if self.select() == LOSS and not self.val_fraction:
            raise ValueError(f"select_metric={self.select_metric!r} needs val_fraction > 0 (a "
                             f"held-out set)")

    def select(self) -> str:
        """The selection ``select_metric`` names: ``auto``, ``last`` or ``loss``."""
        return check_select_metric(self.select_metric, (LOSS,), what="pretraining")


@dataclass(frozen=True)
class FinetuneConfig(TrainConfig):
    """Fine-tuning and probing (spec §5); defaults: the released common recipe.

    Parameters
    ----------
    task : {"multiclass", "binary", "regression"} | None
        None: inferred from the labels (float labels: regression; 2 classes: binary).
    head : str
        Head of :class:`csbrain.models.CSBrainForClassification`, a key of
        :data:`csbrain.models.heads.HEADS` (released: flatten).
    head_dropout : float
    method : {"full", "probe", "lp_ft", "lora", "linear"}
        ``full`` (released), ``probe`` (frozen backbone in eval mode, the head trains),
        ``lp_ft`` (probe ``probe_epochs`` epochs, then full), ``lora`` (``peft`` adapters on
        ``lora_targets`` and the whole head; ``adapter/`` + the merged model saved), ``linear``
        (scikit-learn logistic / ridge on frozen mean-pooled features, folded into a
        ``mean_bn`` head): :mod:`csbrain.train.adapt`, :mod:`csbrain.train.linear`.
    freeze_backbone : bool
        Alias of ``method="probe"`` (kept for existing configurations).
    probe_epochs : int | None
        Probe epochs of ``lp_ft`` (required there, ``1 <= probe_epochs < epochs``).
    lora_rank, lora_alpha, lora_dropout
        LoRA rank r, alpha (updates scale by alpha / r), dropout on the adapter input.
    lora_targets : tuple of str
        Linear layers of every encoder layer that get adapters, named relative to the layer
        (``backbone.layers.<i>.<name>``). Default :data:`LORA_TARGETS`: the query-key-value and
        output projections of both attentions and the two feed-forward layers.
    layer_decay : float
        Layer-wise learning-rate decay in (0, 1] (1 = off) for ``full``, ``lp_ft``, ``lora``:
        the head keeps its rate, encoder layer ``i`` of ``L`` gets ``decay ** (L - i)``, the
        patch embedding and the shared convolutions ``decay ** (L + 1)``.
    backbone_lr, head_lr : float | None
        Peak learning rates of the two parameter groups (None: ``lr``).
    label_smoothing : float
        Multi-class cross-entropy label smoothing (released: 0.1).
    init : str | None
        Initial weights: a csbrain model folder, a run folder or a released ``.pth``; None
        trains from scratch. Its head is dropped (the task defines a new one).
    select_metric : str
        Validation metric that picks the checkpoint: ``auto`` (balanced accuracy; R² for
        regression), ``last``, or a metric of the task
        (:func:`csbrain.engine.metrics.selectable_metrics`; ``loss`` minimises the validation
        loss; a ``val_`` prefix is optional). Checked here against the metrics of ``task``
        (of any task when ``task`` is None) and again, before training, against those of the
        inferred task.
    split : SplitConfig
    eval_batch_size : int | None
        Batch size of evaluation (None: ``batch_size``).
    sequence_length : int
        0: one prediction per window. ``L > 0``: the released ISRUC protocol, a
        :class:`~csbrain.models.CSBrainForSequenceClassification` labelling every window of
        sequences of ``L`` consecutive windows (:mod:`csbrain.engine.sequences`; ``head`` is
        then how a window's tokens enter the sequence encoder: ``flatten`` or ``mean``;
        ``batch_size`` counts sequences).
    """

    task: Literal["multiclass", "binary", "regression"] | None = None
    head: str = "flatten"
    head_dropout: float = 0.1
    method: Method = "full"
    freeze_backbone: bool = False
    probe_epochs: int | None = None
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    lora_targets: tuple[str, ...] = LORA_TARGETS
    layer_decay: float = 1.0
    backbone_lr: float | None = None
    head_lr: float | None = None
    label_smoothing: float = 0.1
    init: str | None = None
    split: SplitConfig = field(default_factory=SplitConfig)
    eval_batch_size: int | None = None
    sequence_length: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        from csbrain.models.heads import HEADS
        from csbrain.models.sequence import EPOCH_FEATURES

        check_int("sequence_length", self.sequence_length, min_value=0)
        if self.sequence_length:
            if self.head not in EPOCH_FEATURES:
                raise ValueError(f"head={self.head!r} is not allowed with sequence_length="
                                 f"{self.sequence_length}; expected one of "
                                 f"{list(EPOCH_FEATURES)} (how a window enters the sequence "
                                 f"model)")
            for name, bad in (("method", self.method == "linear"),
                              ("shuffle", self.shuffle != "window"),
                              ("loader_threads", bool(self.loader_threads))):
                if bad:
                    raise ValueError(f"{name}={getattr(self, name)!r} is not available with "
                                     f"sequence_length={self.sequence_length} (sequences are "
                                     f"read one by one); use the default")
        else:
            check_option("head", self.head, list(HEADS))
        check_float("head_dropout", self.head_dropout, min_value=0.0, max_value=1.0)
        check_float("label_smoothing", self.label_smoothing, min_value=0.0, max_value=1.0,
                    inclusive=True)
        for name in ("backbone_lr", "head_lr"):
            if getattr(self, name) is not None:
                check_float(name, getattr(self, name), min_value=0.0)
        if self.eval_batch_size is not None:
            check_int("eval_batch_size", self.eval_batch_size, min_value=1)
        self.select()
        self._check_method()

    def _check_method(self) -> None:
        check_option("method", self.method, METHODS)
        if self.freeze_backbone:
            if self.method not in ("full", "probe"):
                raise ValueError(f"freeze_backbone=True is an alias of method='probe' but "
                                 f"method={self.method!r}; set only method")
            object.__setattr__(self, "method", "probe")
        if self.method == "lp_ft":
            if self.probe_epochs is None:
                raise ValueError("method='lp_ft' needs probe_epochs (epochs of probing before "
                                 "full fine-tuning), 1 <= probe_epochs < epochs")
            check_int("probe_epochs", self.probe_epochs, min_value=1,
                      max_value=None if self.max_steps else self.epochs - 1)
        elif self.probe_epochs is not None:
            raise ValueError(f"probe_epochs={self.probe_epochs} only applies to method='lp_ft' "
                             f"(method={self.method!r})")
        check_int("lora_rank", self.lora_rank, min_value=1)
        check_float("lora_alpha", self.lora_alpha, min_value=0.0, inclusive=False)
        check_float("lora_dropout", self.lora_dropout, min_value=0.0, max_value=1.0)
        if not self.lora_targets or not all(isinstance(t, str) and t for t in self.lora_targets):
            raise ValueError(f"lora_targets={self.lora_targets!r} must name at least one module "
                             f"(default {list(LORA_TARGETS)})")
        check_float("layer_decay", self.layer_decay, min_value=0.0, max_value=1.0)
        if self.layer_decay <= 0.0:
            raise ValueError(f"layer_decay={self.layer_decay} must be in (0, 1] (1 = off)")
        if self.layer_decay != 1.0 and self.method in ("probe", "linear"):
            raise ValueError(f"layer_decay={self.layer_decay} applies to method 'full', 'lp_ft' "
                             f"or 'lora' (method={self.method!r} trains no backbone layer)")

    def select(self, task: str | None = None) -> str:
        """The selection of ``select_metric`` for ``task`` (default: ``self.task``): ``auto``,
        ``last`` or a metric name without ``val_``; a name the task lacks raises."""
        task = task or self.task
        return check_select_metric(self.select_metric, selectable_metrics(task),
                                   what=f"task {task!r}" if task else "any task")


def load_run_config(cls: type, path: str | None = None, overrides: Any = ()) -> Any:
    """Build a run config from defaults, an optional file and ``key=value`` overrides.

    Parameters
    ----------
    cls : type
        :class:`PretrainConfig` or :class:`FinetuneConfig`.
    path : path-like | None
        TOML, YAML or JSON file.
    overrides : sequence of str or mapping
        ``"key=value"`` strings (``--set``), applied last.

    Returns
    -------
    PretrainConfig | FinetuneConfig
    """
    from csbrain.configio import load_config

    return load_config(cls, path, overrides)
