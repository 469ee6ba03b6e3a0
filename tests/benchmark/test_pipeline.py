"""Listing checks, split rules, channel derivation, resumable prepare and run, the report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from csbrain.benchmark.converters._base import Segment, SourceRecording
from csbrain.benchmark.prepare import prepare_benchmark, preprocess_recording
from csbrain.benchmark.recipes import BenchmarkError, get_recipe
from csbrain.benchmark.report import summarise
from csbrain.benchmark.splits import check_listing, subject_splits
from tests.benchmark.fixtures import bciciv2a as fx

TINY = ["model.preset=tiny", "max_steps=1", "batch_size=8", "progress=false", "device=cpu",
        "cpu_threads=1"]


def test_listing_check_names_missing_and_extra():
    split = get_recipe("bciciv2a")["split"]
    files = ["A01T.mat", "A01E.mat", "A06T.mat", "notes.txt"]
    with pytest.raises(BenchmarkError) as err:
        check_listing("bciciv2a", files, split, ["A01", "A06", "A08"])
    msg = str(err.value)
    assert "missing subjects [A08]" in msg and "notes.txt" in msg and "A06: missing files " \
        "[A06E.mat]" in msg
    check_listing("bciciv2a", ["A01T.mat", "A01E.mat"], split, ["A01"])
    with pytest.raises(BenchmarkError, match="missing subjects"):
        check_listing("bciciv2a", ["A01T.mat", "A01E.mat"], split, None)


def test_seeded_and_positional_rules():
    tusl = get_recipe("tusl")["split"]
    subs = [f"s{i:02d}" for i in range(10)]
    a = subject_splits("tusl", tusl, subs, {})
    assert a == subject_splits("tusl", tusl, list(reversed(subs)), {})
    assert sorted(a.values()).count("test") == 2 and sorted(a.values()).count("val") == 2
    tuev = get_recipe("tuev")["split"]
    b = subject_splits("tuev", tuev, subs, {"s09": "test"})
    assert b["s09"] == "test" and list(b.values()).count("val") == 1
    hmc = get_recipe("hmc")["split"]
    c = subject_splits("hmc", hmc, [f"SN{i:03d}" for i in range(1, 131)], {})
    assert c["SN100"] == "train" and c["SN101"] == "val" and c["SN126"] == "test"


def test_bipolar_derivation_filter_free_scaling():
    recipe = get_recipe("chbmit")  # no filter: values are exact
    names = ["EEG FP1-REF", "EEG F7-REF", "EEG T7-REF"]
    data = np.array([np.full(2000, 3e-5), np.full(2000, 1e-5), np.zeros(2000)])
    recipe = dict(recipe, channels=["FP1-F7", "F7-T7"])
    rec = SourceRecording("r", "s", data, 200.0, names, [Segment(0.0, 10.0, 1)])
    w = preprocess_recording(rec, recipe)
    assert w["x"].shape == (1, 2, 10, 200)
    np.testing.assert_allclose(w["x"][0, 0], 0.2, rtol=1e-6)   # 20 uV = 0.2 x 100 uV
    np.testing.assert_allclose(w["x"][0, 1], 0.1, rtol=1e-6)
    with pytest.raises(BenchmarkError, match="neither stored nor derivable"):
        preprocess_recording(rec, dict(recipe, channels=["FP1-O2"]))


def test_prepare_resumes_and_refuses_a_changed_copy(tmp_path):
    raw = fx.make(tmp_path / "raw")
    subs = list(fx.PREPARE_SUBJECTS)
    done: list[str] = []
    first = prepare_benchmark("bciciv2a", raw, tmp_path / "s", subjects=subs,
                              progress=done.append)
    assert len(done) == 6
    again: list[str] = []
    second = prepare_benchmark("bciciv2a", raw, tmp_path / "s", subjects=subs,
                               progress=again.append)
    assert again == [] and second["splits_sha256"] == first["splits_sha256"]
    (raw / "A08E.mat").unlink()
    with pytest.raises(BenchmarkError, match=r"A08: missing files \[A08E.mat\]"):
        prepare_benchmark("bciciv2a", raw, tmp_path / "s", subjects=subs)
    with pytest.raises(BenchmarkError, match="variant='fixed'"):
        prepare_benchmark("bciciv2a", raw, tmp_path / "s", subjects=subs[:2],
                          variant="released")


def test_run_is_resumable_per_seed(tmp_path):
    from csbrain.benchmark.runner import run_benchmark

    raw = fx.make(tmp_path / "raw")
    prepare_benchmark("bciciv2a", raw, tmp_path / "s", subjects=list(fx.PREPARE_SUBJECTS))
    seen: list[tuple[int, str]] = []
    run_benchmark(tmp_path / "s", tmp_path / "r", seeds=[0], overrides=TINY,
                  progress=lambda s, w: seen.append((s, w)))
    run_benchmark(tmp_path / "s", tmp_path / "r", seeds=[0], overrides=TINY,
                  progress=lambda s, w: seen.append((s, w)))
    assert seen == [(0, "done"), (0, "skipped")]
    cfg = json.loads((tmp_path / "r" / "bciciv2a-fixed" / "seed0" / "run_config.json")
                     .read_text())
    text = json.dumps(cfg)
    assert '"weight_decay": 0.01' in text and '"head_dropout": 0.3' in text
    with pytest.raises(BenchmarkError, match="variant 'fixed'"):
        run_benchmark(tmp_path / "s", tmp_path / "r", seeds=[0], variant="released")


def test_summary_mean_std_and_not_reported():
    runs = [{"recipe": "hmc", "variant": "fixed", "seed": s, "path": "",
             "test": {"balanced_accuracy": v, "cohen_kappa": v / 2, "f1_weighted": v}}
            for s, v in enumerate((0.5, 0.7))]
    (row,) = summarise(runs)
    ba = row["metrics"]["balanced_accuracy"]
    assert ba["mean"] == pytest.approx(0.6) and ba["std"] == pytest.approx(np.std([.5, .7],
                                                                                  ddof=1))
    assert ba["paper"] == "not reported"
    assert row["metrics"]["cohen_kappa"]["paper"] == 0.6818


def test_regression_recipe_keeps_float_targets(tmp_path, monkeypatch):
    """A regression recipe (SEED-VIG's row) with a stand-in converter: float targets reach the
    run, split by the recording-count rule (15 / 4 / rest)."""
    import types

    import csbrain.benchmark.prepare as prep
    from csbrain.benchmark.runner import run_benchmark

    chans = get_recipe("seed_vig")["channels"]
    rng = np.random.default_rng(0)

    def recordings(raw):
        for i in range(24):
            yield SourceRecording(f"rec{i:02d}", f"sub{i:02d}", rng.normal(0, 1e-5, (17, 3200)),
                                  200.0, chans, [Segment(0.0, 8.0, 0.1 * i),
                                                 Segment(8.0, 8.0, 0.05 * i)])

    fake = types.SimpleNamespace(files=lambda raw: [f"Raw_Data/rec{i:02d}.mat" for i in range(24)],
                                 recordings=recordings)
    monkeypatch.setattr(prep, "converter", lambda name: fake)
    (tmp_path / "raw").mkdir()
    rec = prepare_benchmark("seed_vig", tmp_path / "raw", tmp_path / "s")
    assert rec["n_windows"] == {"train": 30, "val": 8, "test": 10}
    assert rec["splits"]["rec14"] == "train" and rec["splits"]["rec15"] == "val"
    (d,) = run_benchmark(tmp_path / "s", tmp_path / "r", seeds=[0], overrides=TINY)
    m = json.loads((d / "metrics.json").read_text())
    assert m["task"] == "regression" and {"pearson_r", "r2", "rmse"} <= set(m["test"])
