"""Small recordings that the data tests write themselves (MNE export, raw.save, .ts text)."""

from __future__ import annotations

import numpy as np
import pytest

TEN_TWENTY = ["Fp1", "Fp2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2", "F7", "F8", "T3",
              "T4", "T5", "T6", "Fz", "Cz", "Pz"]


def make_raw(n_ch: int = 19, sfreq: float = 250.0, seconds: float = 40.0, seed: int = 0,
             names: list[str] | None = None, amp_uv: float = 10.0, annotations=None):
    """A RawArray of band-limited noise (volts) with 10-20 names."""
    import mne

    rng = np.random.default_rng(seed)
    names = names or TEN_TWENTY[:n_ch]
    n = int(round(seconds * sfreq))
    x = rng.standard_normal((len(names), n))
    x = np.cumsum(x, axis=1)
    x -= np.linspace(x[:, :1], x[:, -1:], n, axis=1).reshape(len(names), n)
    x = x / x.std(axis=1, keepdims=True) * amp_uv * 1e-6
    raw = mne.io.RawArray(x, mne.create_info(list(names), sfreq, "eeg"), verbose="error")
    if annotations:
        raw.set_annotations(mne.Annotations(*zip(*annotations)))
    return raw


def write(raw, path) -> str:
    """Write ``raw`` to ``path`` in the format of its suffix; return the path as str."""
    import mne

    path = str(path)
    if path.endswith(".fif"):
        raw.save(path, overwrite=True, verbose="error")
    else:
        mne.export.export_raw(path, raw, overwrite=True, verbose="error")
    return path


def write_ts(path, data: np.ndarray, labels: list[str], classes=("left", "right")) -> str:
    """Write trials ``(n, C, T)`` as a UEA ``.ts`` file."""
    lines = ["# test file", "@problemName Test", "@timeStamps false", "@missing false",
             "@univariate false", f"@dimensions {data.shape[1]}", "@equalLength true",
             f"@seriesLength {data.shape[2]}", f"@classLabel true {' '.join(classes)}", "@data"]
    for trial, lab in zip(data, labels):
        lines.append(":".join(",".join(f"{v:.6g}" for v in ch) for ch in trial) + f":{lab}")
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture
def edf_dir(tmp_path):
    """A folder with 3 EDF recordings (19 ch, 250 Hz, 40 s)."""
    d = tmp_path / "edf"
    d.mkdir()
    for i in range(3):
        write(make_raw(seed=i), d / f"rec{i}.edf")
    return d
