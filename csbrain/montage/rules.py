"""The name -> region -> position rules of one channel (see :mod:`csbrain.montage`).

Each rule is a function: :func:`canonical_name`, :func:`region_of`, :func:`position_of`,
:func:`position_overrides_name`, and :func:`channel_site` (the three together, for a name and
an optional given position). They read one table of the template electrodes, built once from
MNE's 10-05 template (:func:`csbrain._montage_geometry.template_positions`).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from csbrain._checks import CSBrainError, CSBrainTypeError, closest
from csbrain._montage_geometry import bipolar_position, check_positions, nearest, template_positions

logger = logging.getLogger(__name__)

__all__ = ["NAME_POSITION_TOLERANCE", "REGION_NAMES", "N_REGIONS", "Site", "canonical_name",
           "region_of", "position_of", "position_overrides_name", "channel_site"]

#: Distance (m) beyond which a given position overrides a 10-05 name.
NAME_POSITION_TOLERANCE = 0.05
REGION_NAMES: tuple[str, ...] = ("frontal", "parietal", "temporal", "occipital", "central")
N_REGIONS = len(REGION_NAMES)

_ALIASES = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}
_PREFIX_REGION = {"N": 0, "Fp": 0, "AF": 0, "F": 0, "FC": 4, "FT": 2, "C": 4, "CP": 4,
                  "T": 2, "TP": 2, "P": 1, "PO": 1, "O": 3, "I": 3, "CB": 3}
_RULE_RE = re.compile(r"^(Fp|AF|FC|FT|F|CP|CB|C|TP|T|PO|P|O|I|N)(\d+|z)$")
_TEMPORAL_P = {"P7", "P8", "P9", "P10"}
_PREFIX_RE = re.compile(r"^EEG[ _]", re.IGNORECASE)
_SUFFIX_RE = re.compile(r"-(REF|LE|AVG)$", re.IGNORECASE)
_REGIONS_HELP = f"0..{N_REGIONS - 1} ({', '.join(REGION_NAMES)})"
_RAISE: Any = object()  # canonical_name's default: raise for an unknown name



def _rule_region(name: str) -> int | None:
    """Region of a canonical name by the prefix table, or None if the table does not cover it."""
    m = _RULE_RE.match(name)
    if m is None:
        return None
    return 2 if name in _TEMPORAL_P else _PREFIX_REGION[m.group(1)]


class _Tables(NamedTuple):
    """Every template electrode, by canonical name (built once, from MNE's template)."""

    lookup: dict[str, str]  # lowercase name or old alias -> canonical name
    regions: dict[str, int]  # canonical name -> region id
    positions: dict[str, np.ndarray]  # canonical name -> head-frame position (m)
    covered: list[str]  # names the prefix table covers
    covered_positions: np.ndarray  # (len(covered), 3)


@functools.lru_cache(maxsize=1)
def _tables() -> _Tables:
    """Template names take the prefix-table region, or that of the nearest covered electrode."""
    pos = {k: v for k, v in template_positions().items() if k not in _ALIASES}
    lookup = {k.lower(): k for k in pos} | {old.lower(): new for old, new in _ALIASES.items()}
    rule = {k: _rule_region(k) for k in pos}
    covered = sorted(k for k, r in rule.items() if r is not None)
    cov_pos = np.array([pos[k] for k in covered])
    regions = {k: r if r is not None else rule[covered[nearest(cov_pos, pos[k])]]
               for k, r in rule.items()}
    return _Tables(lookup, regions, pos, covered, cov_pos)


def _clean(name: str) -> str:
    core = _PREFIX_RE.sub("", name.strip()).strip().rstrip(".").strip()
    return _SUFFIX_RE.sub("", core).strip()


def _canonical(name: str, t: _Tables) -> str | None:
    """Canonical spelling of an electrode or a pair ``A-B``; None if it is not one."""
    core = _clean(name)
    if core.lower() in t.lookup:
        return t.lookup[core.lower()]
    parts = [p.strip().lower() for p in core.split("-")]
    if len(parts) == 2 and all(p in t.lookup for p in parts):
        return "-".join(t.lookup[p] for p in parts)
    return None


def _unknown_message(name: str, t: _Tables) -> str:
    core = _clean(name)
    valid = sorted(set(t.lookup.values()) | set(_ALIASES))
    parts = [p.strip() for p in core.split("-")] if "-" in core else [core]
    bad = next((p for p in parts if p.lower() not in t.lookup), core) if len(parts) == 2 else core
    where = f"channel {name!r}" + (f": {bad!r}" if bad != core else "")
    near = closest(bad, valid, n=5)
    hint = f"closest: {', '.join(near)}" if near else "no close 10-05 name"
    return (f"{where} is not a 10-05 electrode name; {hint}; "
            f"pass positions={{{name!r}: (x, y, z)}} to place it")


def canonical_name(name: str, default: Any = _RAISE) -> str:
    """Return the canonical 10-05 spelling of one electrode or bipolar pair.

    Parameters
    ----------
    name : str
        E.g. ``"EEG FP1-REF"``, ``"t3"``, ``"FP1-F7"``.
    default : Any
        Returned for a name that is not a known electrode; without it such a name raises.

    Returns
    -------
    str
        E.g. ``"Fp1"``, ``"T7"``, ``"Fp1-F7"`` (or ``default``).

    Raises
    ------
    ValueError
        If ``name`` is not a known electrode and no ``default`` is given; the message lists
        the closest valid names.
    """
    if not isinstance(name, str):
        raise CSBrainTypeError(f"name must be a str, got {name!r} ({type(name).__name__})")
    t = _tables()
    canon = _canonical(name, t)
    if canon is not None:
        return canon
    if default is _RAISE:
        raise CSBrainError(_unknown_message(name, t))
    return default


def _label(name: str, t: _Tables) -> str:
    """The canonical name of a known electrode, else the name itself (stripped)."""
    return _canonical(name, t) or name.strip()


def region_of(name: str) -> int:
    """Return the region id (0..4) of a raw or canonical electrode name (bipolar: first electrode).

    Parameters
    ----------
    name : str
        Any name :func:`canonical_name` accepts.

    Returns
    -------
    int
        Index into :data:`REGION_NAMES`.
    """
    return _tables().regions[canonical_name(name).split("-")[0]]


def position_of(name: str) -> np.ndarray:
    """Return the template position of an electrode (of a pair ``A-B``: 1/10 from A to B).

    Parameters
    ----------
    name : str
        Any name :func:`canonical_name` accepts.

    Returns
    -------
    ndarray, shape (3,)
        Metres, MNE head frame.
    """
    return bipolar_position(_tables().positions, canonical_name(name))


def _offset(canon: str, position: np.ndarray, t: _Tables) -> float:
    """Distance (m) of a given position from the template site of an electrode (pairs: 0)."""
    if "-" in canon:
        return 0.0
    return float(np.linalg.norm(np.asarray(position, dtype=float) - t.positions[canon]))


def position_overrides_name(name: str, position: Sequence[float]) -> bool:
    """Whether a given position wins over a 10-05 name (it lies over 5 cm from that site).

    Parameters
    ----------
    name : str
        A known electrode name (a bipolar pair never is overridden).
    position : sequence of float, shape (3,)
        Metres, MNE head frame.

    Returns
    -------
    bool
        True when ``position`` is more than :data:`NAME_POSITION_TOLERANCE` from the template
        site of ``name``: the name is then a label only.
    """
    offset = _offset(canonical_name(name), np.asarray(position, dtype=float), _tables())
    return offset > NAME_POSITION_TOLERANCE


class Site(NamedTuple):
    """Where one channel goes: canonical name, region id and head-frame position (m)."""

    canonical: str
    region: int
    position: np.ndarray


def _site(name: str, position: np.ndarray | None, t: _Tables) -> Site:
    canon = _canonical(name, t)
    if canon is None and position is None:
        raise CSBrainError(_unknown_message(name, t))
    if canon is not None and position is None:
        return Site(canon, t.regions[canon.split("-")[0]], bipolar_position(t.positions, canon))
    if canon is not None:
        offset = _offset(canon, position, t)
        if offset <= NAME_POSITION_TOLERANCE:
            return Site(canon, t.regions[canon.split("-")[0]], position)
        logger.info("channel %r lies %.0f cm from the 10-05 site %s: its position wins (e.g. "
                    "BioSemi A1 is not 10-05 A1)", name, 100 * offset, canon)
    region = t.regions[t.covered[nearest(t.covered_positions, position)]]
    logger.debug("channel %r is placed by its position: %s", name, REGION_NAMES[region])
    return Site(name.strip(), region, position)


def channel_site(name: str, position: Sequence[float] | None = None) -> Site:
    """Apply the name -> region -> position rules to one channel.

    Parameters
    ----------
    name : str
        A channel name (see :func:`canonical_name`).
    position : sequence of float, shape (3,) | None
        Metres, MNE head frame. Required for a name that is not a 10-05 electrode.

    Returns
    -------
    Site
        A known name without a position: its canonical name, region and template position.
        With a position: that position, and the name's region unless the position overrides
        the name (:func:`position_overrides_name`); an overridden or unknown name keeps its
        (stripped) name and takes the region of the nearest template electrode of the table.
    """
    if not isinstance(name, str):
        raise CSBrainTypeError(f"name must be a str, got {name!r} ({type(name).__name__})")
    given = check_positions([name], None if position is None else {name: position})
    return _site(name, given.get(name), _tables())
