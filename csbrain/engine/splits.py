"""Seeded train / validation / test splits by subject, recording or window.

:class:`SplitConfig` states the rules (the ``split`` section of a fine-tuning config). Every
split is a function of the data's group labels and ``split.seed`` only, so runs with different
training seeds share it, and evaluation repeats a run's split from its ``run_config.json``.
No torch import.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np

from csbrain._checks import check_float, more

logger = logging.getLogger(__name__)

__all__ = ["SplitConfig", "STORE_SPLIT_NAMES", "normalise_store_split", "split_indices",
           "holdout_indices", "leak_warning"]


def leak_warning(cfg: SplitConfig, prep_config: dict | None) -> str | None:
    """Why splitting by window leaks between the sets (None when it does not).

    Windows of one recording that overlap (``windows.stride_s`` below ``windows.length_s``)
    share samples: split by window, neighbours land in train and test, and test scores are
    optimistic.

    Parameters
    ----------
    cfg : SplitConfig
    prep_config : dict | None
        The data's preprocessing (``PrepConfig`` as a dict), None if unknown.
    """
    if "window" not in (cfg.by, cfg.val_by) or not prep_config:
        return None
    win = prep_config.get("windows", {})
    length, stride = win.get("length_s"), win.get("stride_s")
    if length is None or stride is None or stride >= length:
        return None
    key = "split.by" if cfg.by == "window" else "split.val_by"
    return (f"{key}=window with overlapping windows (windows.stride_s={stride:g} < "
            f"windows.length_s={length:g}): neighbouring windows share samples across the "
            f"sets, so held-out scores are optimistic; split by recording or subject, or "
            f"prepare with windows.stride_s >= windows.length_s")


@dataclass(frozen=True)
class SplitConfig:
    """How a store's windows become train / validation / test sets (fine-tuning).

    Precedence for the test set: the store's own split labels (``use_store_splits`` and some
    recordings marked ``test``), then the groups listed in ``test``, then a seeded fraction
    ``test_fraction`` of the ``by`` groups. The validation set likewise (store ``val``, the
    groups in ``val``, then ``val_fraction`` of the remaining ``val_by`` groups). Groups never
    straddle two sets.

    Parameters
    ----------
    by : {"subject", "recording", "window"}
        Grouping of the test split (windows of one subject stay together).
    val_by : {"subject", "recording", "window"} | None
        Grouping of the validation split (None: same as ``by``); e.g. train on one subject
        with ``by="subject", test=["02"], val_by="recording"``.
    val_fraction, test_fraction : float
        Fractions of the groups (at least one group when > 0).
    test, val : tuple of str
        Explicit group ids (subjects, recording ids or window indices) for test / val.
    seed : int
        Seed of the split; independent of the run seed so that seeds share one split.
    use_store_splits : bool
        Use the ``split`` the store records per recording (official splits) when present.
    """

    by: Literal["subject", "recording", "window"] = "subject"
    val_by: Literal["subject", "recording", "window"] | None = None
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    test: tuple[str, ...] = ()
    val: tuple[str, ...] = ()
    seed: int = 0
    use_store_splits: bool = True

    def __post_init__(self) -> None:
        for name in ("val_fraction", "test_fraction"):
            check_float(f"split.{name}", getattr(self, name), min_value=0.0, max_value=1.0)
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError(f"split.val_fraction={self.val_fraction} + split.test_fraction="
                             f"{self.test_fraction} must be below 1 (training needs data)")


#: Accepted values of a store's per-recording ``split`` field, by set.
STORE_SPLIT_NAMES: dict[str, tuple[str, ...]] = {
    "train": ("train", "training"),
    "val": ("val", "valid", "validation", "dev"),
    "test": ("test", "eval", "evaluation"),
}


def normalise_store_split(values: np.ndarray) -> np.ndarray:
    """Map a data's split values to ``train`` / ``val`` / ``test`` ("" stays "")."""
    lookup = {v: k for k, names in STORE_SPLIT_NAMES.items() for v in names}
    out = np.array([lookup.get(str(v).strip().lower(), "?") if v else "" for v in values],
                   dtype=object)
    bad = sorted({str(v) for v, o in zip(values, out) if o == "?"})
    if bad:
        accepted = sorted(lookup)
        raise ValueError(f"the data's split values {bad} are not understood; expected one of "
                         f"{accepted} (or set split.use_store_splits=false)")
    return out


