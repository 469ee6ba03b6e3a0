"""Every package pyproject.toml declares is used: imported by csbrain or its tests, or listed
in :data:`INDIRECT` with what needs it (a declared package nothing uses is dead weight)."""

from __future__ import annotations

import ast
import re
import tomllib
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: Declared packages no module imports by name, and what uses them.
INDIRECT = {
    "numcodecs": "zarr's Blosc/Zstd compressors of the window store (data/store.py)",
    "edfio": "mne.export to EDF (the tests write their recordings with it)",
    "eeglabio": "mne.export to EEGLAB .set",
    "pybv": "mne.export to BrainVision .vhdr",
    "ruff": "tests/test_style.py runs its command line",
}


def declared() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs += extra
    names = {re.split(r"[<>=!~\[; ]", s, maxsplit=1)[0].lower() for s in specs}
    return {n.replace("_", "-") for n in names} - {"csbrain"}


def imported_modules() -> set[str]:
    out = set()
    for path in [*(REPO / "csbrain").rglob("*.py"), *(REPO / "tests").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                out |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                out.add(node.module.split(".")[0])
    return out


def modules_of(dist: str) -> set[str]:
    """Top-level import names of an installed distribution (its own name if not installed)."""
    found = {m for m, dists in metadata.packages_distributions().items()
             if any(d.lower().replace("_", "-") == dist for d in dists)}
    return found or {dist.replace("-", "_")}


def test_every_declared_package_is_used():
    used = imported_modules()
    unused = sorted(d for d in declared() - set(INDIRECT) if not modules_of(d) & used)
    assert unused == [], f"declared in pyproject.toml but never imported: {unused}"
    assert set(INDIRECT) <= declared()


def test_the_lock_pins_only_what_the_declared_packages_need():
    """requirements.lock pins no package that no declared package requires (e.g. tomli-w)."""
    pins = {re.split(r"==", line, maxsplit=1)[0].lower().replace("_", "-")
            for line in (REPO / "requirements.lock").read_text("utf-8").splitlines()
            if line.strip() and not line.startswith("#")}
    needed, todo = set(), list(declared())
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [re.split(r"[<>=!~\[; (]", r, maxsplit=1)[0].lower().replace("_", "-")
                 for r in requires if "extra ==" not in r]
    assert sorted(pins - needed) == []
