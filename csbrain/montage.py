"""Electrode -> brain region contract of CSBrain.

CSBrain groups channels into 5 brain regions (index = region id): 0 frontal, 1 parietal,
2 temporal, 3 occipital, 4 central. The model permutes channels with :attr:`Montage.order`
(``x[:, order]``) so that regions are contiguous in ascending id, each region in a ring
order (the model pads circularly along it).

Names
-----
A channel name is normalised (any case; surrounding whitespace, an ``EEG `` or ``EEG_``
prefix, trailing dots and a ``-REF``/``-LE``/``-AVG`` suffix are removed) and spelt as in
MNE's 10-05 template (``Fp1``, ``FCz``, ``AF7``, ``Oz``...). Old 10-20 names are aliases of
the 10-05 ones: T3 -> T7, T4 -> T8, T5 -> P7, T6 -> P8. ``Nz`` and the cerebellar ``CB1``,
``CB2`` are accepted too. A bipolar name ``A-B`` (both valid) becomes
``canonical(A)-canonical(B)``; it takes A's region, and its position (for the ring) is the
point one tenth of the way from A to B, so pairs sharing A are ordered by B.

Region rule (one prefix rule on the canonical name, whole-prefix match)
-----------------------------------------------------------------------
========================================  =============
``Nz``, ``Fp*``, ``AF*``, ``F1..F10, Fz``  0 frontal
``FC*``                                    4 central
``FT*``                                    2 temporal
``C1..C6, Cz``, ``CP*``                    4 central
``T7..T10``, ``TP*``                       2 temporal
``P1..P6, Pz``, ``PO*``                    1 parietal
``P7, P8, P9, P10`` (P7/P8 = old T5/T6)    2 temporal
``O*``, ``I*`` (Iz, I1, I2), ``CB*``       3 occipital
anything else                              region of the nearest electrode above
========================================  =============

"A prefix" means the name is exactly prefix + number or ``z`` (``FT7`` is FT, not F;
``CPz`` is CP, not C). "Anything else" covers the extended 10-05 names (``AFF1h``,
``FCC3h``...), ``A1``/``A2``/``M1``/``M2``, and unknown names given a position: the region
of the nearest (3-D, head frame) template electrode covered by the table. For the 19
pretraining channels this gives the pretraining regions.

Ring order
----------
Within a region, electrodes are placed on the MNE head frame (template positions, or
positions given by the user / read from ``mne.Info``) and ordered by
:func:`csbrain._montage_geometry.ring_order`: most anterior electrode first,
nearest-neighbour closed tour (3-D distance), 2-opt and Or-opt until no move shortens
it, then towards the left neighbour. Presets are the released per-dataset tables, kept as
data (``resources/montage_presets.json``).
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from csbrain._checks import closest
from csbrain._montage_geometry import (bipolar_position, check_positions, nearest, sort_by_ring,
                                       template_tables)

logger = logging.getLogger(__name__)

#: Distance (m) beyond which a given position overrides a 10-05 name.
NAME_POSITION_TOLERANCE = 0.05
REGION_NAMES: tuple[str, ...] = ("frontal", "parietal", "temporal", "occipital", "central")
N_REGIONS = 5

_ALIASES = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}
_PREFIX_REGION = {"N": 0, "Fp": 0, "AF": 0, "F": 0, "FC": 4, "FT": 2, "C": 4, "CP": 4,
                  "T": 2, "TP": 2, "P": 1, "PO": 1, "O": 3, "I": 3, "CB": 3}
_RULE_RE = re.compile(r"^(Fp|AF|FC|FT|F|CP|CB|C|TP|T|PO|P|O|I|N)(\d+|z)$")
_TEMPORAL_P = {"P7", "P8", "P9", "P10"}
_PREFIX_RE = re.compile(r"^EEG[ _]", re.IGNORECASE)
_SUFFIX_RE = re.compile(r"-(REF|LE|AVG)$", re.IGNORECASE)
_REGIONS_HELP = f"0..{N_REGIONS - 1} ({', '.join(REGION_NAMES)})"


def _rule_region(name: str) -> int | None:
    """Region of a canonical name by the prefix table, or None if the table does not cover it."""
    m = _RULE_RE.match(name)
    if m is None:
        return None
    return 2 if name in _TEMPORAL_P else _PREFIX_REGION[m.group(1)]


def _tables() -> tuple[dict[str, str], dict[str, int], dict[str, np.ndarray], list[str],
                       np.ndarray]:
    """(lowercase -> canonical, canonical -> region, canonical -> position, covered, positions)."""
    return template_tables(_rule_region, tuple(_ALIASES.items()))


def _clean(name: str) -> str:
    core = _PREFIX_RE.sub("", name.strip()).strip().rstrip(".").strip()
    return _SUFFIX_RE.sub("", core).strip()


def _unknown_message(name: str) -> str:
    lookup = _tables()[0]
    core = _clean(name)
    valid = sorted(set(lookup.values()) | set(_ALIASES))
    parts = [p.strip() for p in core.split("-")] if "-" in core else [core]
    bad = next((p for p in parts if p.lower() not in lookup), core) if len(parts) == 2 else core
    where = f"channel {name!r}" + (f": {bad!r}" if bad != core else "")
    near = closest(bad, valid, n=5)
    hint = f"closest: {', '.join(near)}" if near else "no close 10-05 name"
    return (f"{where} is not a 10-05 electrode name; {hint}; "
            f"pass positions={{{name!r}: (x, y, z)}} to place it")


def positions_from_chs(chs: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Usable 3-D positions of channel dicts (``mne.Info["chs"]``, braindecode ``chs_info``).

    A position is usable when ``loc`` holds three finite coordinates that are not all zero (MNE
    writes zeros, braindecode may write NaN or omit ``loc``, for a channel without one).

    Returns
    -------
    positions : dict
        ``ch_name`` -> ``(3,)`` array (metres, MNE head frame), usable positions only.
    """
    out = {}
    for ch in chs:
        loc = ch.get("loc")
        if loc is None or len(loc) < 3:
            continue
        xyz = np.asarray(loc[:3], dtype=float)
        if np.all(np.isfinite(xyz)) and np.any(xyz != 0):
            out[ch["ch_name"]] = xyz
    return out


