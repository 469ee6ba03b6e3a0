"""What runs and evaluations read: :class:`RunData`, windows plus the facts a run must record.

A run needs a :class:`~torch.utils.data.Dataset` of ``(x (C, P, 200) float32, label)`` items,
the montage of its channels, the preprocessing config that produced it (saved into the model
folder so that ``csbrain predict`` prepares new recordings identically), per-window labels and
groups (subject, recording, the store's official split) for seeded splits, and a fingerprint.

:func:`open_run_data` reads a window store (:mod:`csbrain.data.store`); :meth:`RunData.from_arrays`
wraps windows held in memory (e.g. :func:`csbrain.data.load_dataset`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from csbrain import units
from csbrain._checks import more
from csbrain.data.store import UNLABELLED

logger = logging.getLogger(__name__)

__all__ = ["RunData", "open_run_data", "labelled_indices"]


def labelled_indices(labels: np.ndarray) -> np.ndarray:
    """Indices of the labelled windows.

    Parameters
    ----------
    labels : ndarray, shape (n,) or (n, L)
        Integer class ids (:data:`csbrain.data.store.UNLABELLED`, -1, marks a window without
        label) or float targets (NaN marks one); for sequences of ``L`` windows, a sequence
        is labelled when one of its windows is.

    Returns
    -------
    ndarray of int64, shape (k,)
    """
    labels = np.asarray(labels)
    known = labels != UNLABELLED if labels.dtype.kind in "iu" else np.isfinite(labels)
    if known.ndim > 1:                                  # sequences: any labelled window
        known = known.reshape(len(labels), -1).any(axis=1)
    return np.flatnonzero(known)


@dataclass
class RunData:
    """Windows for a run.

    Attributes
    ----------
    dataset : Dataset
        Items ``(x, label)``: ``x`` float32 ``(C, P, 200)`` in model units, label int / float.
    montage : csbrain.montage.Montage
    n_patches : int
        Patches per window ``P``.
    labels : ndarray, shape (n,)
        Per-window labels (int, -1 unlabelled; or float for regression, NaN unlabelled);
        :func:`labelled_indices` picks the labelled ones.
    groups : dict of str to ndarray of str, shape (n,)
        ``subject``, ``recording``, ``window`` (index) and ``split`` ("" when unknown).
    prep_config : dict | None
        The :class:`~csbrain.data.prepconfig.PrepConfig` (as a dict) that made the windows.
    label_names : list of str
    source : str
        Where the windows come from (a store path, or ``"memory"``).
    fingerprint : dict
        Identifies the data: ``source``, ``n_windows``, ``sha256`` (and the store's
        ``config_sha256``).
    """

    dataset: Dataset
    montage: Any
    n_patches: int
    labels: np.ndarray
    groups: dict[str, np.ndarray]
    prep_config: dict[str, Any] | None = None
    label_names: list[str] = field(default_factory=list)
    source: str = "memory"
    fingerprint: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def from_arrays(cls, x: np.ndarray, y: np.ndarray, montage: Any, *,
                    subject: np.ndarray | None = None, recording: np.ndarray | None = None,
                    split: np.ndarray | None = None, prep_config: Any = None,
                    label_names: list[str] | None = None) -> RunData:
        """Wrap in-memory windows.

        Parameters
        ----------
        x : ndarray, shape (n, C, P, 200)
            Model units.
        y : ndarray, shape (n,)
            Labels (int class ids, -1 unlabelled; or floats for regression).
        montage : Montage | preset name | list of channel names
        subject, recording, split : ndarray of str, shape (n,) | None
        prep_config : PrepConfig | dict | None
        label_names : list of str | None
        """
        from csbrain.configio import to_dict
        from csbrain.montage import resolve_montage

        x = np.ascontiguousarray(x, dtype=np.float32)
        y = np.asarray(y)
        if x.ndim != 4 or x.shape[-1] != units.PATCH_SIZE:
            raise ValueError(f"x has shape {x.shape}; expected (n, channels, patches, "
                             f"{units.PATCH_SIZE})")
        if len(y) != len(x):
            raise ValueError(f"y has {len(y)} labels for {len(x)} windows")
        montage = resolve_montage(montage)
        if montage.n_chans != x.shape[1]:
            raise ValueError(f"x has {x.shape[1]} channels but the montage has {montage.n_chans}")
        n = len(x)
        groups = {"window": np.arange(n).astype(str)}
        for name, values in (("subject", subject), ("recording", recording), ("split", split)):
            groups[name] = (np.full(n, "", dtype=object) if values is None
                            else np.asarray(values).astype(str))
            if len(groups[name]) != n:
                raise ValueError(f"{name} has {len(groups[name])} entries for {n} windows")
        yt = torch.from_numpy(y.astype(np.float32 if y.dtype.kind == "f" else np.int64))
        h = hashlib.sha256(x.tobytes())
        h.update(np.ascontiguousarray(y).tobytes())
        prep = to_dict(prep_config) if prep_config is not None and not isinstance(
            prep_config, dict) else prep_config
        return cls(dataset=TensorDataset(torch.from_numpy(x), yt), montage=montage,
                   n_patches=x.shape[2], labels=y, groups=groups, prep_config=prep,
                   label_names=list(label_names or []), source="memory",
                   fingerprint={"source": "memory", "n_windows": n, "sha256": h.hexdigest()})

    @classmethod
    def from_windows(cls, windows: Any) -> RunData:
        """Wrap an object with ``x``, ``y``, ``montage`` and optionally ``subject``,
        ``recording``, ``split``, ``config`` (PrepConfig), ``label_names``, e.g. the
        :class:`csbrain.data.sources.LabelledWindows` of :func:`csbrain.data.load_dataset`."""
        return cls.from_arrays(windows.x, windows.y, windows.montage,
                               subject=getattr(windows, "subject", None),
                               recording=getattr(windows, "recording", None),
                               split=getattr(windows, "split", None),
                               prep_config=getattr(windows, "config", None),
                               label_names=getattr(windows, "label_names", None))


def _store_fingerprint(path: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "n_windows", "source_sha256", "labels", "channels", "split", "subject")
    content = [{k: e.get(k) for k in keys} for e in manifest["recordings"]]
    text = json.dumps({"config_sha256": manifest.get("config_sha256"), "recordings": content},
                      sort_keys=True)
    return {"source": str(path), "config_sha256": manifest.get("config_sha256"),
            "n_recordings": manifest.get("n_recordings"), "n_windows": manifest.get("n_windows"),
            "sha256": hashlib.sha256(text.encode()).hexdigest()}


def open_run_data(store: str | Path | RunData) -> RunData:
    """Open a window store (or pass a :class:`RunData` through).

    Parameters
    ----------
    store : path-like | RunData
        A folder made by ``csbrain prepare`` / :func:`csbrain.data.prepare`.

    Returns
    -------
    RunData

    Raises
    ------
    ValueError
        The store holds no window, or recordings with different channel lists.
    """
    if isinstance(store, RunData):
        return store
    from csbrain.data.store import WindowStore
    from csbrain.data.torch_dataset import WindowDataset

    path = Path(store)
    if not path.exists():
        raise FileNotFoundError(f"data store {str(path)!r} does not exist; create it with "
                                f"`csbrain prepare SOURCE --out {path}`")
    ws = WindowStore(path)
    ds = WindowDataset(ws)
    if len(ds) == 0:
        skipped = ws.skipped()
        why = (f"; {len(skipped)} recording(s) were skipped: " + more(
            (f"{k} [{v.get('reason')}]" for k, v in skipped.items()), 5)) if skipped else ""
        raise ValueError(f"data store {str(path)!r} holds no window{why}; prepare recordings "
                         f"into it first (`csbrain prepare SOURCE --out {path}`)")
    montage = ds.montage
    if montage is None:
        chans = sorted({tuple(e["channels"]) for e in ds.entries})
        raise ValueError(f"data store {str(path)!r} mixes {len(chans)} channel lists; training "
                         f"needs one (prepare with channels.pick set)")
    entries = ds.entries
    counts = np.array([e["n_windows"] for e in entries])
    rec_of = ds.recording_of

    def per_window(key: str) -> np.ndarray:
        return np.array([str(e.get(key) or "") for e in entries], dtype=object)[rec_of]

    groups = {"subject": per_window("subject"), "recording": per_window("id"),
              "split": per_window("split"), "window": np.arange(int(counts.sum())).astype(str)}
    names = next((e.get("label_names") for e in entries if e.get("label_names")), []) or []
    manifest = ws.manifest()
    return RunData(dataset=ds, montage=montage, n_patches=int(entries[0]["n_patches"]),
                   labels=ds.labels, groups=groups, prep_config=ws.config,
                   label_names=list(names), source=str(path),
                   fingerprint=_store_fingerprint(path, manifest))
