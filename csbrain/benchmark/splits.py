"""Split rules of the recipes and the listing check of a dataset copy.

Kinds of ``recipe["split"]`` (one rule each, data in the recipe or the shipped split file):

- ``file``: the shipped split file maps subjects to splits (CHB-MIT, Siena, BCIC-IV-2a,
  PhysioNet-MI); the copy's subjects must be exactly the file's (or the subset asked for);
  where the file gives ``files_per_subject``, each subject's files must be exactly those.
- ``seeded``: the distribution's own train / eval folders (TUEV, TUAB) or none (TUSL); the
  validation (and test) subjects are drawn from the copy's sorted subject list with the recipe's
  seed. The copy defines the listing, so it is computed at prepare time and written beside the
  store (``benchmark.json``, with its sha256); a later ``prepare`` refuses a copy whose listing
  changed.
- ``positional``: the copy's subjects in natural order, the first ``counts[0]`` train, the next
  ``counts[1]`` val, the rest test (HMC, as released); also written beside the store.
- ``rule``: subject-number ranges (SHU-MI, FACED, ISRUC, MentalArithmetic).
- ``official``: the converter's ``SourceRecording.split`` (BCIC2020-3).
- ``trial``: trial-number ranges from ``SourceRecording.meta["trial"]`` (SEED-V).
- ``recording``: sorted recording names, ``counts`` train / val / rest test, per class where
  ``counts_per_class`` is given (SEED-VIG, Mumtaz2016).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from csbrain._checks import more
from csbrain.benchmark.recipes import BenchmarkError, load_split_file

__all__ = ["subject_number", "natural_key", "check_listing", "subject_splits", "recording_split"]


def natural_key(s: str) -> list:
    """Sort key that orders embedded numbers numerically (``SN2`` before ``SN10``)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def subject_number(subject: str) -> int:
    """The number in a subject id (``"sub012"`` -> 12)."""
    digits = re.findall(r"\d+", subject)
    if not digits:
        raise BenchmarkError(f"subject id {subject!r} has no number; the recipe's split rule "
                             f"numbers subjects")
    return int(digits[-1])


def _subject_of(path: str, regex: str) -> str | None:
    m = re.search(regex, path)
    return m.group(1) if m else None


def check_listing(name: str, files: Sequence[str], split: dict[str, Any],
                  subjects: Sequence[str] | None = None) -> None:
    """Refuse a copy whose files do not match the recipe's shipped listing.

    Parameters
    ----------
    name : str
        Recipe name (its split file, kind ``file``; other kinds have no shipped listing).
    files : sequence of str
        The converter's ``files(raw)``.
    split : dict
        ``recipe["split"]``.
    subjects : sequence of str | None
        Prepare only these subjects (the check covers them alone); None: all of the listing.

    Raises
    ------
    BenchmarkError
        Naming the missing and extra subjects / files.
    """
    if split["kind"] != "file":
        return
    sf = load_split_file(name)
    listed = [s for v in sf["splits"].values() for s in v]
    wanted = list(subjects) if subjects else listed
    unknown = [s for s in wanted if s not in listed]
    if unknown:
        raise BenchmarkError(f"{name}: subjects {unknown} are not in the recipe's listing "
                             f"({more(listed, 10)})")
    by_subject: dict[str, list[str]] = {}
    extra_files = []
    for f in files:
        s = _subject_of(f, sf["subject_regex"])
        if s is None or s not in listed:
            extra_files.append(f)
        elif s in wanted:
            by_subject.setdefault(s, []).append(f)
    missing = [s for s in wanted if s not in by_subject]
    problems = []
    if missing:
        problems.append(f"missing subjects [{more(missing, 10)}]")
    if extra_files:
        problems.append(f"extra files [{more(extra_files, 10)}]")
    pattern = sf.get("files_per_subject")
    if pattern:
        for s, have in sorted(by_subject.items()):
            expect = {p.format(s=s) for p in pattern}
            lack, more_files = sorted(expect - set(have)), sorted(set(have) - expect)
            if lack:
                problems.append(f"{s}: missing files [{more(lack, 10)}]")
            if more_files:
                problems.append(f"{s}: extra files [{more(more_files, 10)}]")
    if problems:
        raise BenchmarkError(f"the {name} copy does not match the recipe's listing "
                             f"(splits/{name}.json): " + "; ".join(problems))