def canonical_name(name: str) -> str:
    """Return the canonical 10-05 spelling of one electrode or bipolar pair.

    Parameters
    ----------
    name : str
        E.g. ``"EEG FP1-REF"``, ``"t3"``, ``"FP1-F7"``.

    Returns
    -------
    str
        E.g. ``"Fp1"``, ``"T7"``, ``"Fp1-F7"``.

    Raises
    ------
    ValueError
        If ``name`` is not a known electrode; the message lists the closest valid names.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {name!r} ({type(name).__name__})")
    lookup = _tables()[0]
    core = _clean(name)
    if core.lower() in lookup:
        return lookup[core.lower()]
    parts = [p.strip() for p in core.split("-")]
    if len(parts) == 2 and all(p.lower() in lookup for p in parts):
        return f"{lookup[parts[0].lower()]}-{lookup[parts[1].lower()]}"
    raise ValueError(_unknown_message(name))


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
    return _tables()[1][canonical_name(name).split("-")[0]]


@functools.lru_cache(maxsize=1)
def _presets() -> dict[str, dict]:
    text = resources.files("csbrain").joinpath("resources/montage_presets.json").read_text("utf-8")
    return json.loads(text)["presets"]


def list_presets() -> list[str]:
    """Return the preset names (the released per-dataset tables, plus ``PhysioNet-MI``)."""
    return list(_presets())


def _canonical_or_given(name: str) -> str:
    try:
        return canonical_name(name)
    except ValueError:
        return name


@dataclass(frozen=True, repr=False)
class Montage:
    """Channels, their canonical names, regions and the region-sorting permutation.

    Parameters
    ----------
    channels : tuple of str
        Channel names as given, input order.
    canonical : tuple of str
        Canonical 10-05 names (bipolar pairs canonicalised on both sides).
    regions : tuple of int
        Region id (0..4, see :data:`REGION_NAMES`) per input channel.
    order : tuple of int
        Permutation of ``range(n)``; ``x[:, order]`` is the sorted layout and
        ``regions[order]`` is non-decreasing.
    preset : str | None
        Preset name if built with :meth:`from_preset`.
    """

    channels: tuple[str, ...]
    canonical: tuple[str, ...]
    regions: tuple[int, ...]
    order: tuple[int, ...]
    preset: str | None = None

    def __post_init__(self) -> None:
        for field in ("channels", "canonical", "regions", "order"):
            value = getattr(self, field)
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence | np.ndarray):
                raise TypeError(f"{field} must be a sequence, got {type(value).__name__}")
            object.__setattr__(self, field, tuple(value))
        n = len(self.channels)
        if n == 0:
            raise ValueError("channels is empty; a montage needs at least one channel")
        bad = next(((f, i, v) for f in ("channels", "canonical")
                    for i, v in enumerate(getattr(self, f)) if not isinstance(v, str)), None)
        if bad:
            raise TypeError(f"{bad[0]}[{bad[1]}]={bad[2]!r} must be a str")
        dup = sorted(k for k, c in Counter(self.channels).items() if c > 1)
        if dup:
            raise ValueError(f"channels has duplicate names {dup}; expected unique names")
        for field in ("canonical", "regions", "order"):
            if len(getattr(self, field)) != n:
                raise ValueError(f"{field} has {len(getattr(self, field))} entries but channels "
                                 f"has {n}; expected one per channel")
        limits = {"regions": (N_REGIONS - 1, "is not a region id; expected " + _REGIONS_HELP),
                  "order": (n - 1, f"is not a channel index; expected 0..{n - 1}")}
        for field, (hi, what) in limits.items():
            values = getattr(self, field)
            for i, v in enumerate(values):
                if isinstance(v, bool | np.bool_) or not isinstance(v, int | np.integer) \
                        or not 0 <= v <= hi:
                    raise ValueError(f"{field}[{i}]={v!r} {what}")
            object.__setattr__(self, field, tuple(int(v) for v in values))
        rep = sorted(k for k, c in Counter(self.order).items() if c > 1)
        if rep:
            raise ValueError(f"order repeats indices {rep}; expected a permutation of range({n})")
        for k in range(1, n):
            a, b = self.order[k - 1], self.order[k]
            if self.regions[b] < self.regions[a]:
                raise ValueError(
                    f"regions[order] must be non-decreasing (regions contiguous in ascending id); "
                    f"order[{k}]={b} has region {self.regions[b]} after order[{k - 1}]={a} "
                    f"with region {self.regions[a]}")
        if self.preset is not None and not isinstance(self.preset, str):
            raise TypeError(f"preset={self.preset!r} must be a str or None")

    # ----------------------------------------------------------------- properties
    @property
    def n_chans(self) -> int:
        """Number of channels."""
        return len(self.channels)

    @property
    def sorted_regions(self) -> tuple[int, ...]:
        """``regions[order]`` (non-decreasing)."""
        return tuple(self.regions[i] for i in self.order)

    @property
    def region_sizes(self) -> tuple[int, ...]:
        """Number of channels per region id (5 ints, zeros allowed)."""
        counts = Counter(self.regions)
        return tuple(counts.get(r, 0) for r in range(N_REGIONS))

    @property
    def sorted_channels(self) -> tuple[str, ...]:
        """Channel names in sorted (model) order."""
        return tuple(self.channels[i] for i in self.order)

    def __len__(self) -> int:
        return len(self.channels)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{REGION_NAMES[r]} {s}" for r, s in enumerate(self.region_sizes))
        src = f"preset={self.preset!r}" if self.preset else "from names"
        return f"<Montage | {self.n_chans} channels, {src}; {sizes}>"

    # ---------------------------------------------------------------- constructors
    @classmethod
    def from_names(cls, names: Sequence[str],
                   positions: Mapping[str, Sequence[float]] | None = None) -> Montage:
        """Build a montage from channel names with the csbrain region rule and ring order.

        Parameters
        ----------
        names : sequence of str
            Channel names in input order (see :func:`canonical_name` for what is accepted).
        positions : dict | None
            Optional ``{name: (x, y, z)}`` in metres, MNE head frame. Required for names that
            are not 10-05 electrodes (they take the region of the nearest template
            electrode and keep their name); for known names it replaces the template
            position in the ring order, and when it lies more than
            ``NAME_POSITION_TOLERANCE`` (5 cm) from the named 10-05 site the position wins:
            the name is treated as a label only (e.g. BioSemi ``A1`` is the vertex, not the
            10-05 ``A1`` by the ear).

        Returns
        -------
        Montage
        """
        if isinstance(names, str) or not isinstance(names, Sequence | np.ndarray):
            raise TypeError(f"names must be a sequence of str, got {type(names).__name__}")
        names = [str(n) if isinstance(n, np.str_) else n for n in names]
        for i, n in enumerate(names):
            if not isinstance(n, str):
                raise TypeError(f"names[{i}]={n!r} must be a str")
        dup = sorted(k for k, c in Counter(names).items() if c > 1)
        if dup:
            raise ValueError(f"names has duplicate channels {dup}; expected unique names")
        given = check_positions(names, positions)
        _, table, _, covered, cov_pos = _tables()
        canon, regions, pos, errors = [], [], [], []
        templates = _tables()[2]
        for name in names:
            try:
                c = canonical_name(name)
            except ValueError as err:
                if name not in given:
                    errors.append(str(err))
                    continue
                c = None
            if c is not None and name in given and "-" not in c:
                dist = float(np.linalg.norm(given[name] - templates[c]))
                if dist > NAME_POSITION_TOLERANCE:
                    logger.info("channel %r lies %.0f cm from the 10-05 site %s: its position "
                                "wins (e.g. BioSemi A1 is not 10-05 A1)", name, 100 * dist, c)
                    c = None
            if c is None:  # placed by its position
                c = name.strip()
                regions.append(table[covered[nearest(cov_pos, given[name])]])
                logger.debug("channel %r is placed by its position: %s", name,
                             REGION_NAMES[regions[-1]])
            else:
                regions.append(table[c.split("-")[0]])
            canon.append(c)
            pos.append(given[name] if name in given else bipolar_position(_tables()[2], c))
        if errors:
            raise ValueError("\n".join(errors))
        same = {c: [n for n, k in zip(names, canon) if k == c]
                for c, k in Counter(canon).items() if k > 1}
        if same:
            raise ValueError(f"names {sorted(same.values())} are the same electrode(s) "
                             f"{sorted(same)}; expected each electrode once")
        return cls(tuple(names), tuple(canon), tuple(regions), sort_by_ring(canon, regions, pos))

    @classmethod
    def from_preset(cls, name: str) -> Montage:
        """Return a released per-dataset table (or ``PhysioNet-MI``) by name (any case).

        Parameters
        ----------
        name : str
            One of :func:`list_presets`.

        Returns
        -------
        Montage
        """
        presets = _presets()
        match = {k.lower(): k for k in presets}.get(str(name).lower())
        if match is None:
            near = closest(str(name), list(presets), n=3)
            hint = f" Did you mean {', '.join(repr(n) for n in near)}?" if near else ""
            raise ValueError(f"preset={name!r} is unknown; expected one of {list(presets)}.{hint}")
        p = presets[match]
        canon = tuple(_canonical_or_given(c) for c in p["channels"])
        return cls(tuple(p["channels"]), canon, tuple(p["regions"]), tuple(p["order"]), match)

    @classmethod
    def from_info(cls, info: Any) -> Montage:
        """Build a montage from the EEG channels of an :class:`mne.Info` (bads included).

        Positions are read from ``info['chs'][i]['loc'][:3]`` where set (non-zero, finite).

        Parameters
        ----------
        info : mne.Info

        Returns
        -------
        Montage
        """
        import mne

        if not isinstance(info, mne.Info):
            raise TypeError(f"info must be an mne.Info, got {type(info).__name__}")
        picks = mne.pick_types(info, meg=False, eeg=True, exclude=[])
        if len(picks) == 0:
            raise ValueError("info has no EEG channels; expected at least one channel of "
                             "type 'eeg'")
        names = [info["ch_names"][i] for i in picks]
        positions = positions_from_chs([info["chs"][i] for i in picks])
        return cls.from_names(names, positions or None)

    def to_dict(self) -> dict:
        """Return a JSON-serialisable dict (inverse of :meth:`from_dict`)."""
        return {"channels": list(self.channels), "canonical": list(self.canonical),
                "regions": list(self.regions), "order": list(self.order), "preset": self.preset}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Montage:
        """Rebuild a montage from :meth:`to_dict` output (``canonical``/``preset`` optional)."""
        if not isinstance(d, Mapping):
            raise TypeError(f"d must be a dict, got {type(d).__name__}")
        missing = [k for k in ("channels", "regions", "order") if k not in d]
        if missing:
            raise ValueError(f"montage dict lacks keys {missing}; expected channels, canonical, "
                             f"regions, order, preset")
        canon = d.get("canonical")
        if canon is None:
            canon = [_canonical_or_given(c) for c in d["channels"]]
        return cls(tuple(d["channels"]), tuple(canon), tuple(d["regions"]), tuple(d["order"]),
                   d.get("preset"))


def resolve_montage(spec: Any) -> Montage:
    """Turn a montage specification into a :class:`Montage`.

    Parameters
    ----------
    spec : Montage | str | sequence of str | mne.Info | dict
        A montage; a preset name; channel names (:meth:`Montage.from_names`); an
        :class:`mne.Info` (:meth:`Montage.from_info`); or a :meth:`Montage.to_dict` dict.

    Returns
    -------
    Montage
    """
    if isinstance(spec, Montage):
        return spec
    if type(spec).__name__ == "Info":
        return Montage.from_info(spec)
    if isinstance(spec, str):
        return Montage.from_preset(spec)
    if isinstance(spec, Mapping) and "channels" in spec and "order" in spec:
        return Montage.from_dict(spec)
    if isinstance(spec, Sequence | np.ndarray):
        return Montage.from_names(list(spec))
    raise TypeError(f"montage={spec!r} is not understood; expected a Montage, a preset name "
                    f"(one of {list_presets()}), a list of channel names or an mne.Info")
