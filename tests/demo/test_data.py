"""The demo's data rules on synthetic windows: no test window in the pretraining corpus, the
splits of each task kind, and hours of EEG with overlapping windows counted once."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from csbrain.demo.data import covered_hours, pretraining_corpus, task_split, time_fractions
from csbrain.demo.plan import HOLDOUT_FROM, PLANS, PRETRAIN_CHANNELS, DemoTask

P = 10                      # 10-s windows
STEP = 5 * 200              # every 5 s: consecutive windows overlap by half


def windows(n_per_rec=20, subjects=("s01", "s02"), split=None):
    """Continuous-style windows of two recordings, 10 s long every 5 s, labels alternating."""
    recs = [f"rec-{s}" for s in subjects]
    n = n_per_rec * len(recs)
    start = np.tile(np.arange(n_per_rec) * STEP, len(recs))
    duration = (n_per_rec - 1) * STEP / 200 + P          # the last window ends the recording
    return SimpleNamespace(
        x=np.zeros((n, len(PRETRAIN_CHANNELS) + 1, P, 200), np.float32),
        y=np.arange(n) % 2, start=start,
        recording=np.repeat(recs, n_per_rec), subject=np.repeat(list(subjects), n_per_rec),
        split=np.full(n, "" if split is None else split, dtype=object),
        duration_s={r: duration for r in recs},
        ch_names=["Fz", *PRETRAIN_CHANNELS])


def test_covered_hours_counts_overlaps_once():
    lw = windows(n_per_rec=20)
    keep = np.ones(len(lw.y), bool)
    # 20 windows of 10 s every 5 s cover 5 * 19 + 10 = 105 s per recording
    assert covered_hours(lw, keep) == pytest.approx(2 * 105 / 3600)
    keep[1::2] = False                                   # every other window: no overlap left
    assert covered_hours(lw, keep) == pytest.approx(2 * 10 * 10 / 3600)


def test_pretraining_corpus_stops_before_the_holdout_point():
    lw = windows()
    x, montage, summary = pretraining_corpus({"face13:continuous": lw})
    _, end = time_fractions(lw)
    kept = end <= HOLDOUT_FROM["face13"] + 1e-9
    assert len(x) == kept.sum() == summary[0]["kept"] and 0 < len(x) < len(lw.y)
    assert x.shape[1] == len(PRETRAIN_CHANNELS) and montage.n_chans == len(PRETRAIN_CHANNELS)
    assert summary[0]["window_hours"] > summary[0]["hours"] > 0


@pytest.mark.parametrize("kind", ["cross_subject", "holdout"])
def test_test_windows_start_after_the_holdout_point(kind):
    lw = windows()
    task = DemoTask("t", "t", "face13:19ch", kind, train_subject="s01", test_subject="s02")
    split = task_split(task, lw, val_fraction=0.2)
    start, end = time_fractions(lw)
    cut = HOLDOUT_FROM["face13"]
    test = split == "test"
    assert test.any() and (start[test] >= cut - 1e-9).all()
    # pretraining reads windows ending before the cut: never a test window
    assert not (test & (end <= cut + 1e-9)).any()
    assert {"train", "val"} <= set(split[~test])
    if kind == "cross_subject":
        assert set(lw.subject[test]) == {"s02"}
        assert set(lw.subject[(split == "train") | (split == "val")]) == {"s01"}
    else:
        assert (end[(split == "train") | (split == "val")] <= cut + 1e-9).all()


def test_official_split_and_bad_split_kind():
    lw = windows(split="train")
    lw.split[::4] = "test"
    split = task_split(DemoTask("t", "t", "x", "official"), lw, val_fraction=0.2)
    assert ((split == "test") == (lw.split == "test")).all()
    with pytest.raises(ValueError, match="split='random' is not one of"):
        task_split(DemoTask("t", "t", "face13", "random"), lw, val_fraction=0.2)


def test_bad_jobs_is_refused_before_anything_is_written(tmp_path):
    from csbrain.demo.run import run_demo

    with pytest.raises(ValueError, match="jobs must be >= 1, got 0"):
        run_demo(tmp_path / "demo", quick=True, jobs=0)
    assert not (tmp_path / "demo").exists()


@pytest.mark.parametrize("name", sorted(PLANS))
def test_plans_are_valid_run_configs(name):
    """Every size the demo runs is a valid config; pretraining holds windows out (the curve
    the pretraining figure labels with that fraction)."""
    from csbrain.configio import load_config
    from csbrain.demo.run import _overrides
    from csbrain.train import FinetuneConfig, PretrainConfig

    plan = PLANS[name]
    pre = load_config(PretrainConfig, None, _overrides(plan.model, plan.pretrain))
    assert 0 < pre.val_fraction < 1 and pre.select() == "auto"
    ft = load_config(FinetuneConfig, None, _overrides(plan.model, plan.finetune))
    assert ft.model_config == pre.model_config
