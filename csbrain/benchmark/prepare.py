"""``prepare``: a dataset copy -> its converter -> the recipe's preprocessing -> a window store.

Per recording (:func:`preprocess_recording`): channels as the recipe lists them
(:mod:`csbrain.benchmark.channels`: bipolar pairs ``A-B`` derived as differences when the file
stores referential channels; names compared without ``EEG ``/``-REF``/``-LE`` decorations and
trailing dots), average reference where the recipe says
so, the recipe's band-pass and notch at the source rate and the resampling to 200 Hz
(:func:`csbrain.data.preprocess.filter_array`, :func:`~csbrain.data.preprocess.resample_array`),
scaling to model units, then consecutive windows of ``window_s`` cut from every labelled
:class:`~csbrain.benchmark.converters._base.Segment`. Windows go into a normal csbrain window store
(:class:`csbrain.data.store.WindowStore`), one group per recording, committed atomically, so an
interrupted ``prepare`` resumes where it stopped. Splits are assigned at the end (the rules in
:mod:`csbrain.benchmark.splits`) and recorded per recording and in ``benchmark.json`` beside the
store, with the copy's file listing and both sha256s.

Released protocols that differ (recipe fields, any dataset): ``segment_filter`` (per-segment
causal filtering and FFT resampling), ``window_resample`` (windows cut at the source rate and
resampled one by one) and ``normalize`` (dataset z-score; statistics over every recording of
the copy, stored in ``benchmark.json``), all in :mod:`csbrain.benchmark.protocol`;
``resample_npad`` (MNE's FFT resampling padded as ``mne.io.Raw.resample`` pads);
``missing_channels: "zeros"`` (a recording lacking recipe channels gets zero rows, as
CHB-MIT's released ``process1.py`` fills them; otherwise such a recording is skipped and
recorded in the store's skipped list, naming the channels).

Regression targets (float) are kept in an extra ``target`` array of each group (the store's
``y`` is integer); :mod:`csbrain.benchmark.runner` reads them.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import re
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from csbrain import units
from csbrain._checks import more
from csbrain._io import atomic_write_text
from csbrain.benchmark.channels import MissingChannelsError, pick_channels
from csbrain.benchmark.protocol import (
    apply_stats,
    dataset_stats,
    resampled_windows,
    segment_windows,
)
from csbrain.benchmark.recipes import BenchmarkError, get_recipe, sha256_text
from csbrain.benchmark.splits import (
    check_listing,
    recording_split,
    recording_splits,
    subject_splits,
)

logger = logging.getLogger(__name__)

__all__ = ["BENCHMARK_FILE", "MissingChannelsError", "converter", "prep_config",
           "preprocess_recording", "prepare_benchmark", "read_benchmark"]

#: The benchmark's record beside a store (recipe, variant, listing, splits, checksums).
BENCHMARK_FILE = "benchmark.json"


def converter(name: str):
    """The converter module of recipe ``name`` (BenchmarkError when none exists yet)."""
    try:
        return importlib.import_module(f"csbrain.benchmark.converters.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"csbrain.benchmark.converters.{name}":
            raise
        raise BenchmarkError(f"no converter for {name!r} yet (csbrain/benchmark/converters/"
                             f"{name}.py)") from None


def _recordings(conv, raw, recipe: dict[str, Any]):
    """``conv.recordings(raw)``, given the recipe where the converter takes a ``recipe``."""
    if "recipe" in inspect.signature(conv.recordings).parameters:
        return conv.recordings(raw, recipe=recipe)
    return conv.recordings(raw)


def prep_config(recipe: dict[str, Any]):
    """The :class:`~csbrain.data.prepconfig.PrepConfig` that records the recipe's preprocessing
    in the store identity (the store refuses a different one)."""
    from csbrain.data.prepconfig import ChannelConfig, FilterConfig, PrepConfig, WindowConfig

    f = recipe["filter"]
    return PrepConfig(
        channels=ChannelConfig(pick=tuple(recipe["channels"] or ())),
        reference=("average",) if recipe.get("reference") == "average" else (),
        filter=FilterConfig(l_freq=f["l_freq"], h_freq=f["h_freq"], notch=tuple(f["notch"])),
        windows=WindowConfig(length_s=float(recipe["window_s"])))


def preprocess_recording(rec, recipe: dict[str, Any]) -> dict[str, Any]:
    """One :class:`SourceRecording` -> windows of the recipe.

    Returns
    -------
    dict
        ``x`` (n, C, P, 200) float32 model units, ``y`` (n,) int64 (0 for regression),
        ``target`` (n,) float64 or None, ``start`` (n,) int64 (samples at 200 Hz),
        ``channels`` (source names kept), ``duration_s``, ``stats_x`` (the windows the
        ``normalize`` statistics are taken over: ``x``, or with ``window_resample`` the same
        windows at its ``via_sfreq``).
    """
    from csbrain.data.prepconfig import FilterConfig
    from csbrain.data.preprocess import filter_array, resample_array

    rows, names = pick_channels(rec, recipe)
    if recipe.get("reference") == "average":
        rows = rows - rows.mean(axis=0, keepdims=True)
    scale = 1e6 * float(recipe["scale_uV"])
    n = int(round(recipe["window_s"] * units.SFREQ))
    f = recipe["filter"]
    via = None
    if recipe.get("segment_filter"):  # per-segment causal filter and FFT resampling
        chunks, starts, labels = segment_windows(rows * scale, rec.sfreq, rec.segments, recipe)
        duration_s = rows.shape[1] / rec.sfreq
    elif recipe.get("window_resample"):  # filtered whole, each window resampled on its own
        if f["l_freq"] is not None or f["h_freq"] is not None or f["notch"]:
            rows = filter_array(rows, rec.sfreq, FilterConfig(
                l_freq=f["l_freq"], h_freq=f["h_freq"], notch=tuple(f["notch"])))
        chunks, starts, labels, via = resampled_windows(rows * scale, rec.sfreq, rec.segments,
                                                        recipe)
        duration_s = rows.shape[1] / rec.sfreq
    else:
        if f["l_freq"] is not None or f["h_freq"] is not None or f["notch"]:
            rows = filter_array(rows, rec.sfreq, FilterConfig(
                l_freq=f["l_freq"], h_freq=f["h_freq"], notch=tuple(f["notch"])))
        if recipe.get("resample_npad") and rec.sfreq != units.SFREQ:  # as mne Raw.resample
            import mne

            rows = mne.filter.resample(rows, up=units.SFREQ / rec.sfreq, method="fft",
                                       npad=recipe["resample_npad"], verbose="error")
        else:
            rows = resample_array(rows, rec.sfreq)
        rows = rows * scale
        starts, labels = [], []
        for seg in rec.segments:
            s0 = int(round(seg.onset_s * units.SFREQ))
            for k in range(int(seg.duration_s / recipe["window_s"] + 1e-9)):
                s = s0 + k * n
                if s >= 0 and s + n <= rows.shape[1]:
                    starts.append(s)
                    labels.append(seg.label)
        chunks = [rows[:, s:s + n] for s in starts]
        duration_s = rows.shape[1] / units.SFREQ
    p = n // units.PATCH_SIZE
    x = np.stack(chunks) if chunks else np.zeros((0, len(names), n))
    x = x.reshape(len(starts), len(names), p, units.PATCH_SIZE).astype(np.float32)
    regression = recipe["task"] == "regression"
    stats_x = np.stack(via) if via else x            # where normalize takes its statistics
    return {"x": x, "stats_x": stats_x, "start": np.asarray(starts, dtype=np.int64),
            "y": np.zeros(len(starts), np.int64) if regression else np.asarray(labels, np.int64),
            "target": np.asarray(labels, np.float64) if regression else None,
            "channels": names, "duration_s": duration_s}


def _windows_or_skip(conv, raw, recipe: dict[str, Any]):
    """:func:`preprocess_recording` of every recording of the copy, leaving out those that lack
    a recipe channel (``prepare`` skips and records them)."""
    for rec in _recordings(conv, raw, recipe):
        try:
            yield preprocess_recording(rec, recipe)
        except MissingChannelsError:
            continue


def _montage(recipe: dict[str, Any], names: list[str]):
    from csbrain.montage import Montage, resolve_montage

    return resolve_montage(recipe["montage"]) if recipe["montage"] else Montage.from_names(names)


def _entry(rec, w: dict[str, Any], recipe: dict[str, Any], montage) -> dict[str, Any]:
    counts: dict[str, int] = {}
    if recipe["task"] != "regression":
        for v in w["y"].tolist():
            counts[str(v)] = counts.get(str(v), 0) + 1
    return {"id": rec.name, "kind": "continuous", "source": rec.meta.get("file"),
            "source_sha256": None, "source_stat": None, "subject": rec.subject,
            "session": rec.meta.get("session"), "task": None, "run": rec.meta.get("run"),
            "split": None, "channels": list(montage.canonical), "source_channels": w["channels"],
            "regions": list(montage.regions), "order": list(montage.order),
            "montage": montage.to_dict(), "sfreq": units.SFREQ, "source_sfreq": rec.sfreq,
            "units": ("z-score (dataset statistics)" if recipe.get("normalize") else
                      f"{1 / float(recipe['scale_uV']):g} uV"), "dtype": "float32",
            "n_patches": int(w["x"].shape[2]),
            "n_windows": int(len(w["x"])), "n_candidates": int(len(w["x"])), "rejected": {},
            "labels": counts, "label_names": list(recipe["classes"]),
            "duration_s": round(float(w["duration_s"]), 6), "filter": dict(recipe["filter"]),
            "interpolated": [], "notes": [], "official_split": rec.split,
            "benchmark_meta": json.loads(json.dumps(rec.meta, default=str)),
            "benchmark": {"recipe": recipe["name"], "variant": recipe["variant"]}}


def read_benchmark(store: str | Path) -> dict[str, Any]:
    """The ``benchmark.json`` of a prepared store (BenchmarkError when absent)."""
    p = Path(store) / BENCHMARK_FILE
    if not p.is_file():
        raise BenchmarkError(f"{str(store)!r} is not a benchmark store (no {BENCHMARK_FILE}); "
                             f"make one with `csbrain benchmark prepare DATASET --raw DIR "
                             f"--out {store}`")
    bench = json.loads(p.read_text("utf-8"))
    if "splits" not in bench:
        raise BenchmarkError(f"the preparation of {str(store)!r} did not finish; rerun the same "
                             f"`csbrain benchmark prepare` command to resume it")
    return bench


def _check_previous(out: Path, record: dict[str, Any]) -> None:
    p = out / BENCHMARK_FILE
    if not p.is_file():
        return
    old = json.loads(p.read_text("utf-8"))
    for k in ("recipe", "variant", "recipe_sha256", "subjects_asked"):
        if old.get(k) != record[k]:
            raise BenchmarkError(f"store {str(out)!r} was prepared with {k}={old.get(k)!r}, "
                                 f"not {record[k]!r}; choose a new --out")
    if old["listing_sha256"] != record["listing_sha256"]:
        gone = sorted(set(old["listing"]) - set(record["listing"]))
        new = sorted(set(record["listing"]) - set(old["listing"]))
        raise BenchmarkError(f"the dataset copy changed since store {str(out)!r} was prepared "
                             f"(missing [{more(gone, 10)}], extra [{more(new, 10)}]); its "
                             f"splits depend on the listing: choose a new --out")


def prepare_benchmark(name: str, raw: str | Path, out: str | Path, *, variant: str = "fixed",
                      subjects: Sequence[str] | None = None,
                      progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Convert and prepare one dataset into a window store (resumable).

    Parameters
    ----------
    name : str
        Recipe name (:data:`csbrain.benchmark.recipes.RECIPE_NAMES`).
    raw : path-like
        The dataset copy, as distributed.
    out : path-like
        Store folder (created; an existing one for the same recipe and copy is resumed).
    variant : {"released", "fixed"}
    subjects : sequence of str | None
        Prepare only these subjects (the listing check covers them alone).
    progress : callable | None
        Called with each recording name as it is done.

    Returns
    -------
    dict
        The ``benchmark.json`` record (recipe, variant, listing, splits, checksums, counts).
    """
    from csbrain.data.store import WindowStore, write_windows

    recipe = get_recipe(name, variant)
    conv = converter(recipe["name"])
    raw, out = Path(raw), Path(out)
    if not raw.is_dir():
        raise BenchmarkError(f"--raw {str(raw)!r} is not a folder (the {recipe['title']} copy "
                             f"as distributed)")
    files = list(conv.files(raw))
    check_listing(recipe["name"], files, recipe["split"], subjects)
    rec_text = json.dumps({k: v for k, v in recipe.items() if k != "variants"}, sort_keys=True)
    record: dict[str, Any] = {
        "recipe": recipe["name"], "variant": recipe["variant"],
        "recipe_sha256": sha256_text(rec_text), "subjects_asked": sorted(subjects or []),
        "listing": files, "listing_sha256": sha256_text("\n".join(files))}
    _check_previous(out, record)
    stats = None
    if recipe.get("normalize"):  # released statistics: every recording of the copy, all splits
        stats = dataset_stats((w["stats_x"] for w in _windows_or_skip(conv, raw, recipe)),
                              recipe)
        record["normalize_stats"] = stats
        logger.info("%s: normalisation statistics over %d windows", name, stats["n_windows"])
    cfg = prep_config(recipe)
    store = WindowStore.create(out, cfg)
    # written first (a resumed run checks the listing against it) and again when done
    atomic_write_text(out / BENCHMARK_FILE, json.dumps(record, indent=1) + "\n")
    store.lock()
    try:
        store.clean_staging()
        done = set(store.recordings())
        for rec in _recordings(conv, raw, recipe):
            if subjects and rec.subject not in subjects:
                continue
            if rec.name in done:
                continue
            try:
                w = preprocess_recording(rec, recipe)
            except MissingChannelsError as err:
                logger.warning("%s skipped: %s", rec.name, err)
                store.mark_skipped(rec.name, "missing_channels", str(err), rec.meta.get("file"))
                continue
            if not len(w["x"]):
                store.mark_skipped(rec.name, "no_windows", "no labelled window", rec.meta.get(
                    "file"))
                continue
            if stats is not None:
                w["x"] = apply_stats(w["x"], stats, recipe)
            montage = _montage(recipe, w["channels"])
            stage = store.stage_dir(rec.name)
            write_windows(stage, w["x"], w["y"], w["start"], _entry(rec, w, recipe, montage),
                          cfg.store)
            if w["target"] is not None:
                import zarr

                g = zarr.open_group(str(stage), mode="r+")
                g.create_array("target", shape=w["target"].shape, dtype="float64")[:] = w["target"]
            store.claim_channels(list(montage.canonical))
            store.commit(stage, rec.name)
            if progress:
                progress(rec.name)
        _assign_splits(store, recipe, files, record)
        record["skipped"] = {k: v.get("reason") for k, v in sorted(store.skipped().items())}
        store.write_manifest()
    finally:
        store.unlock()
    atomic_write_text(out / BENCHMARK_FILE, json.dumps(record, indent=1) + "\n")
    return record


