"""The scikit-learn estimators: sklearn's API conventions, input contract (rate, unit, Epochs),
seeded determinism, pipelines and cross-validation, init from a folder or the hub cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.utils import estimator_checks as checks  # noqa: E402

from csbrain._checks import CSBrainError  # noqa: E402
from csbrain.sklearn import (  # noqa: E402
    CSBrainClassifier,
    CSBrainEmbedder,
    CSBrainRegressor,
    trial_windows,
)

NAMES = ["C3", "Cz", "C4"]
SFREQ = 128.0                                   # not 200 Hz: the estimators resample
TINY = dict(preset="tiny", n_layers=1, epochs=2, batch_size=8, lr=1e-3)


def trials(n: int = 24, *, seconds: float = 2.0, seed: int = 0, n_classes: int = 2):
    """Trials in volts at 128 Hz whose class sets the amplitude of a 10 Hz wave on C3."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    t = np.arange(int(seconds * SFREQ)) / SFREQ
    x = rng.normal(scale=10e-6, size=(n, len(NAMES), len(t)))
    x[:, 0] += (10e-6 * (1 + y))[:, None] * np.sin(2 * np.pi * 10 * t)
    return x, y


def classifier(**kwargs) -> CSBrainClassifier:
    return CSBrainClassifier(sfreq=SFREQ, ch_names=NAMES, **{**TINY, **kwargs})


# scikit-learn's own checks that do not fit on 2-D tabular data (the estimators take
# (n_trials, n_channels, n_times) trials, so check_estimator skips the rest)
API_CHECKS = ["check_estimator_cloneable", "check_estimator_tags_renamed",
              "check_valid_tag_types", "check_estimator_repr", "check_no_attributes_set_in_init",
              "check_estimators_unfitted", "check_do_not_raise_errors_in_init_or_set_params",
              "check_mixin_order", "check_parameters_default_constructible",
              "check_get_params_invariance", "check_set_params"]


@pytest.mark.parametrize("check", API_CHECKS)
@pytest.mark.parametrize("cls", [CSBrainClassifier, CSBrainRegressor, CSBrainEmbedder])
def test_sklearn_api_checks(cls, check):
    est = cls()
    getattr(checks, check)(cls.__name__, est)


def test_params_round_trip_and_clone():
    clf = classifier(method="probe", options={"label_smoothing": 0.0})
    params = clf.get_params()
    assert params["method"] == "probe" and params["sfreq"] == SFREQ and params["n_layers"] == 1
    twin = clone(clf)
    assert twin is not clf and twin.get_params() == params
    clf.set_params(epochs=1, head="attention")
    assert clf.epochs == 1 and clf.head == "attention" and twin.epochs == 2


def test_classifier_fit_predict_proba_decision_score():
    x, y = trials(n_classes=3)
    labels = np.array(["left", "right", "feet"])[y]
    clf = classifier().fit(x, labels)
    assert clf.fit(x, labels) is clf
    assert list(clf.classes_) == ["feet", "left", "right"] and clf.task_ == "multiclass"
    assert clf.ch_names_ == NAMES and clf.n_patches_ == 2        # 256 samples -> 400 at 200 Hz
    proba = clf.predict_proba(x[:5])
    assert proba.shape == (5, 3) and np.allclose(proba.sum(axis=1), 1.0)
    assert clf.decision_function(x[:5]).shape == (5, 3)
    assert set(clf.predict(x)) <= set(labels)
    assert 0.0 <= clf.score(x, labels) <= 1.0
    assert np.array_equal(clf.predict(x[:5]), clf.classes_[proba.argmax(axis=1)])


def test_binary_classifier_has_one_logit():
    x, y = trials()
    clf = classifier(head="mean_bn").fit(x, y)
    assert clf.task_ == "binary" and clf.model_.n_outputs == 1
    logit, proba = clf.decision_function(x), clf.predict_proba(x)
    assert logit.shape == (24,) and proba.shape == (24, 2)
    np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-logit)), rtol=1e-5)


