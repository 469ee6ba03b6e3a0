"""Small data and configs shared by the training, evaluation and CLI tests (all tiny: a few
channels, two 1-s patches, a one-layer d_model-40 model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CHANNELS = ["O1", "Fp1", "C3", "T7"]  # input order differs from the sorted (region) order
TINY = ["model.preset=tiny", "model.n_layers=1", "progress=false"]


def arrays(n: int = 32, *, n_patches: int = 2, seed: int = 0, signal: float = 1.0):
    """Windows ``(n, 4, P, 200)`` whose class (0/1) sets the sign of a 10 Hz wave on C3."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    t = np.arange(n_patches * 200) / 200.0
    x = rng.normal(scale=0.2, size=(n, len(CHANNELS), n_patches * 200))
    x[:, 2] += signal * np.where(y[:, None] == 1, 1.0, -1.0) * np.sin(2 * np.pi * 10 * t)
    return x.reshape(n, len(CHANNELS), n_patches, 200).astype(np.float32), y


def run_data(n: int = 32, *, n_groups: int = 8, labels: bool = True, seed: int = 0):
    from csbrain.engine.rundata import RunData

    x, y = arrays(n, seed=seed)
    if not labels:
        y = np.full(n, -1)
    groups = [f"r{(i // 2) % n_groups}" for i in range(n)]  # both classes in every group
    return RunData.from_arrays(x, y, CHANNELS, recording=groups, subject=groups)


def finetune_cfg(*overrides: str):
    from csbrain.train import FinetuneConfig, load_run_config

    return load_run_config(FinetuneConfig, None, [*TINY, "head=mean", "batch_size=8",
                                                  "split.by=recording", *overrides])


def pretrain_cfg(*overrides: str):
    from csbrain.train import PretrainConfig, load_run_config

    return load_run_config(PretrainConfig, None, [*TINY, "batch_size=8", *overrides])


def write_edf(path: Path, *, seconds: float = 10.0, sfreq: float = 250.0, seed: int = 0,
              channels=CHANNELS) -> Path:
    """A short EEG recording in EDF (µV-scale noise + alpha) written with MNE."""
    import mne

    rng = np.random.default_rng(seed)
    n = int(seconds * sfreq)
    t = np.arange(n) / sfreq
    data = rng.normal(scale=10e-6, size=(len(channels), n)) + 20e-6 * np.sin(2 * np.pi * 10 * t)
    raw = mne.io.RawArray(data, mne.create_info(list(channels), sfreq, "eeg"), verbose="error")
    mne.export.export_raw(str(path), raw, fmt="edf", overwrite=True, verbose="error")
    return path


def prep_config(**sections):
    """A PrepConfig for the test recordings: 2-s windows, labels from the file name."""
    from csbrain.configio import load_config
    from csbrain.data.prepconfig import PrepConfig

    defaults = {"windows.length_s": 2.0, "filter.l_freq": 0.5, "filter.h_freq": 40.0,
                "labels.mode": "recording", "labels.recording": {"*task-a*": 0, "*task-b*": 1},
                "labels.names": ["a", "b"], "reject.max_abs": None}
    defaults.update(sections)
    return load_config(PrepConfig, None, defaults)


def make_store(root: Path, *, n_recordings: int = 4, labelled: bool = True, **prep) -> Path:
    """EDF files ``sub-K_task-{a,b}.edf`` prepared into a window store ``root/store``."""
    from csbrain.data import find_recordings, prepare

    src = root / "edf"
    src.mkdir(parents=True, exist_ok=True)
    for k in range(n_recordings):
        write_edf(src / f"sub-{k // 2}_task-{'ab'[k % 2]}.edf", seed=k)
    cfg = prep_config(**({} if labelled else {"labels.mode": "none"}), **prep)
    prepare(find_recordings([src]), root / "store", cfg)
    return root / "store"
