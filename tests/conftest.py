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