def _official(split: str | None) -> str | None:
    return "test" if split in ("eval", "test") else split


def _listing_classes(split: dict[str, Any], files: list[str],
                     entries: dict[str, dict[str, Any]]) -> list[tuple[str, int]]:
    """(recording name, class) for every recording of the copy's listing, prepared or not: the
    released counts apply to the whole sorted listing. A name is a file's stem; its class is the
    index of the first of ``split["class_patterns"]`` it matches (0 without patterns)."""
    patterns = [re.compile(p) for p in split.get("class_patterns", [])]
    names = sorted({PurePosixPath(f).stem for f in files} | set(entries))
    out = []
    for n in names:
        hit = [i for i, p in enumerate(patterns) if p.search(n)]
        if patterns and not hit:
            raise BenchmarkError(f"recording {n!r} matches none of the class patterns "
                                 f"{split['class_patterns']}")
        out.append((n, hit[0] if hit else 0))
    return out


def _assign_splits(store, recipe: dict[str, Any], files: list[str],
                   record: dict[str, Any]) -> None:
    from types import SimpleNamespace

    import zarr

    split = recipe["split"]
    entries = {r: store.entry(r) for r in store.recordings()}
    if not entries:
        raise BenchmarkError(f"no labelled window in the {recipe['title']} copy")
    official = {e["subject"]: _official(e.get("official_split")) for e in entries.values()
                if e.get("official_split")}
    subs = [e["subject"] for e in entries.values()]
    if split.get("subject_regex"):
        subs = sorted({m.group(1) for f in files if (m := re.search(split["subject_regex"], f))})
    by_subject = subject_splits(recipe["name"], split, subs, official)
    by_rec = {}
    if split["kind"] == "recording":
        by_rec = recording_splits(split, _listing_classes(split, files, entries))
    rec_split: dict[str, str] = {}
    for r, e in entries.items():
        rec = SimpleNamespace(name=r, subject=e["subject"], meta=e.get("benchmark_meta", {}),
                              split=_official(e.get("official_split")))
        rec_split[r] = recording_split(split, rec, by_subject, by_rec)
        if e.get("split") != rec_split[r]:
            zarr.open_group(str(store.data_path / r), mode="r+").attrs["split"] = rec_split[r]
    shutil.rmtree(store.path / "staging", ignore_errors=True)
    (store.path / "staging").mkdir()
    text = json.dumps(rec_split, sort_keys=True)
    record.update({"splits": rec_split, "splits_sha256": sha256_text(text),
                   "split_rule": split["rule"],
                   "n_windows": {k: sum(entries[r]["n_windows"] for r, s in rec_split.items()
                                        if s == k) for k in ("train", "val", "test")}})
