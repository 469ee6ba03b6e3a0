"""The paper's 16 fine-tuning recipes, read from data (``resources/benchmark/recipes.json``).

A recipe is one JSON object: task, classes, channels and montage, filters, window length,
scaling, split rule, the released fine-tuning hyper-parameters, metrics, the checkpoint metric,
the paper's numbers (with their source) and ``sources`` (which released script each fact comes
from). ``variants`` holds ``released`` (as the paper ran it, seeded where the original was not)
and ``fixed`` overrides; :func:`get_recipe` merges one into the recipe. No per-dataset code
lives here: a dataset is a row.

Split files (``resources/benchmark/splits/<name>.json``) list the subjects of every split where
the released code defines them by rule; ``SHA256SUMS`` beside them holds their checksums, which
:func:`load_split_file` verifies.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from importlib import resources
from typing import Any

__all__ = ["RECIPE_NAMES", "VARIANTS", "BenchmarkError", "load_recipes", "get_recipe",
           "load_split_file", "split_checksums", "sha256_text"]

#: Variants every recipe has.
VARIANTS: tuple[str, ...] = ("released", "fixed")
#: Recipe keys a variant may override.
_VARIANT_KEYS = frozenset({"max_train_files", "train_fraction", "scale_uV", "channel_slice",
                           "drop_channels", "note", "reference", "filter", "segment_filter",
                           "normalize", "resample_npad", "seizure_windows",
                           "released_files", "missing_channels", "window_resample"})


class BenchmarkError(ValueError):
    """A benchmark input is unusable (unknown recipe, bad dataset copy, store mismatch)."""


def _res():
    return resources.files("csbrain") / "resources" / "benchmark"


def sha256_text(text: str) -> str:
    """Hex sha256 of UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@functools.lru_cache(maxsize=1)
def load_recipes() -> dict[str, dict[str, Any]]:
    """All recipes by name (the JSON objects, in the file's order)."""
    data = json.loads((_res() / "recipes.json").read_text("utf-8"))
    out = {}
    for r in data["recipes"]:
        bad = set().union(*(set(v) for v in r["variants"].values())) - _VARIANT_KEYS
        if bad:
            raise BenchmarkError(f"recipe {r['name']!r}: variant keys {sorted(bad)} are not "
                                 f"understood; accepted: {sorted(_VARIANT_KEYS)}")
        out[r["name"]] = r
    return out


RECIPE_NAMES: tuple[str, ...] = tuple(load_recipes())


def get_recipe(name: str, variant: str = "fixed") -> dict[str, Any]:
    """One recipe with a variant's overrides applied (a copy; ``recipe["variant"]`` is set).

    Raises
    ------
    BenchmarkError
        Unknown name or variant (the message lists the accepted ones).
    """
    recipes = load_recipes()
    key = name.lower().replace("-", "_")
    if key not in recipes:
        titles = {r["title"].lower().replace("-", "_"): n for n, r in recipes.items()}
        key = titles.get(key, key)
    if key not in recipes:
        raise BenchmarkError(f"unknown benchmark dataset {name!r}; accepted: "
                             f"{', '.join(recipes)}")
    if variant not in VARIANTS:
        raise BenchmarkError(f"unknown variant {variant!r}; accepted: {', '.join(VARIANTS)}")
    r = copy.deepcopy(recipes[key])
    over = dict(r["variants"].get(variant, {}))
    r["variant_note"] = over.pop("note", "")
    r.update(over)
    r["variant"] = variant
    r["defective"] = any(r["variants"][v] for v in VARIANTS)
    return r


def split_checksums() -> dict[str, str]:
    """``{file name: sha256}`` from the shipped ``splits/SHA256SUMS``."""
    text = (_res() / "splits" / "SHA256SUMS").read_text("utf-8")
    out = {}
    for line in text.splitlines():
        if line.strip():
            digest, fname = line.split()
            out[fname] = digest
    return out


def load_split_file(name: str) -> dict[str, Any]:
    """The shipped split file of recipe ``name``, its checksum verified.

    Raises
    ------
    BenchmarkError
        No split file, or its sha256 differs from ``SHA256SUMS`` (a modified installation).
    """
    fname = f"{name}.json"
    path = _res() / "splits" / fname
    if not path.is_file():
        raise BenchmarkError(f"recipe {name!r} has no shipped split file ({fname})")
    text = path.read_text("utf-8")
    want = split_checksums().get(fname)
    if want != sha256_text(text):
        raise BenchmarkError(f"split file {fname} has sha256 {sha256_text(text)[:12]}..., "
                             f"expected {str(want)[:12]}... (SHA256SUMS); the installation "
                             f"is modified: reinstall csbrain")
    return json.loads(text)
