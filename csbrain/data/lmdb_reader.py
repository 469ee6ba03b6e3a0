"""Read existing CBraMod / CSBrain LMDB datasets (read-only, opened lazily per worker).

Their layout: an entry ``__keys__`` holds a pickled list of keys (pretraining) or a pickled
dict ``{"train": [...], "val": [...], "test": [...]}`` (downstream datasets); each key's value
is a pickled array ``(C, P, 200)`` (pretraining) or a dict ``{"sample": (C, P, 200),
"label": int}``. The released pretraining LMDBs hold model units already (µV / 100); the
released downstream scripts divide by 100 when loading, so their LMDBs hold µV: pass
``scale=0.01`` for those.

Security: values are Python pickles, which can run code when loaded. They are read with a
restricted unpickler (:func:`safe_loads`) that admits only numpy arrays and scalars, numbers,
strings, bytes, lists, tuples and dicts; any other object (``os.system``, a class) is refused
before it is built, with a ``ValueError`` naming the LMDB and the key.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["LMDBWindows", "safe_loads"]

#: The only globals a value may refer to: what pickled numpy arrays and scalars need.
_ALLOWED_GLOBALS = frozenset({
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # bytes in protocol-2 pickles
})


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed")


def safe_loads(data: bytes, what: str) -> Any:
    """Unpickle ``data`` admitting only arrays, numbers, strings, lists and dicts.

    Parameters
    ----------
    data : bytes
        A pickle.
    what : str
        Names the value in errors (e.g. ``"value of key 12 in LMDB 'x'"``).

    Raises
    ------
    ValueError
        The pickle refers to anything else (it could run code) or is malformed.
    """
    try:
        return _RestrictedUnpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError,
            TypeError) as err:
        raise ValueError(f"cannot read the {what}: {err}; values may hold only arrays, numbers, "
                         f"strings, lists and dicts (other pickled objects can run code)"
                         ) from None


_ENVS: dict[str, Any] = {}
_ENVS_PID = [os.getpid()]


def _open_env(path: str):
    """One read-only environment per path and process (LMDB allows one per process)."""
    import lmdb

    if _ENVS_PID[0] != os.getpid():  # forked: the parent's handles are not ours
        _ENVS.clear()
        _ENVS_PID[0] = os.getpid()
    key = os.path.realpath(path)
    if key not in _ENVS:
        _ENVS[key] = lmdb.open(path, readonly=True, lock=False, readahead=False, meminit=False,
                               subdir=os.path.isdir(path), max_readers=512)
    return _ENVS[key]


class LMDBWindows(Dataset):
    """A CBraMod/CSBrain LMDB as a dataset of ``(x, label)``.

    Parameters
    ----------
    path : path-like
        The LMDB folder (or file).
    split : str | None
        For a ``__keys__`` dict, which split (``"train"``, ``"val"``, ``"test"``); required then.
    scale : float
        Factor applied to every window (``0.01`` for LMDBs holding µV).

    Notes
    -----
    Items: ``x`` float32 tensor ``(C, P, 200)``, ``label`` int (-1 when the value has none).
    """

    def __init__(self, path: str | Path, *, split: str | None = None, scale: float = 1.0) -> None:
        self.path = str(Path(path))
        if not Path(self.path).exists():
            raise FileNotFoundError(f"LMDB {self.path!r} does not exist")
        self.scale = float(scale)
        with _open_env(self.path).begin(write=False) as txn:
            raw = txn.get(b"__keys__")
        if raw is None:
            raise ValueError(f"LMDB {self.path!r} has no '__keys__' entry; expected a CBraMod/"
                             f"CSBrain LMDB (pickled key list under '__keys__')")
        keys = safe_loads(raw, f"'__keys__' entry of LMDB {self.path!r}")
        if isinstance(keys, dict):
            if split is None or split not in keys:
                raise ValueError(f"LMDB {self.path!r} has splits {sorted(keys)}; pass split= "
                                 f"one of them (got {split!r})")
            keys = keys[split]
        elif split is not None:
            raise ValueError(f"LMDB {self.path!r} has no splits; got split={split!r}, "
                             f"expected None")
        self.keys: list[Any] = list(keys)
        self.split = split

    def __len__(self) -> int:
        return len(self.keys)

    def _txn_get(self, key: Any) -> bytes:
        k = key if isinstance(key, bytes) else str(key).encode()
        with _open_env(self.path).begin(write=False) as txn:
            value = txn.get(k)
        if value is None:
            raise KeyError(f"key {key!r} listed in __keys__ is missing from LMDB {self.path!r}")
        return value

    def __getitem__(self, index: int):
        key = self.keys[index]
        value = safe_loads(self._txn_get(key), f"value of key {key!r} in LMDB {self.path!r}")
        label = -1
        if isinstance(value, dict):
            if "sample" not in value:
                raise ValueError(f"LMDB value of {self.keys[index]!r} is a dict without "
                                 f"'sample'; has {sorted(value)}")
            label = int(np.asarray(value.get("label", -1)).reshape(-1)[0])
            value = value["sample"]
        x = np.asarray(value, dtype=np.float32)
        if x.ndim != 3:
            raise ValueError(f"LMDB value of {self.keys[index]!r} has shape {x.shape}; expected "
                             f"(C, P, 200)")
        if self.scale != 1.0:
            x = x * np.float32(self.scale)
        return torch.from_numpy(x), label
