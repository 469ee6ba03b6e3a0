"""Checkpoints of a run folder, each file written atomically.

- ``config.json`` + ``model.safetensors``: the selected model in the csbrain hub format
  (:meth:`csbrain.models.hub.HubMixin.save_pretrained`), loadable by
  :func:`csbrain.models.load_model`. They are written into a temporary folder and then moved
  into place one by one (``os.replace``), so a failing write leaves the previous pair intact.
- ``trainer_state.pt``: everything to resume (current weights, optimiser, scheduler, RNG
  states, epoch / step / position in the epoch, best metric). Serialised in memory, then written
  with :func:`csbrain._io.atomic_write_bytes`. It is written last: it is the commit point of a
  checkpoint.
"""

from __future__ import annotations

import io
import logging
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from csbrain._io import atomic_write_bytes
from csbrain.models.hub import CONFIG_NAME, WEIGHTS_NAME

logger = logging.getLogger(__name__)

__all__ = ["TRAINER_STATE", "save_model", "save_trainer_state", "load_trainer_state",
           "rng_state", "set_rng_state"]

TRAINER_STATE = "trainer_state.pt"


def save_model(model: torch.nn.Module, run_dir: str | Path, *,
               extra: dict[str, Any] | None = None) -> Path:
    """Write ``config.json`` + ``model.safetensors`` of ``model`` into ``run_dir``, atomically.

    Parameters
    ----------
    model : csbrain model (HubMixin)
        Unwrapped (not DDP).
    run_dir : path-like
        Existing folder.
    extra : dict | None
        Saved under ``extra`` in ``config.json`` (e.g. the preprocessing config).

    Returns
    -------
    Path
        ``run_dir``.
    """
    run_dir = Path(run_dir)
    tmp = Path(tempfile.mkdtemp(prefix=".model-", suffix=".tmp", dir=run_dir))
    try:
        model.save_pretrained(tmp, extra=extra, model_card=False)
        for name in (WEIGHTS_NAME, CONFIG_NAME):  # weights first: a config never lacks them
            os.replace(tmp / name, run_dir / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return run_dir


def rng_state() -> dict[str, Any]:
    """The RNG states of python, numpy and torch (CPU and every CUDA device)."""
    np_state = np.random.get_state()
    return {"python": random.getstate(),
            "numpy": {"name": np_state[0], "key": np_state[1].tolist(), "pos": int(np_state[2]),
                      "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["name"], np.asarray(n["key"], dtype=np.uint32), n["pos"],
                         n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_trainer_state(run_dir: str | Path, state: dict[str, Any]) -> Path:
    """Serialise ``state`` (tensors, numbers, strings, lists, dicts) to ``trainer_state.pt``."""
    buf = io.BytesIO()
    torch.save(state, buf)
    path = Path(run_dir) / TRAINER_STATE
    atomic_write_bytes(path, buf.getvalue())
    return path


def load_trainer_state(run_dir: str | Path) -> dict[str, Any]:
    """Read ``trainer_state.pt`` (tensors on the CPU, ``weights_only`` unpickling)."""
    path = Path(run_dir) / TRAINER_STATE
    if not path.is_file():
        raise FileNotFoundError(f"cannot resume: {str(path)!r} does not exist (the run folder "
                                f"has no checkpoint yet; start without --resume)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt file: name it
        raise ValueError(f"cannot resume: {str(path)!r} is not a readable trainer state "
                         f"({type(err).__name__}: {err})") from None
