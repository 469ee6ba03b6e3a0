"""Recipes as data and the shipped split files (checksums)."""

from __future__ import annotations

import hashlib
from importlib import resources

import pytest

from csbrain.benchmark.recipes import (
    RECIPE_NAMES,
    BenchmarkError,
    get_recipe,
    load_recipes,
    load_split_file,
    split_checksums,
)
from csbrain.engine.metrics import TASK_METRICS

SPLITS = resources.files("csbrain") / "resources" / "benchmark" / "splits"


def test_sixteen_recipes_complete():
    assert len(RECIPE_NAMES) == 16
    for name, r in load_recipes().items():
        for key in ("task", "classes", "window_s", "filter", "split", "hparams", "metrics",
                    "select_metric", "paper", "sources", "variants", "scale_uV"):
            assert key in r, (name, key)
        assert set(r["metrics"]) == set(TASK_METRICS[r["task"]]), name
        assert r["select_metric"] in r["metrics"], name
        assert set(r["variants"]) == {"released", "fixed"}, name
        for k in ("lr", "weight_decay", "dropout", "epochs", "batch_size", "head", "source"):
            assert k in r["hparams"], (name, k)
        assert r["task"] == "regression" or len(r["classes"]) >= 2, name


@pytest.mark.parametrize("name,key,value", [
    ("faced", "channel_slice", [0, 30]), ("shu_mi", "train_fraction", 0.3),
    ("tuab", "max_train_files", 50000), ("isruc", "scale_uV", 1.0),
    ("bciciv2a", "reference", "average"), ("mental_arithmetic", "resample_npad", "auto"),
    ("tusl", "normalize", {"kind": "dataset_zscore", "eps": 1e-8})])
def test_defective_protocols_have_released_and_fixed(name, key, value):
    assert get_recipe(name, "released")[key] == value
    assert get_recipe(name, "fixed").get(key) != value
    assert get_recipe(name, "released")["variant_note"]


def test_shipped_split_checksums():
    sums = split_checksums()
    shipped = sorted(p.name for p in SPLITS.iterdir() if p.name.endswith(".json"))
    assert sorted(sums) == shipped
    for fname, digest in sums.items():
        assert hashlib.sha256((SPLITS / fname).read_bytes()).hexdigest() == digest, fname
        load_split_file(fname[:-5])


def test_split_files_reproduce_the_released_rules():
    chb = load_split_file("chbmit")["splits"]
    assert chb["train"] == [f"chb{i:02d}" for i in range(1, 21)]
    assert chb["val"] == ["chb21", "chb22"] and chb["test"] == ["chb23", "chb24"]
    phys = load_split_file("physionet_mi")["splits"]
    assert [len(phys[k]) for k in ("train", "val", "test")] == [70, 19, 20]
    assert phys["val"][0] == "S071" and phys["test"][-1] == "S109"


def test_unknown_names_are_refused():
    with pytest.raises(BenchmarkError, match="accepted: tuev"):
        get_recipe("nope")
    with pytest.raises(BenchmarkError, match="released, fixed"):
        get_recipe("tuev", "other")
    assert get_recipe("BCIC-IV-2a")["name"] == "bciciv2a"
