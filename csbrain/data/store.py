"""The window store: prepared windows in Zarr v3, one group per recording, plus a manifest.

Layout of a store folder ``STORE/``::

    csbrain-store.json     identity: format, version, PrepConfig, its sha256, 200 Hz, units
    data.zarr/             a plain Zarr v3 hierarchy (root attributes: the same identity)
      <rec_id>/            one group per recording; attributes = its manifest entry
        x                  (n, C, P, 200) float32|float16; chunk = 1 window, shard = S windows
        y                  (n,) int64 labels (-1: unlabelled)
        start              (n,) int64 window start sample at 200 Hz (trial index for trials)
    channels.json          the store's channel list, fixed by the first recording committed
    skipped/<rec_id>.json  recordings that could not be prepared (reason code, message)
    manifest.json          derived: identity + every entry + skips (rebuilt after each run)
    staging/               groups being written (one folder per writer, deleted on rerun)
    lock                   pid of the preparation running on this store

A recording is written into ``staging/`` by its worker and then committed by one atomic
``os.rename`` into ``data.zarr/``, so a group in ``data.zarr`` is always complete: killing a
preparation at any moment leaves only staging folders, which the next run deletes.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from csbrain import units
from csbrain._checks import more
from csbrain._io import atomic_write_text
from csbrain.configio import config_diff, to_dict
from csbrain.data.prepconfig import PrepConfig, StoreConfig, config_sha256

logger = logging.getLogger(__name__)

__all__ = ["WindowStore", "StoreError", "open_store", "write_windows", "store_from_arrays",
           "STORE_FORMAT",
           "STORE_VERSION", "UNITS", "UNLABELLED"]

STORE_FORMAT = "csbrain-window-store"
STORE_VERSION = 1
#: Unit of the stored values, as written in the manifest.
UNITS = f"{units.MICROVOLTS_PER_UNIT:g} uV"
#: The integer label of a window without one (``y`` of a recording prepared unlabelled).
UNLABELLED = -1
_IDENTITY = "csbrain-store.json"


class StoreError(ValueError):
    """A store path cannot be used (other preprocessing parameters, not a store, locked)."""


def _codecs(cfg: StoreConfig):
    from zarr.codecs import BloscCodec, ZstdCodec

    if cfg.compression == "none":
        return None
    if cfg.compression == "zstd":
        return ZstdCodec(level=cfg.clevel)
    cname = cfg.compression.split("-", 1)[1]
    return BloscCodec(cname=cname, clevel=cfg.clevel, shuffle="shuffle")


def write_windows(group_path: str | Path, x: np.ndarray, y: np.ndarray, start: np.ndarray,
                  entry: dict[str, Any], cfg: StoreConfig) -> None:
    """Write one recording's windows as a Zarr group (attributes written last).

    Parameters
    ----------
    group_path : path-like
        New folder (a staging folder).
    x : ndarray, shape (n, C, P, 200)
        Model units.
    y, start : ndarray, shape (n,)
    entry : dict
        Manifest entry (JSON-ready), stored as the group's attributes.
    cfg : StoreConfig
    """
    import zarr

    x = np.asarray(x)
    if cfg.dtype == "float16" and x.size and np.abs(x).max() > np.finfo(np.float16).max:
        raise ValueError(f"values up to {np.abs(x).max():.3g} model units do not fit in "
                         f"float16 (max 65504); use store.dtype=float32")
    n, c, p, s = x.shape
    group = zarr.open_group(str(group_path), mode="w")
    arr = group.create_array("x", shape=x.shape, dtype=cfg.dtype, chunks=(1, c, p, s),
                             shards=(cfg.windows_per_shard, c, p, s),
                             compressors=_codecs(cfg), fill_value=0.0)
    if n:
        arr[:] = x.astype(cfg.dtype, copy=False)
    for name, values in (("y", y), ("start", start)):
        a = group.create_array(name, shape=(n,), dtype="int64", chunks=(max(n, 1),),
                               fill_value=-1)
        if n:
            a[:] = np.asarray(values, dtype=np.int64)
    group.attrs.update(entry)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WindowStore:
    """A window store folder (see the module docstring for the layout).

    Parameters
    ----------
    path : path-like
        An existing store (use :meth:`create` to make one).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        ident = self.path / _IDENTITY
        if not ident.is_file():
            raise StoreError(f"{str(self.path)!r} is not a csbrain window store (no {_IDENTITY}); "
                             f"create one with `csbrain prepare SOURCE --out {self.path}`")
        self.identity: dict[str, Any] = json.loads(ident.read_text("utf-8"))
        if self.identity.get("format") != STORE_FORMAT:
            raise StoreError(f"{str(ident)!r} is not a {STORE_FORMAT} (format="
                             f"{self.identity.get('format')!r})")
        if self.identity.get("version", 0) > STORE_VERSION:
            raise StoreError(f"store {str(self.path)!r} has version {self.identity['version']}; "
                             f"this csbrain reads up to {STORE_VERSION}")

    # ------------------------------------------------------------------ creation
    @classmethod
    def create(cls, path: str | Path, config: PrepConfig, *,
               overwrite: bool = False) -> WindowStore:
        """Open the store at ``path`` for ``config``, creating it atomically if needed.

        A store that holds no window fixes no parameter: it is replaced by one for ``config``.
        Replacing a store (empty, or with ``overwrite``) waits for no one: a store that another
        process is preparing (its lock) is refused.

        Raises
        ------
        StoreError
            The path holds a store prepared with other parameters (unless ``overwrite``), a
            store being prepared by another process, a folder/file that is not a store, or
            cannot be created (the message names the path and the cause).
        """
        path = Path(path)
        ident = {"format": STORE_FORMAT, "version": STORE_VERSION, "config": to_dict(config),
                 "config_sha256": config_sha256(config), "sfreq": units.SFREQ,
                 "patch_size": units.PATCH_SIZE, "units": UNITS}
        if (path / _IDENTITY).is_file():
            store = cls(path)
            if store._same_config(config, ident["config_sha256"]):
                return store
            store._check_unlocked("replace")
            if store.n_windows() == 0:
                logger.info("replacing store %s: it holds no window, so its parameters are "
                            "not fixed", path)
            elif not overwrite:
                diff = config_diff(store.identity.get("config", {}), ident["config"])
                raise StoreError(
                    f"store {str(path)!r} was prepared with different preprocessing parameters "
                    f"({more(diff, 5)}); choose a new "
                    f"--out path, or pass --overwrite to replace it")
            else:
                logger.info("overwriting store %s", path)
            shutil.rmtree(path)
        elif path.exists():
            if path.is_file() or any(path.iterdir()):
                raise StoreError(f"--out {str(path)!r} exists and is not a csbrain window store; "
                                 f"choose a new path (it is never deleted, even with --overwrite)")
            path.rmdir()
        try:
            cls._create(path, ident)
        except OSError as err:
            raise StoreError(f"cannot create store {str(path)!r}: {err.strerror or err}"
                             f"{f' ({err.filename})' if err.filename else ''}") from None
        store = cls(path)
        store.write_manifest()
        return store

    @staticmethod
    def _create(path: Path, ident: dict[str, Any]) -> None:
        import zarr

        tmp = path.parent / f".{path.name}.creating-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        try:
            zarr.open_group(str(tmp / "data.zarr"), mode="w", attributes={"csbrain": ident})
            for sub in ("staging", "skipped"):
                (tmp / sub).mkdir()
            atomic_write_text(tmp / _IDENTITY, json.dumps(ident, indent=2) + "\n")
            os.rename(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _same_config(self, config: PrepConfig, sha: str) -> bool:
        """Whether the store was prepared with ``config``; a store written before a parameter
        existed compares equal when ``config`` gives that parameter its default."""
        if self.identity.get("config_sha256") == sha:
            return True
        from csbrain.configio import from_dict

        try:
            return config_sha256(from_dict(PrepConfig, self.config)) == sha
        except (ValueError, TypeError):
            return False

    def n_windows(self) -> int:
        """Windows held by the committed recordings."""
        return int(sum(self.entry(r).get("n_windows", 0) for r in self.recordings()))

    def _check_unlocked(self, what: str) -> None:
        p = self.path / "lock"
        try:
            pid = int(p.read_text().strip() or 0)
        except (OSError, ValueError):
            return
        if pid and pid != os.getpid() and _pid_alive(pid):
            raise StoreError(f"store {str(self.path)!r} is being prepared by process {pid}; "
                             f"cannot {what} it now: wait for it or stop it first")

    # ------------------------------------------------------------------ reading
    @property
    def data_path(self) -> Path:
        """The Zarr v3 hierarchy."""
        return self.path / "data.zarr"

    @property
    def config(self) -> dict[str, Any]:
        """The preprocessing parameters (``PrepConfig`` as a dict)."""
        return self.identity["config"]

    def recordings(self) -> list[str]:
        """Ids of committed recordings, sorted."""
        if not self.data_path.is_dir():
            return []
        return sorted(p.name for p in self.data_path.iterdir()
                      if p.is_dir() and (p / "zarr.json").is_file())

    def entry(self, rec_id: str) -> dict[str, Any]:
        """Manifest entry of one committed recording."""
        meta = json.loads((self.data_path / rec_id / "zarr.json").read_text("utf-8"))
        return meta.get("attributes", {})

    def arrays(self, rec_id: str):
        """``(x, y, start)`` Zarr arrays of one recording, opened read-only."""
        import zarr

        base = self.data_path / rec_id
        return tuple(zarr.open_array(str(base / n), mode="r") for n in ("x", "y", "start"))

    def channels(self) -> list[str] | None:
        """The store-wide channel list (None before the first commit or with mixed channels)."""
        p = self.path / "channels.json"
        return json.loads(p.read_text("utf-8"))["channels"] if p.is_file() else None

    def skipped(self) -> dict[str, dict[str, Any]]:
        """``{rec_id: {"reason", "message", "source"}}`` of recordings that were skipped."""
        d = self.path / "skipped"
        if not d.is_dir():
            return {}
        return {p.stem: json.loads(p.read_text("utf-8")) for p in sorted(d.glob("*.json"))}

    def manifest(self) -> dict[str, Any]:
        """The manifest (read from ``manifest.json``, rebuilt if it lags the groups)."""
        p = self.path / "manifest.json"
        if p.is_file():
            m = json.loads(p.read_text("utf-8"))
            if [e["id"] for e in m.get("recordings", [])] == self.recordings():
                return m
        return self._build_manifest()

    def _build_manifest(self) -> dict[str, Any]:
        entries = [self.entry(r) for r in self.recordings()]
        skipped = [{"id": k, **v} for k, v in self.skipped().items()]
        return {**{k: self.identity[k] for k in ("format", "version", "sfreq", "patch_size",
                                                 "units", "config_sha256")},
                "channels": self.channels(), "n_recordings": len(entries),
                "n_windows": int(sum(e.get("n_windows", 0) for e in entries)),
                "recordings": entries, "skipped": skipped, "config": self.config}

    # ------------------------------------------------------------------ writing
    def write_manifest(self) -> dict[str, Any]:
        """Rebuild ``manifest.json`` from the groups and skip markers (atomic)."""
        m = self._build_manifest()
        atomic_write_text(self.path / "manifest.json", json.dumps(m, indent=1) + "\n")
        return m

    def lock(self) -> None:
        """Take the store's preparation lock (a stale lock of a dead process is taken over)."""
        p = self.path / "lock"
        for _ in range(2):
            try:
                fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            except FileExistsError:
                self._check_unlocked("prepare")
                p.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(str(os.getpid()))
            return
        raise StoreError(f"cannot take the lock {str(p)!r}")

    def unlock(self) -> None:
        """Release the preparation lock."""
        (self.path / "lock").unlink(missing_ok=True)

    def clean_staging(self) -> int:
        """Delete half-written groups left by an interrupted run; return how many."""
        d = self.path / "staging"
        d.mkdir(exist_ok=True)
        n = 0
        for p in d.iterdir():
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            n += 1
        if n:
            logger.info("removed %d half-written recording(s) from %s", n, d)
        return n

    def stage_dir(self, rec_id: str) -> Path:
        """A fresh staging folder for one writer of ``rec_id``."""
        return self.path / "staging" / f"{rec_id}.{os.getpid()}.{uuid.uuid4().hex[:8]}"

    def claim_channels(self, channels: list[str]) -> list[str]:
        """Fix the store's channel list to ``channels`` if unset; return the store's list."""
        current = self.channels()
        if current is None:
            atomic_write_text(self.path / "channels.json",
                              json.dumps({"channels": list(channels)}) + "\n")
            return list(channels)
        return current

    def commit(self, staged: str | Path, rec_id: str, *, replace: bool = False) -> None:
        """Move a complete staged group into ``data.zarr`` (one atomic rename).

        ``replace``: a committed group of ``rec_id`` is replaced (its source changed).
        """
        target = self.data_path / rec_id
        if target.exists():
            if not replace:
                shutil.rmtree(staged, ignore_errors=True)
                raise StoreError(f"recording {rec_id!r} is already in store {str(self.path)!r}")
            self.remove(rec_id)
        os.rename(staged, target)
        (self.path / "skipped" / f"{rec_id}.json").unlink(missing_ok=True)

    def remove(self, rec_id: str) -> None:
        """Delete a committed recording (renamed into ``staging/`` first, so a reader never
        sees half a group)."""
        target = self.data_path / rec_id
        if target.exists():
            trash = self.path / "staging" / f"{rec_id}.removed.{uuid.uuid4().hex[:8]}"
            os.rename(target, trash)
            shutil.rmtree(trash, ignore_errors=True)

    def mark_skipped(self, rec_id: str, reason: str, message: str, source: str | None) -> None:
        """Record that ``rec_id`` could not be prepared (atomic)."""
        atomic_write_text(self.path / "skipped" / f"{rec_id}.json",
                          json.dumps({"reason": reason, "message": message, "source": source},
                                     indent=1) + "\n")


def open_store(path: str | Path) -> WindowStore:
    """Open an existing window store read-only (see :class:`WindowStore`)."""
    return WindowStore(path)


def store_from_arrays(path: str | Path, windows: dict[str, np.ndarray], channels: list[str], *,
                      config: PrepConfig | None = None) -> WindowStore:
    """A new store holding windows already in memory (one recording per key), e.g. for tests
    and benchmarks of the readers; the entries carry only what readers need.

    Parameters
    ----------
    path : path-like
        New store folder.
    windows : dict of str to ndarray, shape (n, C, P, 200)
        Windows of each recording (model units); all share ``C`` and ``P``.
    channels : list of str
        ``C`` channel names (a montage is resolved from them).
    config : PrepConfig | None
        Its ``store`` section sets dtype, compression and shard size.
    """
    from csbrain.montage import resolve_montage

    config = config or PrepConfig()
    montage = resolve_montage(list(channels))
    store = WindowStore.create(path, config)
    for rec_id, x in windows.items():
        n, c, p, _ = x.shape
        if c != montage.n_chans:
            raise ValueError(f"recording {rec_id!r} has {c} channels; channels names "
                             f"{montage.n_chans}")
        entry = {"id": rec_id, "channels": list(montage.canonical), "montage": montage.to_dict(),
                 "n_patches": int(p), "n_windows": int(n), "dtype": config.store.dtype,
                 "units": UNITS, "sfreq": units.SFREQ, "split": "", "subject": rec_id}
        staged = store.stage_dir(rec_id)
        write_windows(staged, x, np.full(n, UNLABELLED), np.arange(n) * p * units.PATCH_SIZE,
                      entry, config.store)
        store.claim_channels(entry["channels"])
        store.commit(staged, rec_id)
    store.write_manifest()
    return store
