"""Every recipe end to end on its generated, format-true fixture: ``csbrain benchmark prepare``
-> ``run`` (tiny model, a few steps) -> ``report``. A recipe whose converter or fixture does not
exist yet is skipped, naming the missing module."""

from __future__ import annotations

import importlib
import json

import pytest

from csbrain.benchmark.recipes import RECIPE_NAMES, get_recipe
from csbrain.cli import main

#: Run-config overrides that make a fine-tuning run take about a second on a CPU.
TINY = ["model.preset=tiny", "max_steps=2", "batch_size=8", "progress=false", "device=cpu",
        "cpu_threads=1", "num_workers=0"]


def _module(kind: str, name: str):
    path = {"converter": f"csbrain.benchmark.converters.{name}",
            "fixture": f"tests.benchmark.fixtures.{name}"}[kind]
    try:
        return importlib.import_module(path)
    except ModuleNotFoundError as err:
        if err.name != path:
            raise
        pytest.skip(f"{name}: the {kind} module {path} does not exist yet")


@pytest.mark.parametrize("name", RECIPE_NAMES)
def test_recipe_end_to_end(name, tmp_path, capsys):
    _module("converter", name)
    fixture = _module("fixture", name)
    raw = fixture.make(tmp_path / "raw")
    subjects = list(getattr(fixture, "PREPARE_SUBJECTS", ()))
    store, runs = tmp_path / "store", tmp_path / "runs"
    variant = "released" if get_recipe(name)["defective"] else "fixed"
    argv = ["benchmark", "prepare", name, "--raw", str(raw), "--out", str(store),
            "--variant", variant] + (["--subjects", *subjects] if subjects else [])
    assert main(argv) == 0, capsys.readouterr().err
    bench = json.loads((store / "benchmark.json").read_text())
    assert bench["recipe"] == name and bench["variant"] == variant
    assert set(bench["splits"].values()) <= {"train", "val", "test"}
    assert bench["n_windows"]["train"] > 0 and bench["n_windows"]["test"] > 0
    argv = ["benchmark", "run", "--data", str(store), "--out", str(runs), "--seeds", "0"]
    for kv in TINY:
        argv += ["--set", kv]
    assert main(argv) == 0, capsys.readouterr().err
    metrics = json.loads((runs / f"{name}-{variant}" / "seed0" / "metrics.json").read_text())
    recipe = get_recipe(name, variant)
    assert set(recipe["metrics"]) <= set(metrics["test"])
    model = json.loads((runs / f"{name}-{variant}" / "seed0" / "config.json").read_text())
    if recipe.get("sequence_length"):             # ISRUC: the released sequence model
        assert model["architecture"] == "CSBrainForSequenceClassification"
        assert model["extra"]["sequence_length"] == recipe["sequence_length"]
        assert metrics["test"]["n"] == recipe["sequence_length"] * metrics["n"]["test"]
    else:
        assert model["architecture"] in ("CSBrainForClassification", "CSBrainForRegression")
    assert main(["benchmark", "report", str(runs), "--out", str(tmp_path / "rep")]) == 0
    rows = json.loads((tmp_path / "rep.json").read_text())["rows"]
    assert [(r["recipe"], r["variant"]) for r in rows] == [(name, variant)]
    md = (tmp_path / "rep.md").read_text()
    assert recipe["title"] in md and ("not reported" in md or recipe["paper"])
