"""Helpers shared by the demo's stages: config overrides and resumable runs."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def overrides(*sections: dict[str, Any], **more: Any) -> list[str]:
    """Dotted ``key=value`` overrides of the merged ``sections`` and ``more`` (None dropped)."""
    merged: dict[str, Any] = {}
    for s in sections:
        merged.update(s)
    merged.update(more)
    return [f"{k}={json.dumps(v) if isinstance(v, list | dict) else v}" for k, v in merged.items()
            if v is not None]


def train_run(fn: Any, cfg: Any, data: Any, run_dir: Path) -> Any:
    """``fn(cfg, data, run_dir)`` (pretrain / finetune), continuing the run if ``run_dir`` holds
    its checkpoint (a finished run only re-evaluates). A folder that an interrupted demo left
    without a checkpoint holds no progress and is started again.

    A ``method="linear"`` fine-tuning run keeps no trainer state: its finished folder (with
    ``metrics.json``) is fitted again, which gives the same numbers.
    """
    from csbrain.engine.checkpoint import TRAINER_STATE

    resume = (run_dir / TRAINER_STATE).is_file()
    if not resume and run_dir.exists():
        logger.info("%s: no checkpoint, starting this run again", run_dir)
        shutil.rmtree(run_dir)
    return fn(cfg, data, run_dir, resume=resume)