def test_same_seed_same_model_other_seed_other_model():
    x, y = trials()
    a = classifier(random_state=3).fit(x, y).predict_proba(x)
    b = classifier(random_state=3).fit(x, y).predict_proba(x)
    c = classifier(random_state=4).fit(x, y).predict_proba(x)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_pipeline_and_cross_val_score():
    x, y = trials(n=20)
    scores = cross_val_score(make_pipeline(classifier(epochs=1)), x, y, cv=2)
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 1))


def test_epochs_input_matches_array_input():
    import mne

    x, y = trials()
    info = mne.create_info(NAMES + ["STI"], SFREQ, ["eeg"] * 3 + ["stim"])
    data = np.concatenate([x, np.zeros((len(x), 1, x.shape[2]))], axis=1)
    epochs = mne.EpochsArray(data, info, verbose="error")
    from_epochs = CSBrainClassifier(**TINY).fit(epochs, y)
    from_arrays = classifier().fit(x, y)
    assert from_epochs.ch_names_ == NAMES                       # the stim channel is left out
    np.testing.assert_allclose(from_epochs.predict_proba(epochs), from_arrays.predict_proba(x),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(CSBrainError, match="differs from the Epochs' rate"):
        CSBrainClassifier(sfreq=250.0, **TINY).fit(epochs, y)


def eeg(*shape: int) -> np.ndarray:
    """Noise at an EEG amplitude, in volts (10 µV)."""
    return np.random.default_rng(0).normal(scale=10e-6, size=shape)


def test_trial_windows_resample_and_convert_units():
    t = np.arange(100) / 100.0                                   # 1 s at 100 Hz
    x = 50e-6 * np.sin(2 * np.pi * 5 * t)[None, None].repeat(2, axis=1)
    tw = trial_windows(x, sfreq=100.0, ch_names=["C3", "C4"], unit="V")
    assert tw.x.shape == (1, 2, 1, 200) and tw.x.dtype == np.float32 and tw.dropped_s == 0
    assert tw.montage.channels == ("C3", "C4")
    expected = 0.5 * np.sin(2 * np.pi * 5 * np.arange(200) / 200.0)   # 50 µV = 0.5 model units
    np.testing.assert_allclose(tw.x[0, 0, 0, 20:180], expected[20:180], atol=0.02)
    same = trial_windows(x * 1e6, sfreq=100.0, ch_names=["C3", "C4"], unit="uV")
    np.testing.assert_allclose(same.x, tw.x, rtol=1e-5, atol=1e-7)
    cut = trial_windows(eeg(2, 2, 130), sfreq=100.0, ch_names=["C3", "C4"])
    assert cut.x.shape == (2, 2, 1, 200) and cut.dropped_s == pytest.approx(0.3)


@pytest.mark.parametrize("kwargs, match", [
    (dict(x=eeg(4, 3, 256), sfreq=None), r"sfreq=None: an array needs sfreq="),
    (dict(x=eeg(4, 3, 256), ch_names=None), r"ch_names has None name\(s\) but data has 3"),
    (dict(x=eeg(4, 256)), r"X has shape \(4, 256\); expected trials \(n_trials, n_channels"),
    (dict(x=eeg(4, 2, 256)), r"ch_names has 3 name\(s\) but data has 2 channels"),
    (dict(x=np.full((4, 3, 256), np.nan)), r"NaN or Inf values"),
    (dict(x=eeg(4, 3, 100)), r"shorter than one window of 1 s"),
    (dict(x=eeg(4, 3, 256) * 1e6), r"outside the .* µV plausible for EEG .*set unit="),
    (dict(x=eeg(4, 3, 256), unit="furlong"), r"unit='furlong' is not a known"),
])
def test_bad_input_is_one_clear_line(kwargs, match):
    x = kwargs.pop("x")
    args = {"sfreq": SFREQ, "ch_names": NAMES, "unit": "V", **kwargs}
    with pytest.raises(ValueError, match=match) as err:
        trial_windows(x, **args)
    assert "\n" not in str(err.value)
    if "plausible" in match:                       # what the message says to set exists
        assert "allow_implausible=True" in str(err.value)
        assert trial_windows(x, **args, allow_implausible=True).x.shape == (4, 3, 2, 200)


def test_predict_checks_channels_and_length_against_fit():
    x, y = trials()
    clf = classifier(epochs=1).fit(x, y)
    with pytest.raises(CSBrainError, match=r"X has channels \['C4', 'Cz', 'C3'\] but the "
                                           r"estimator was fitted on \['C3', 'Cz', 'C4'\]"):
        clf.set_params(ch_names=NAMES[::-1]).predict(x)
    with pytest.raises(CSBrainError, match="make 1 patches of 1 s at 200 Hz but the estimator "
                                           "was fitted on 2"):
        clf.set_params(ch_names=NAMES).predict(x[:, :, :128])


def test_regressor_learns_in_target_units():
    x, y = trials(n=24)
    target = 50.0 + 10.0 * y                                     # far from 0: standardised inside
    reg = CSBrainRegressor(sfreq=SFREQ, ch_names=NAMES, **{**TINY, "epochs": 3}).fit(x, target)
    pred = reg.predict(x)
    assert pred.shape == (24,) and reg.task_ == "regression"
    assert reg.y_mean_ == pytest.approx(55.0) and abs(pred.mean() - 55.0) < 10.0
    assert np.isfinite(reg.score(x, target))


def test_embedder_in_a_probe_pipeline_and_init_from_folder(tmp_path):
    from csbrain.config import CSBrainConfig
    from csbrain.models import CSBrainForPretraining

    x, y = trials()
    emb = CSBrainEmbedder(sfreq=SFREQ, ch_names=NAMES, preset="tiny", n_layers=1)
    feats = emb.fit_transform(x)
    assert feats.shape == (24, 40) and feats.dtype == np.float32
    pipe = make_pipeline(clone(emb), LogisticRegression(max_iter=200)).fit(x, y)
    assert pipe.predict(x).shape == (24,)
    tokens = CSBrainEmbedder(sfreq=SFREQ, ch_names=NAMES, preset="tiny", n_layers=1,
                             pooled=False).fit_transform(x)
    assert tokens.shape == (24, 3 * 2 * 40)
    # init: a saved model's backbone, moved to the data's channels
    torch.manual_seed(1)
    saved = CSBrainForPretraining("TUEG", CSBrainConfig.from_preset("tiny", n_layers=1))
    saved.save_pretrained(tmp_path / "pre")
    got = CSBrainEmbedder(str(tmp_path / "pre"), sfreq=SFREQ, ch_names=NAMES).fit(x)
    saved.backbone.set_montage(NAMES)
    windows = torch.from_numpy(trial_windows(x, sfreq=SFREQ, ch_names=NAMES).x)
    with torch.no_grad():
        ref = saved.backbone.eval()(windows).mean(dim=(1, 2)).numpy()
    np.testing.assert_allclose(got.transform(x), ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(CSBrainError, match="apply without init"):
        CSBrainEmbedder(str(tmp_path / "pre"), sfreq=SFREQ, ch_names=NAMES, d_model=80).fit(x)


def test_classifier_init_from_a_folder_probe_keeps_the_backbone(tmp_path):
    from csbrain.config import CSBrainConfig
    from csbrain.models import CSBrain

    torch.manual_seed(2)
    pre = CSBrain("TUEG", CSBrainConfig.from_preset("tiny", n_layers=1))
    pre.save_pretrained(tmp_path / "pre")
    x, y = trials()
    clf = CSBrainClassifier(str(tmp_path / "pre"), sfreq=SFREQ, ch_names=NAMES, method="probe",
                            epochs=2, batch_size=8, lr=1e-3).fit(x, y)
    got = clf.model_.backbone.state_dict()
    for key, value in pre.state_dict().items():
        torch.testing.assert_close(got[key], value, rtol=0, atol=0)
    assert clf.model_.backbone.montage.channels == tuple(NAMES)
    with pytest.raises(ValueError, match="conflict with the --init checkpoint"):
        CSBrainClassifier(str(tmp_path / "pre"), sfreq=SFREQ, ch_names=NAMES, d_model=80,
                          epochs=1).fit(x, y)
