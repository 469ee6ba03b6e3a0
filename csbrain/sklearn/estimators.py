"""scikit-learn estimators: fine-tune CSBrain as a classifier or regressor, or embed with it.

They take trials ``(n_trials, n_channels, n_times)`` at any rate with ``sfreq`` and
``ch_names``, or ``mne.Epochs`` (:mod:`csbrain.sklearn._input`), and follow scikit-learn's
conventions: the constructor only stores its parameters, ``fit`` returns ``self``, fitted
attributes end in ``_``, ``random_state`` seeds everything (two fits with one seed give the same
model). Fitting runs :func:`csbrain.train.finetune` on the trials in a temporary run folder
(every trial trains unless ``val_fraction`` holds some out for model selection) and keeps the
selected model in memory (``model_``).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, TransformerMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.validation import check_is_fitted

from csbrain._checks import CSBrainError
from csbrain.sklearn._input import trial_windows

logger = logging.getLogger(__name__)

__all__ = ["CSBrainClassifier", "CSBrainRegressor", "CSBrainEmbedder"]

#: Architecture parameters (``None``: the preset's, or the ``init`` checkpoint's).
SIZE_PARAMS: tuple[str, ...] = ("d_model", "n_layers", "n_heads", "dim_feedforward")


def _seed(random_state: int | None) -> int:
    if random_state is None:
        return int(np.random.SeedSequence().entropy % 2**31)
    if isinstance(random_state, (bool, np.bool_)) or not isinstance(random_state,
                                                                   (int, np.integer)):
        raise CSBrainError(f"random_state={random_state!r} must be an int or None")
    return int(random_state)


def _store_params(estimator: BaseEstimator, params: dict[str, Any]) -> None:
    """Store constructor arguments unchanged (scikit-learn: no work in ``__init__``)."""
    for name, value in params.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


def _local_init(init: str | Path | None) -> str | None:
    """``init`` as a local path: a hub id is fetched into (or read from) the hub cache."""
    if init is None:
        return None
    from csbrain.models.hfhub import resolve_pretrained

    return str(resolve_pretrained(init))


class _CSBrainBase(BaseEstimator):
    """Input handling shared by the estimators (channels and length are fixed at ``fit``)."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.non_deterministic = self.random_state is None
        return tags

    def _windows(self, X: Any, *, fitting: bool) -> np.ndarray:
        """Model windows ``(n, C, P, 200)`` of ``X``; at predict time, checked against fit."""
        tw = trial_windows(X, sfreq=self.sfreq, ch_names=self.ch_names, unit=self.unit,
                           allow_implausible=self.allow_implausible)
        names = list(tw.montage.channels)
        if fitting:
            self.ch_names_, self.n_patches_ = names, tw.x.shape[2]
            if tw.dropped_s:
                logger.info("trials cut to %d whole 1 s patches (%.3f s dropped at the end)",
                            self.n_patches_, tw.dropped_s)
        elif names != self.ch_names_:
            raise CSBrainError(f"X has channels {names} but the estimator was fitted on "
                               f"{self.ch_names_}")
        elif tw.x.shape[2] != self.n_patches_:
            raise CSBrainError(f"X's trials make {tw.x.shape[2]} patches of 1 s at 200 Hz but "
                               f"the estimator was fitted on {self.n_patches_}")
        return tw.x


class _FinetunedEstimator(_CSBrainBase):
    """Fine-tuned CSBrain (the parameters of :class:`CSBrainClassifier`)."""

    def __init__(self, init: str | Path | None = None, *, sfreq: float | None = None,
                 ch_names: list[str] | None = None, unit: str = "V", method: str = "full",
                 preset: str = "released", d_model: int | None = None,
                 n_layers: int | None = None, n_heads: int | None = None,
                 dim_feedforward: int | None = None, head: str = "mean", epochs: int = 30,
                 batch_size: int = 32, lr: float = 1e-4, weight_decay: float = 0.01,
                 val_fraction: float = 0.0, options: dict[str, Any] | None = None,
                 device: str = "cpu", allow_implausible: bool = False,
                 random_state: int | None = 0) -> None:
        _store_params(self, locals())

    def _finetune_config(self, task: str, seed: int):
        from csbrain.train.config import FinetuneConfig, ModelSection, SplitConfig

        sizes = {k: getattr(self, k) for k in SIZE_PARAMS if getattr(self, k) is not None}
        split = SplitConfig(by="window", val_fraction=self.val_fraction, test_fraction=0.0,
                            seed=seed, use_store_splits=False)
        kwargs = dict(task=task, seed=seed, epochs=self.epochs, batch_size=self.batch_size,
                      lr=self.lr, min_lr=min(1e-6, self.lr), weight_decay=self.weight_decay,
                      model=ModelSection(preset=self.preset, **sizes), device=self.device,
                      progress=False, head=self.head, method=self.method,
                      init=_local_init(self.init), split=split,
                      select_metric="auto" if self.val_fraction else "last")
        return FinetuneConfig(**{**kwargs, **(self.options or {})})

    def _fit_model(self, windows: np.ndarray, y: np.ndarray, task: str,
                   label_names: list[str]) -> None:
        from csbrain.engine.checkpoint import rng_state, set_rng_state
        from csbrain.engine.rundata import RunData
        from csbrain.models import load_model
        from csbrain.train.runs import finetune

        seed = _seed(self.random_state)
        cfg = self._finetune_config(task, seed)
        data = RunData.from_arrays(windows, y, self.ch_names_, label_names=label_names)
        before = rng_state()                  # the run seeds the global RNGs: give them back
        try:
            with tempfile.TemporaryDirectory(prefix="csbrain-sklearn-") as tmp:
                result = finetune(cfg, data, Path(tmp) / "run")
                self.model_ = load_model(Path(tmp) / "run").eval()
        finally:
            set_rng_state(before)
        self.task_ = result.metrics["task"]
        self.fit_metrics_ = {k: result.metrics.get(k) for k in ("val", "best_step", "steps")}

    def _outputs(self, X: Any) -> np.ndarray:
        """Model outputs ``(n, n_outputs)`` (logits or regression values)."""
        from csbrain.engine.inference import predict_windows

        check_is_fitted(self, "model_")
        windows = self._windows(X, fitting=False)
        return predict_windows(self.model_, windows, batch_size=self.batch_size,
                               device=next(self.model_.parameters()).device)


