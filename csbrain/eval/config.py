"""Options of evaluation, prediction and embedding (``--config`` / ``--set`` of the CLI)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from csbrain._checks import check_int

__all__ = ["InferenceConfig", "PREP_SECTIONS", "split_overrides"]

#: Top-level keys of a :class:`~csbrain.data.prepconfig.PrepConfig` (``--set filter.h_freq=40``
#: given to ``predict`` / ``embed`` goes to the preprocessing, not to :class:`InferenceConfig`).
PREP_SECTIONS: tuple[str, ...] = ("input", "channels", "reference", "filter", "windows",
                                  "labels", "reject", "store")


def split_overrides(items: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split ``key=value`` overrides into (inference options, preprocessing options).

    A key is a preprocessing option when its first part is one of :data:`PREP_SECTIONS` and
    it is dotted (``windows.length_s``) or is ``reference``; ``windows`` alone is the
    inference option ``windows=continuous``.
    """
    inference, prep = [], []
    for item in items:
        key = item.split("=", 1)[0].strip()
        head = key.split(".", 1)[0]
        is_prep = head in PREP_SECTIONS and ("." in key or head == "reference")
        (prep if is_prep else inference).append(item)
    return inference, prep


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
        (e.g. converted released checkpoints). Refused when the model has one. Preprocessing
        options can also be given directly (``--set filter.h_freq=40``, see
        :func:`split_overrides`); without either, the defaults, adapted to each file's rate.
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
