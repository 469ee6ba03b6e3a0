"""Seeded splits: disjoint, grouped, reproducible; the data's own splits win."""

from __future__ import annotations

import numpy as np
import pytest

from csbrain.engine.splits import SplitConfig, holdout_indices, split_indices


def _groups(n=60, subjects=10, split=None):
    subject = np.array([f"s{i % subjects}" for i in range(n)], dtype=object)
    recording = np.array([f"s{i % subjects}_r{(i // subjects) % 2}" for i in range(n)],
                         dtype=object)
    return {"subject": subject, "recording": recording, "window": np.arange(n).astype(str),
            "split": np.array(split if split is not None else [""] * n, dtype=object)}


def test_seeded_disjoint_and_grouped_by_subject():
    g = _groups()
    a = split_indices(g, SplitConfig(seed=1))
    b = split_indices(g, SplitConfig(seed=1))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert sorted(np.concatenate(list(a.values())).tolist()) == list(range(60))
    subjects = {k: set(g["subject"][v]) for k, v in a.items()}
    assert not (subjects["train"] & subjects["val"]) and not (subjects["train"] & subjects["test"])
    assert len(subjects["test"]) == 2 and len(subjects["val"]) == 2   # 0.2 of 10 subjects
    c = split_indices(g, SplitConfig(seed=2))
    assert any(not np.array_equal(a[k], c[k]) for k in a)


def test_explicit_test_subject_and_validation_by_recording():
    g = _groups(subjects=2)
    s = split_indices(g, SplitConfig(by="subject", test=("s1",), val_by="recording",
                                     val_fraction=0.5))
    assert set(g["subject"][s["test"]]) == {"s1"}
    assert set(g["subject"][s["train"]]) == set(g["subject"][s["val"]]) == {"s0"}
    assert not set(g["recording"][s["train"]]) & set(g["recording"][s["val"]])
    with pytest.raises(ValueError, match=r"split.test=\['s9'\]: \['s9'\] are not subject ids"):
        split_indices(g, SplitConfig(test=("s9",)))


def test_the_data_split_labels_are_used():
    split = ["train"] * 40 + ["test"] * 20
    g = _groups(split=split)
    s = split_indices(g, SplitConfig(by="window", val_fraction=0.25))
    assert s["test"].tolist() == list(range(40, 60))
    assert len(s["val"]) == 10 and s["val"].max() < 40
    with pytest.raises(ValueError, match="split values \\['holdout'\\] are not understood"):
        split_indices(_groups(split=["holdout"] * 60), SplitConfig())
    s2 = split_indices(g, SplitConfig(use_store_splits=False))
    assert s2["test"].tolist() != list(range(40, 60))


def test_too_few_groups_is_a_clear_error():
    with pytest.raises(ValueError, match="cannot hold out 0.2 of 1 subject group"):
        split_indices(_groups(subjects=1), SplitConfig())
    with pytest.raises(ValueError, match="split by .subject. but the data have no subject id"):
        split_indices({**_groups(), "subject": np.array([""] * 30 + ["s"] * 30, dtype=object)},
                      SplitConfig())


def test_holdout_by_recording():
    g = _groups()["recording"]
    train, held = holdout_indices(g, 0.25, seed=0)
    assert not set(g[train]) & set(g[held]) and len(train) + len(held) == 60
    assert holdout_indices(g, 0.0, seed=0)[1].size == 0


def test_missing_subjects_fall_back_to_recordings():
    g = {**_groups(), "subject": np.array([""] * 60, dtype=object)}
    s = split_indices(g, SplitConfig())
    assert not set(g["recording"][s["train"]]) & set(g["recording"][s["test"]])


def test_split_by_window_with_overlapping_windows_warns():
    from csbrain.engine.splits import leak_warning

    overlapping = {"windows": {"length_s": 4.0, "stride_s": 2.0}}
    text = leak_warning(SplitConfig(by="window"), overlapping)
    assert text.startswith("split.by=window with overlapping windows (windows.stride_s=2 < "
                           "windows.length_s=4)") and "split by recording or subject" in text
    assert leak_warning(SplitConfig(by="recording", val_by="window"), overlapping).startswith(
        "split.val_by=window")
    assert leak_warning(SplitConfig(by="recording"), overlapping) is None
    assert leak_warning(SplitConfig(by="window"), {"windows": {"length_s": 4.0,
                                                               "stride_s": 4.0}}) is None
    assert leak_warning(SplitConfig(by="window"), {"windows": {"length_s": 4.0,
                                                               "stride_s": None}}) is None