class CSBrainClassifier(ClassifierMixin, _FinetunedEstimator):
    """Fine-tune CSBrain on labelled trials; predict classes and probabilities.

    Parameters
    ----------
    init : str | Path | None
        Initial weights: a released ``.pth``, a csbrain model or run folder, or a Hugging Face
        hub id ``"org/name"``; None trains from scratch (``preset`` and the sizes).
    sfreq : float | None
        Sampling rate of array input (Hz); resampled to 200 Hz inside. None with Epochs.
    ch_names : list of str | None
        Channel names of array input, in its order (the model's montage). None with Epochs.
    unit : str
        Amplitude unit of array input: ``"V"`` (MNE), ``"uV"`` (MOABB's arrays), ``"mV"``,
        ``"model"``.
    method : {"full", "probe", "lp_ft", "lora", "linear"}
        Fine-tuning method (:class:`csbrain.train.FinetuneConfig`); ``lp_ft`` needs
        ``options={"probe_epochs": k}``, ``lora`` the ``[lora]`` extra.
    preset : str
        Model size preset (``released``, ``small``, ``tiny``) without ``init``.
    d_model, n_layers, n_heads, dim_feedforward : int | None
        Size overrides of the preset (with ``init`` they must match the checkpoint).
    head : {"mean", "mean_bn", "attention", "flatten"}
        Classification head.
    epochs, batch_size, lr, weight_decay
        Training schedule (AdamW, cosine).
    val_fraction : float
        Fraction of the trials held out to select the best epoch (0: every trial trains and
        the last epoch is kept).
    options : dict | None
        Any other :class:`csbrain.train.FinetuneConfig` field (``label_smoothing``,
        ``probe_epochs``, ``lora_rank``, ``layer_decay``...).
    device : str
        ``"cpu"``, ``"cuda"``, ``"auto"``.
    allow_implausible : bool
        Keep input whose amplitude is implausible for EEG in ``unit`` (refused by default:
        values in µV given as volts, or the reverse).
    random_state : int | None
        Seed of initialisation, shuffling and dropout (None: a fresh seed per fit).

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
    model_ : CSBrainForClassification
        The fine-tuned model (eval mode).
    ch_names_ : list of str
    n_patches_ : int
        1 s patches per trial after resampling.
    task_ : {"binary", "multiclass"}
    fit_metrics_ : dict
        Validation metrics (with ``val_fraction``), selected step and steps.
    """

    def fit(self, X: Any, y: Any) -> CSBrainClassifier:
        """Fine-tune on trials ``X`` with labels ``y`` (any hashable labels, >= 2 classes).

        Parameters
        ----------
        X : array_like, shape (n_trials, n_channels, n_times) | mne.Epochs
        y : array_like, shape (n_trials,)

        Returns
        -------
        self
        """
        windows = self._windows(X, fitting=True)
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(windows):
            raise CSBrainError(f"y has shape {y.shape}; expected ({len(windows)},), one label "
                               f"per trial")
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise CSBrainError(f"y holds a single class {self.classes_.tolist()}; a classifier "
                               f"needs at least two")
        task = "binary" if len(self.classes_) == 2 else "multiclass"
        self._fit_model(windows, encoder.transform(y).astype(np.int64), task,
                        [str(c) for c in self.classes_])
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits: ``(n,)`` for two classes (positive: ``classes_[1]``), else ``(n, K)``."""
        out = self._outputs(X)
        return out[:, 0] if self.task_ == "binary" else out

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n, n_classes)`` (rows sum to 1), columns as ``classes_``."""
        from csbrain.engine.metrics import scores_from_outputs

        outputs = self._outputs(X)                # checks the fit first
        scores = scores_from_outputs(self.task_, outputs)
        return np.column_stack([1.0 - scores, scores]) if self.task_ == "binary" else scores

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class of each trial, ``(n,)``, from ``classes_``."""
        proba = self.predict_proba(X)             # checks the fit first
        return self.classes_[np.argmax(proba, axis=1)]


class CSBrainRegressor(RegressorMixin, _FinetunedEstimator):
    """Fine-tune CSBrain on trials with one continuous target; predict it.

    Parameters are those of :class:`CSBrainClassifier`. The target is standardised for
    training (``y_mean_``, ``y_scale_``) and predictions are mapped back.

    Attributes
    ----------
    model_ : CSBrainForRegression
    y_mean_, y_scale_ : float
    ch_names_, n_patches_, task_, fit_metrics_
        As for the classifier.
    """

    def fit(self, X: Any, y: Any) -> CSBrainRegressor:
        """Fine-tune on trials ``X`` with targets ``y`` ``(n_trials,)`` (finite floats).

        Returns
        -------
        self
        """
        windows = self._windows(X, fitting=True)
        y = np.asarray(y, dtype=np.float64)
        if y.ndim != 1 or len(y) != len(windows) or not np.isfinite(y).all():
            raise CSBrainError(f"y has shape {y.shape}; expected ({len(windows)},) finite "
                               f"targets, one per trial")
        self.y_mean_, self.y_scale_ = float(y.mean()), float(y.std()) or 1.0
        self._fit_model(windows, ((y - self.y_mean_) / self.y_scale_).astype(np.float32),
                        "regression", [])
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets ``(n,)``."""
        return self._outputs(X)[:, 0] * self.y_scale_ + self.y_mean_


