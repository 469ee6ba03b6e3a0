"""scikit-learn (and MOABB) estimators around CSBrain (the ``[sklearn]`` extra).

>>> from sklearn.model_selection import cross_val_score
>>> from csbrain.sklearn import CSBrainClassifier
>>> clf = CSBrainClassifier("CSBrain.pth", sfreq=250, ch_names=names, epochs=10)
>>> cross_val_score(clf, X, y, cv=5)       # X (n_trials, n_channels, n_times) in volts

``CSBrainClassifier`` / ``CSBrainRegressor`` fine-tune; ``CSBrainEmbedder`` is a transformer of
frozen features. They take arrays with ``sfreq`` and ``ch_names``, or ``mne.Epochs``.
"""

from __future__ import annotations

from csbrain.sklearn._input import trial_windows
from csbrain.sklearn.estimators import CSBrainClassifier, CSBrainEmbedder, CSBrainRegressor

__all__ = ["CSBrainClassifier", "CSBrainRegressor", "CSBrainEmbedder", "trial_windows"]
