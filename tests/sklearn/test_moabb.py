"""A MOABB evaluation of a pipeline holding CSBrainClassifier, offline on MOABB's own fake
dataset (tiny model, few epochs): a score for every subject, from arrays (MOABB scales them to
µV) and from mne.Epochs (volts, rate and channel names read from them)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("moabb")

SUBJECTS = 3
CHANNELS = ("C3", "Cz", "C4")


@pytest.mark.parametrize("return_epochs", [False, True])
def test_moabb_cross_subject_evaluation_scores_every_subject(tmp_path, monkeypatch,
                                                            return_epochs):
    monkeypatch.setenv("_MNE_FAKE_HOME_DIR", str(tmp_path))   # MNE/MOABB config stays here
    from moabb.datasets.fake import FakeDataset
    from moabb.evaluations import CrossSubjectEvaluation
    from moabb.paradigms import LeftRightImagery
    from sklearn.pipeline import make_pipeline

    from csbrain.sklearn import CSBrainClassifier

    dataset = FakeDataset(event_list=("left_hand", "right_hand"), n_subjects=SUBJECTS,
                          n_sessions=1, n_runs=1, n_events=24, duration=100, sfreq=128,
                          channels=CHANNELS, paradigm="imagery", seed=0)
    small = dict(preset="tiny", n_layers=1, epochs=2, batch_size=16, lr=1e-3, random_state=0)
    if return_epochs:                              # volts, rate and names from the Epochs
        clf = CSBrainClassifier(**small)
    else:
        assert dataset.unit_factor == 1e6          # MOABB scales its arrays to µV
        clf = CSBrainClassifier(sfreq=dataset.sfreq, ch_names=list(CHANNELS), unit="uV",
                                **small)
    evaluation = CrossSubjectEvaluation(paradigm=LeftRightImagery(), datasets=[dataset],
                                        overwrite=True, hdf5_path=str(tmp_path / "results"),
                                        return_epochs=return_epochs)
    results = evaluation.process({"csbrain": make_pipeline(clf)})
    print(f"\nMOABB CrossSubjectEvaluation on FakeDataset, return_epochs={return_epochs} "
          f"(csbrain tiny, 1 layer, 2 epochs; the fake data are noise: chance is 0.5):")
    print(results[["subject", "session", "score", "samples"]].to_string(index=False))
    assert sorted(results["subject"].astype(int).unique()) == list(range(1, SUBJECTS + 1))
    assert len(results) == SUBJECTS and np.all(np.isfinite(results["score"]))
    assert np.all((results["score"] >= 0) & (results["score"] <= 1))