class CSBrainEmbedder(TransformerMixin, _CSBrainBase):
    """CSBrain backbone features of trials (frozen): a transformer for pipelines.

    ``make_pipeline(CSBrainEmbedder(init=...), LogisticRegression())`` is the linear probe on
    frozen features.

    Parameters
    ----------
    init : str | Path | None
        Weights: released ``.pth``, model or run folder, or hub id; None: random weights
        (seeded by ``random_state``; a baseline).
    sfreq, ch_names, unit, allow_implausible
        As for :class:`CSBrainClassifier`.
    pooled : bool
        True: the mean of all tokens ``(n, d_model)``; False: every token flattened
        ``(n, C * P * d_model)`` (sorted channel order).
    preset, d_model, n_layers, n_heads, dim_feedforward
        Architecture without ``init``.
    batch_size : int
    device : str
    random_state : int | None

    Attributes
    ----------
    model_ : CSBrain
        The backbone (eval mode).
    ch_names_, n_patches_
    """

    def __init__(self, init: str | Path | None = None, *, sfreq: float | None = None,
                 ch_names: list[str] | None = None, unit: str = "V", pooled: bool = True,
                 preset: str = "released", d_model: int | None = None,
                 n_layers: int | None = None, n_heads: int | None = None,
                 dim_feedforward: int | None = None, batch_size: int = 64,
                 device: str = "cpu", allow_implausible: bool = False,
                 random_state: int | None = 0) -> None:
        _store_params(self, locals())

    def fit(self, X: Any, y: Any = None) -> CSBrainEmbedder:
        """Load (or initialise) the backbone on ``X``'s channels; nothing is trained.

        Returns
        -------
        self
        """
        from csbrain.config import CSBrainConfig
        from csbrain.engine.distributed import resolve_device
        from csbrain.models import CSBrain, load_model

        self._windows(X, fitting=True)
        if self.init is not None:
            if any(getattr(self, k) is not None for k in SIZE_PARAMS):
                raise CSBrainError(f"{', '.join(SIZE_PARAMS)} apply without init; with "
                                   f"init={self.init!r} the architecture is the checkpoint's")
            model = load_model(_local_init(self.init), montage=self.ch_names_)
            backbone = getattr(model, "backbone", model)
        else:
            sizes = {k: getattr(self, k) for k in SIZE_PARAMS if getattr(self, k) is not None}
            with torch.random.fork_rng():
                torch.manual_seed(_seed(self.random_state))
                backbone = CSBrain(self.ch_names_, CSBrainConfig.from_preset(self.preset,
                                                                            **sizes))
        self.model_ = backbone.to(resolve_device(self.device, 0)).eval()
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Features ``(n, d_model)`` (pooled) or ``(n, C * P * d_model)``, float32."""
        from torch.utils.data import TensorDataset

        from csbrain.engine.inference import embed_dataset

        check_is_fitted(self, "model_")
        windows = torch.from_numpy(self._windows(X, fitting=False))
        feats = embed_dataset(self.model_, TensorDataset(windows, torch.zeros(len(windows))),
                              pooled=self.pooled, batch_size=self.batch_size,
                              device=next(self.model_.parameters()).device)
        return feats.reshape(len(feats), -1)