def subject_splits(name: str, split: dict[str, Any], subjects: Sequence[str],
                   official: dict[str, str]) -> dict[str, str]:
    """``{subject: "train"|"val"|"test"}`` for the subject-based kinds.

    Parameters
    ----------
    subjects : sequence of str
        Every subject of the copy.
    official : dict
        ``{subject: split}`` the distribution fixes (TUH train / eval folders), may be empty.
    """
    kind = split["kind"]
    subs = sorted(set(subjects), key=natural_key)
    if kind == "file":
        sf = load_split_file(name)
        return {s: k for k, v in sf["splits"].items() for s in v}
    if kind == "positional":
        n_train, n_val = split["counts"]
        return {s: ("train" if i < n_train else "val" if i < n_train + n_val else "test")
                for i, s in enumerate(subs)}
    if kind == "rule":
        out = {}
        for s in subs:
            n = subject_number(s)
            hit = [k for k, (lo, hi) in split["subjects"].items() if lo <= n <= hi]
            if not hit:
                raise BenchmarkError(f"{name}: subject {s!r} (number {n}) is outside the "
                                     f"recipe's ranges {split['subjects']}")
            out[s] = hit[0]
        return out
    if kind == "seeded":
        rng = np.random.default_rng(split["seed"])
        out = {s: official.get(s, "train") for s in subs}
        pool = [s for s in subs if out[s] == "train"]
        order = [pool[i] for i in rng.permutation(len(pool))]
        n_val, n_test = _held_out(split.get("val_fraction", 0.0),
                                  split.get("test_fraction", 0.0), len(pool))
        n_train = len(order) - n_val - n_test  # train first, then val, then test (released)
        for s in order[n_train:n_train + n_val]:
            out[s] = "val"
        for s in order[n_train + n_val:]:
            out[s] = "test"
        return out
    return {}


def _held_out(val_fraction: float, test_fraction: float, n: int) -> tuple[int, int]:
    """Validation and test group counts as the released scripts compute them: training keeps
    ``int((1 - val - test) * n)``, validation ``int(val * n)`` when a test part follows (else
    the rest), test the rest; at least one group each when its fraction is positive and the
    training part keeps one."""
    n_train = max(1, int((1.0 - val_fraction - test_fraction) * n + 1e-9))
    rest = max(0, n - n_train)
    if test_fraction > 0:
        n_val = min(max(1, int(val_fraction * n + 1e-9)), max(rest - 1, 0)) if val_fraction else 0
        return n_val, rest - n_val
    return rest if val_fraction > 0 else 0, 0


def recording_split(split: dict[str, Any], rec, by_subject: dict[str, str],
                    by_recording: dict[str, str]) -> str:
    """The split of one converted recording (``SourceRecording``)."""
    kind = split["kind"]
    if kind == "official":
        if rec.split not in ("train", "val", "test"):
            raise BenchmarkError(f"recording {rec.name!r}: the converter gave no official "
                                 f"split (got {rec.split!r})")
        return rec.split
    if kind == "trial":
        t = int(rec.meta["trial"])
        hit = [k for k, (lo, hi) in split["trials"].items() if lo <= t <= hi]
        if not hit:
            raise BenchmarkError(f"recording {rec.name!r}: trial {t} is outside "
                                 f"{split['trials']}")
        return hit[0]
    if kind == "recording":
        return by_recording[rec.name]
    return by_subject[rec.subject]


def recording_splits(split: dict[str, Any], names_labels: Sequence[tuple[str, int]]
                     ) -> dict[str, str]:
    """``{recording: split}`` for kind ``recording`` from (name, class) pairs of the WHOLE copy.

    Names are sorted in plain character order, as the released scripts'
    ``sorted(os.listdir(...))`` does (``"10_..." < "1_..." < "2_..."``), not naturally.
    """
    out: dict[str, str] = {}
    per_class = split.get("counts_per_class")
    groups: dict[int, list[str]] = {}
    for n, lab in sorted(names_labels):
        groups.setdefault(int(lab) if per_class else 0, []).append(n)
    for c, names in sorted(groups.items()):
        n_train = per_class["train"][c] if per_class else split["counts"][0]
        n_val = per_class["val"][c] if per_class else split["counts"][1]
        for i, n in enumerate(names):
            out[n] = "train" if i < n_train else "val" if i < n_train + n_val else "test"
    return out
