"""Shared fixtures. The golden parity files live in ``../shared/golden`` beside the repository
(``CSBRAIN_GOLDEN`` overrides)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def golden_dir() -> Path:
    return Path(os.environ.get("CSBRAIN_GOLDEN", REPO.parent / "shared" / "golden"))


@pytest.fixture(scope="session")
def golden() -> Path:
    path = golden_dir()
    if not (path / "manifest.json").is_file():
        pytest.skip(f"golden parity files not found in {path} (set CSBRAIN_GOLDEN)")
    return path


@pytest.fixture(scope="session")
def golden_manifest(golden) -> dict:
    return json.loads((golden / "manifest.json").read_text())


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One torch thread per test: CI's 2 cores are shared, and intra-op thread contention
    makes tiny models hundreds of times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
