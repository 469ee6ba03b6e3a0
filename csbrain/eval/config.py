"""Options of evaluation, prediction and embedding (``--config`` / ``--set`` of the CLI)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from csbrain._checks import check_int

__all__ = ["InferenceConfig"]


@dataclass(frozen=True)
class InferenceConfig:
    """How ``csbrain evaluate`` / ``predict`` / ``embed`` run a saved model.

    Parameters
    ----------
    split : {"test", "val", "train", "all"}
        Evaluation: which windows of the store. ``test``/``val``/``train`` repeat the run's
        seeded split (run folder on the run's data) or use the store's own split labels;
        ``all`` takes every labelled window.
    batch_size : int
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
    windows : {"saved", "continuous"}
        Prediction: ``saved`` cuts windows as the model's preprocessing config says
        (event-locked if it was); ``continuous`` tiles each recording with the saved window
        length and stride (for recordings without the training events).
    pooled : bool
        Embedding: the mean token per window ``(n, D)`` (True) or all tokens ``(n, C, P, D)``.
    prep_config : str | None
        A PrepConfig file (TOML / YAML / JSON) for models that carry no preprocessing config
        (e.g. converted released checkpoints). Refused when the model has one.
    progress : bool
        tqdm progress bars.
    """

    split: Literal["test", "val", "train", "all"] = "test"
    batch_size: int = 64
    device: str = "auto"
    windows: Literal["saved", "continuous"] = "saved"
    pooled: bool = True
    prep_config: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        check_int("batch_size", self.batch_size, min_value=1)
