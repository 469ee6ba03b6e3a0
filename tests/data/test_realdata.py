"""Real recordings from the package index (pinned wheels): Face13 and FingerMovements.

They are fetched once into ``$CSBRAIN_DATA`` (default ``~/.cache/csbrain``); the tests skip,
saying why, only when the package index cannot be reached.
"""

from __future__ import annotations

import numpy as np
import pytest

from csbrain.data import sources
from csbrain.data.pipeline import prepare
from csbrain.data.store import open_store
from csbrain.data.torch_dataset import WindowDataset

pytestmark = pytest.mark.realdata


def _fetch_or_skip(name: str) -> None:
    try:
        sources.fetch(name)
    except sources.IndexUnreachableError as err:
        pytest.skip(f"package index unreachable, real recordings not available: {err}")


def test_face13_store_counts_labels_and_decodability(tmp_path):
    _fetch_or_skip("face13")
    recs, defaults = sources.resolve_sources(["face13"])
    cfg = sources.dataset_config("face13")
    summary = prepare(recs, tmp_path / "face13", cfg)
    assert summary.skipped == {} and summary.prepared == 2
    store = open_store(tmp_path / "face13")
    e1, e2 = (store.entry(r) for r in store.recordings())
    # 396 face + 395 house events (s01), 400 + 400 (s02); BAD_* segments and one event at
    # the very end are rejected, and counted
    assert (e1["n_candidates"], e2["n_candidates"]) == (791, 800)
    assert e1["rejected"]["bad_annotation"] > 0 and e1["rejected"]["out_of_bounds"] == 1
    for e in (e1, e2):
        assert e["n_windows"] == e["n_candidates"] - sum(e["rejected"].values())
        assert e["n_windows"] > 750 and len(e["channels"]) == 128
        face, house = e["labels"]["0"], e["labels"]["1"]
        assert abs(face - house) / (face + house) < 0.05
        assert e["subject"] in ("s01", "s02") and e["source_sfreq"] == 256.0
        assert sorted(set(e["regions"])) == [0, 1, 2, 3, 4]
    ds = WindowDataset(store.path, where=lambda e: e["subject"] == "s02")
    x = np.stack([ds[i][0].numpy() for i in range(len(ds))])
    y = ds.labels
    assert x.shape[1:] == (128, 1, 200)
    # sanity floor: faces vs houses decodable within subject from 10-sample-bin ERPs
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    feats = x.reshape(len(x), 128, 20, 10).mean(-1).reshape(len(x), -1)
    acc = cross_val_score(LogisticRegression(C=0.01, max_iter=300), feats, y, cv=4).mean()
    assert acc > 0.7


def test_finger_movements_official_split(tmp_path):
    _fetch_or_skip("finger-movements")
    d = sources.load_dataset("finger-movements")
    assert d.x.shape == (416, 28, 1, 200) and d.x.dtype == np.float32
    train, test = d.split == "train", d.split == "test"
    assert (train.sum(), test.sum()) == (316, 100)
    assert np.bincount(d.y[train]).tolist() == [159, 157]
    assert np.bincount(d.y[test]).tolist() == [49, 51]
    assert d.label_names == ["left", "right"] and d.ch_names[8] == "FCz"
    assert (d.x[..., 100:] == 0).all()  # 0.5 s at 200 Hz, zero-padded to one patch
    assert 0.02 < np.abs(d.x[..., :100]).mean() < 0.5  # µV / 100, trial means removed
    summary = prepare(sources.resolve_sources(["finger-movements"])[0], tmp_path / "fm",
                      d.config)
    assert summary.store_windows == 416
    assert {e["split"]: e["n_windows"] for e in open_store(tmp_path / "fm").manifest()[
        "recordings"]} == {"train": 316, "test": 100}