def _pick_groups(groups: np.ndarray, pool: np.ndarray, fraction: float, rng: np.random.Generator,
                 what: str, by: str) -> np.ndarray:
    """Boolean mask over windows: a seeded ``fraction`` of the distinct groups in ``pool``."""
    candidates = np.array(sorted(set(groups[pool].tolist())), dtype=object)
    n = len(candidates)
    k = max(1, int(round(fraction * n)))
    if k >= n:
        finer = [b for b in ("recording", "window") if b != by and not (by == "window")]
        key = "split.by" if what == "test" else "split.val_by"
        hint = f"set {key} to {' or '.join(repr(b) for b in finer)}, " if finer else ""
        raise ValueError(f"cannot hold out {fraction:g} of {n} {by} group(s) for {what} and keep "
                         f"one for training; {hint}list groups explicitly (split.{what}), or "
                         f"lower split.{what}_fraction")
    chosen = set(rng.permutation(candidates)[:k].tolist())
    return pool & np.isin(groups, list(chosen))


def _explicit(groups: np.ndarray, wanted: tuple[str, ...], by: str, what: str) -> np.ndarray:
    present = set(groups.tolist())
    missing = [g for g in wanted if g not in present]
    if missing:
        raise ValueError(f"split.{what}={list(wanted)}: {missing} are not {by} ids of the data "
                         f"(it has [{more(map(repr, sorted(present)), 20)}])")
    return np.isin(groups, list(wanted))


def split_indices(groups: dict[str, np.ndarray], cfg: SplitConfig) -> dict[str, np.ndarray]:
    """Window indices of the train, val and test sets.

    Parameters
    ----------
    groups : dict of str to ndarray, shape (n,)
        ``subject``, ``recording``, ``window`` and ``split`` per window (see
        :class:`csbrain.engine.rundata.RunData`).
    cfg : SplitConfig

    Returns
    -------
    dict
        ``{"train": idx, "val": idx, "test": idx}``, sorted int64 arrays, disjoint.

    Raises
    ------
    ValueError
        A grouping is absent from the data, too few groups, or an empty training set.
    """
    n = len(groups["window"])
    rng = np.random.default_rng(cfg.seed)
    by, val_by = cfg.by, cfg.val_by or cfg.by
    if "subject" in (by, val_by) and np.all(groups["subject"] == ""):
        logger.warning("the data record no subject ids: splitting by recording instead")
        by = "recording" if by == "subject" else by
        val_by = "recording" if val_by == "subject" else val_by
    for b in {by, val_by}:
        if not np.all(groups[b] != ""):
            raise ValueError(f"split by {b!r} but the data have no {b} id for some windows; "
                             f"use split.by='recording' or 'window'")
    store = np.full(n, "", dtype=object)
    if cfg.use_store_splits and np.any(groups["split"] != ""):
        store = normalise_store_split(groups["split"])
    everything = np.ones(n, dtype=bool)
    if np.any(store == "test"):
        test = store == "test"
        logger.info("test split: the data's own (%d windows)", test.sum())
    elif cfg.test:
        test = _explicit(groups[by], cfg.test, by, "test")
    elif cfg.test_fraction > 0:
        test = _pick_groups(groups[by], everything & (store != "val"), cfg.test_fraction,
                            rng, "test", by)
    else:
        test = np.zeros(n, dtype=bool)
    rest = ~test
    if np.any(store == "val"):
        val = store == "val"
    elif cfg.val:
        val = _explicit(groups[val_by], cfg.val, val_by, "val") & rest
    elif cfg.val_fraction > 0:
        val = _pick_groups(groups[val_by], rest, cfg.val_fraction, rng, "val", val_by)
    else:
        val = np.zeros(n, dtype=bool)
    train = rest & ~val
    for name, mask in (("train", train), ("val", val), ("test", test)):
        overlap = set(groups[by][mask].tolist())
        logger.info("%s: %d windows from %d %s group(s)", name, mask.sum(), len(overlap), by)
    if not train.any():
        raise ValueError(f"the split leaves no training window ({n} windows: {val.sum()} val, "
                         f"{test.sum()} test); lower split.val_fraction / test_fraction")
    return {k: np.flatnonzero(m).astype(np.int64) for k, m in
            (("train", train), ("val", val), ("test", test))}


def holdout_indices(groups: np.ndarray, fraction: float,
                    seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded ``(train, held_out)`` window indices holding out ``fraction`` of the groups."""
    n = len(groups)
    if not fraction:
        return np.arange(n, dtype=np.int64), np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    held = _pick_groups(groups, np.ones(n, dtype=bool), fraction, rng, "val", "recording")
    return np.flatnonzero(~held).astype(np.int64), np.flatnonzero(held).astype(np.int64)
