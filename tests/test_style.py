"""The code style the project keeps (``[tool.ruff.lint]`` in pyproject.toml): pycodestyle,
pyflakes and import order, checked by ruff over the package, the tests and the benchmarks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is not installed: it is in the test extra (pip install -e .[test])"
    proc = subprocess.run([ruff, "check", "--no-cache", "--output-format", "concise",
                           "csbrain", "tests", "benchmarks"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
