"""The run folder: creation (writable before any training), ``run_config.json``, resume checks.

A run folder holds::

    config.json + model.safetensors   the selected model (csbrain hub format)
    trainer_state.pt                  resume point (weights, optimiser, schedule, RNG, position)
    metrics.jsonl                     per-step and per-epoch records
    metrics.json                      final metrics (fine-tuning: validation and test)
    run_config.json                   resolved run config, versions, data fingerprint, splits
"""

from __future__ import annotations

import json
import logging
import os
import platform
from pathlib import Path
from typing import Any

import torch

from csbrain._checks import more
from csbrain._io import atomic_write_json, atomic_write_text
from csbrain.engine.checkpoint import TRAINER_STATE
from csbrain.engine.distributed import DistInfo, barrier
from csbrain.models.hub import CONFIG_NAME, WEIGHTS_NAME

logger = logging.getLogger(__name__)

__all__ = ["RUN_CONFIG", "METRICS_FINAL", "METRICS_LOG", "RESUMABLE_CHANGES", "prepare_run_dir",
           "create_run_dir", "write_run_config", "read_run_config", "check_resume"]

RUN_CONFIG = "run_config.json"
METRICS_FINAL = "metrics.json"
#: Per-step and per-epoch records (JSON lines, rank 0).
METRICS_LOG = "metrics.jsonl"
#: Config keys that may change when resuming (they do not change what is computed).
RESUMABLE_CHANGES = ("progress", "num_workers", "loader_threads", "device", "log_every",
                     "cpu_threads")
#: Files that make a folder a run that has reached a checkpoint (a new run refuses it).
_CHECKPOINT_FILES = (CONFIG_NAME, WEIGHTS_NAME, TRAINER_STATE)


def _probe_writable(folder: Path, out: Path) -> None:
    """Write and delete a probe file in ``folder``; PermissionError naming ``out`` if it fails."""
    try:
        probe = folder / f".csbrain-write-test-{os.getpid()}"
        atomic_write_text(probe, "ok\n")
        probe.unlink()
    except OSError as err:
        raise PermissionError(f"output folder {str(out)!r} is not writable "
                              f"({err.strerror or err}: {str(folder)!r}); choose a folder you "
                              f"can write to") from None


def prepare_run_dir(out: str | Path, *, resume: bool, info: DistInfo) -> Path:
    """Check that a run can use ``out``, before any data or model is loaded; create nothing.

    The folder itself is made by :func:`create_run_dir` once the run can start (data opened,
    model and initial weights loaded). A folder that holds no checkpoint (a run stopped before
    its first one) starts again cleanly.

    Raises
    ------
    FileExistsError
        ``out`` already holds a checkpoint and ``resume`` is False.
    FileNotFoundError
        ``resume`` but ``out`` holds no checkpoint.
    PermissionError
        ``out`` (or the folder it would be created in) cannot be written.
    """
    out = Path(out)
    if info.is_main:
        if resume:
            if not (out / TRAINER_STATE).is_file():
                started = " (it stopped before its first checkpoint)" if (
                    out / RUN_CONFIG).is_file() else ""
                raise FileNotFoundError(f"cannot resume: {str(out)!r} has no {TRAINER_STATE}"
                                        f"{started}; start the run without --resume")
        else:
            present = [f for f in _CHECKPOINT_FILES if (out / f).exists()]
            if present:
                raise FileExistsError(f"output folder {str(out)!r} already holds a run "
                                      f"({', '.join(present)}); pass --resume to continue it, "
                                      f"or choose a new folder")
        existing = out
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise PermissionError(f"output folder {str(out)!r} is not writable "
                                  f"({str(existing)!r} is a file); choose a folder")
        _probe_writable(existing, out)
    barrier()
    return out


def create_run_dir(out: Path, *, resume: bool, info: DistInfo) -> Path:
    """Create the run folder (rank 0) once the run can start; a new run replaces the records
    of a start that never reached a checkpoint (``run_config.json``, ``metrics.jsonl``)."""
    if info.is_main:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise PermissionError(f"output folder {str(out)!r} cannot be created "
                                  f"({err.strerror or err})") from None
        if not resume:
            stale = [f for f in (RUN_CONFIG, METRICS_LOG, METRICS_FINAL) if (out / f).exists()]
            if stale:
                logger.info("%s: replacing %s of a run that stopped before its first checkpoint",
                            out, ", ".join(stale))
                for f in stale:
                    (out / f).unlink()
    barrier()
    return out


def write_run_config(run_dir: Path, *, kind: str, config: Any, data: dict[str, Any],
                     info: DistInfo, details: dict[str, Any]) -> dict[str, Any]:
    """Write ``run_config.json``: the resolved config, versions, data fingerprint, details."""
    from csbrain import __version__
    from csbrain.configio import to_dict

    record = {"kind": kind, "config": to_dict(config), "csbrain_version": __version__,
              "torch_version": torch.__version__, "python_version": platform.python_version(),
              "world_size": info.world_size, "device": str(info.device), "data": data,
              **details}
    if info.is_main:
        atomic_write_json(run_dir / RUN_CONFIG, record)
    return record


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    """Read ``run_config.json`` of a run folder."""
    path = Path(run_dir) / RUN_CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{str(run_dir)!r} is not a run folder: no {RUN_CONFIG}")
    return json.loads(path.read_text("utf-8"))


def check_resume(run_dir: Path, *, kind: str, config: Any, data: dict[str, Any]) -> None:
    """Refuse to resume a run with another kind, config or data than it started with."""
    from csbrain.configio import config_diff, to_dict

    saved = read_run_config(run_dir)
    if saved.get("kind") != kind:
        raise ValueError(f"cannot resume: {str(run_dir)!r} is a {saved.get('kind')} run, "
                         f"not {kind}")
    current, old = to_dict(config), dict(saved["config"])
    defaults = to_dict(type(config)())
    for key, value in current.items():      # options added since the run started: defaults
        if key not in old and value == defaults.get(key):
            old[key] = value
    diff = [d for d in config_diff(old, current) if d.split(":", 1)[0] not in RESUMABLE_CHANGES]
    if diff:
        raise ValueError(f"cannot resume {str(run_dir)!r} with a different configuration: "
                         f"{more(diff, 6)} (only {', '.join(RESUMABLE_CHANGES)} may change)")
    if saved.get("data", {}).get("sha256") != data.get("sha256"):
        raise ValueError(f"cannot resume {str(run_dir)!r}: the data differ from the run's "
                         f"({saved.get('data', {}).get('source')} -> {data.get('source')})")

