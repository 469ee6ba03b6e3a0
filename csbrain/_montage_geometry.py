"""Electrode geometry behind :mod:`csbrain.montage`: template positions, positions given by
the user or read from channel dicts, and ring order.

Template positions are MNE's 10-05 template (``colin27_1005``, called ``standard_1005``
before MNE 1.13) transformed to the MNE head frame (x towards the right ear, y towards the
nasion, z up; metres), plus ``Nz`` (the nasion fiducial) and the cerebellar ``CB1``/``CB2``
(MNE's ``colin27_postfixed`` ``Cb1``/``Cb2`` when present, else 10% of the Nz-Iz distance
below O1/O2). MNE is imported lazily; no torch.
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

BIPOLAR_NUDGE = 0.1  # a pair A-B sits this fraction of the way from A to B
_TOL = 1e-12  # smallest tour-length gain that counts as an improvement (metres)


def _make_montage(new: str, old: str):
    import mne

    name = new if new in mne.channels.get_builtin_montages() else old
    with warnings.catch_warnings():
        # MNE 1.13 renamed standard_* to colin27_*; the old names warn.
        warnings.simplefilter("ignore", FutureWarning)
        try:
            return mne.channels.make_standard_montage(name)
        except ValueError:
            return None


@functools.lru_cache(maxsize=1)
def template_positions() -> dict[str, np.ndarray]:
    """Return ``{MNE 10-05 name: head-frame position (m)}`` plus ``Nz``, ``CB1``, ``CB2``.

    The dict keeps MNE's own entries ``T3``/``T4``/``T5``/``T6`` (same sites as T7/T8/P7/P8).
    """
    from mne.transforms import apply_trans, get_ras_to_neuromag_trans

    m1005 = _make_montage("colin27_1005", "standard_1005")
    pos = m1005.get_positions()
    trans = get_ras_to_neuromag_trans(pos["nasion"], pos["lpa"], pos["rpa"])
    out = {name: apply_trans(trans, xyz) for name, xyz in pos["ch_pos"].items()}
    out["Nz"] = apply_trans(trans, pos["nasion"])
    post = _make_montage("colin27_postfixed", "standard_postfixed")
    post_pos = post.get_positions() if post is not None else None
    if (post_pos is not None and {"Cb1", "Cb2"} <= set(post_pos["ch_pos"])
            and np.allclose(post_pos["nasion"], pos["nasion"])):
        out["CB1"] = apply_trans(trans, post_pos["ch_pos"]["Cb1"])
        out["CB2"] = apply_trans(trans, post_pos["ch_pos"]["Cb2"])
    else:  # pragma: no cover - depends on the MNE version
        logger.debug("no Cb1/Cb2 template in this MNE; placing CB1/CB2 below O1/O2")
        drop = np.array([0.0, 0.0, 0.1 * np.linalg.norm(out["Nz"] - out["Iz"])])
        out["CB1"] = out["O1"] - drop
        out["CB2"] = out["O2"] - drop
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


def nearest(points: np.ndarray, query: np.ndarray) -> int:
    """Index of the row of ``points`` (n, 3) nearest to ``query`` (3,) (first on ties)."""
    d = np.linalg.norm(np.asarray(points, float) - np.asarray(query, float)[None, :], axis=1)
    return int(np.argmin(d))


def _two_opt_pass(tour: list[int], dist: np.ndarray) -> bool:
    """One sweep of 2-opt over a closed tour (``tour[0]`` never moves); True if improved."""
    n = len(tour)
    improved = False
    for i in range(n - 2):
        t = np.asarray(tour)
        a, b = t[i], t[i + 1]
        js = np.arange(i + 2, n if i > 0 else n - 1)
        if len(js) == 0:
            continue
        c, d = t[js], t[(js + 1) % n]
        gain = dist[a, b] + dist[c, d] - dist[a, c] - dist[b, d]
        k = int(np.argmax(gain))
        if gain[k] > _TOL:
            j = int(js[k])
            tour[i + 1:j + 1] = tour[i + 1:j + 1][::-1]
            improved = True
    return improved


def _or_opt_pass(tour: list[int], dist: np.ndarray) -> bool:
    """Move one segment of 1-3 electrodes (either way round) to its best place; True if moved."""
    n = len(tour)
    for length in (1, 2, 3):
        if length > n - 3:
            break
        for i in range(1, n - length + 1):
            seg = tour[i:i + length]
            prev, nxt = tour[i - 1], tour[(i + length) % n]
            removed = dist[prev, seg[0]] + dist[seg[-1], nxt] - dist[prev, nxt]
            rest = np.asarray(tour[:i] + tour[i + length:])
            a, b = rest, np.roll(rest, -1)
            for s in (seg, seg[::-1]):
                added = dist[a, s[0]] + dist[s[-1], b] - dist[a, b]
                j = int(np.argmin(added))
                if added[j] < removed - _TOL:
                    rest_l = rest.tolist()
                    tour[:] = rest_l[:j + 1] + s + rest_l[j + 1:]
                    return True
    return False


def ring_order(points: np.ndarray) -> list[int]:
    """Order electrodes so that neighbours are adjacent around a closed ring.

    Parameters
    ----------
    points : ndarray, shape (n, 3)
        Head-frame positions. Rows are assumed to be in a canonical order (the caller
        sorts them by a key that does not depend on the input order); that order breaks
        every remaining tie.

    Returns
    -------
    list of int
        A permutation of ``range(n)``: start at the most anterior electrode (largest y;
        ties: smallest x), nearest-neighbour tour under 3-D Euclidean distance, then 2-opt
        and Or-opt (moving a run of 1-3 electrodes) until no move shortens the closed
        tour, then oriented so that the electrode after
        the start is the start's left (smaller-x) ring neighbour.
    """
    pts = np.asarray(points, dtype=float).reshape(-1, 3)
    n = len(pts)
    if n == 0:
        return []
    rank = np.arange(n)
    start = int(np.lexsort((rank, pts[:, 0], -pts[:, 1]))[0])
    if n <= 2:
        return [start] + [i for i in range(n) if i != start]
    dist = np.linalg.norm(pts[:, None, :] - pts[None, :, :], axis=-1)
    tour = [start]
    left = [i for i in range(n) if i != start]
    while left:
        last = tour[-1]
        nxt = min(left, key=lambda k: (dist[last, k], k))
        tour.append(nxt)
        left.remove(nxt)
    for _ in range(100 * n * n):  # every move strictly shortens the tour: this terminates
        if not (_two_opt_pass(tour, dist) or _or_opt_pass(tour, dist)):
            break
    first, last = tour[1], tour[-1]
    if (pts[last, 0], last) < (pts[first, 0], first):
        tour[1:] = tour[1:][::-1]
    return tour


def check_positions(names: Sequence[str],
                    positions: Mapping[str, Any] | None) -> dict[str, np.ndarray]:
    """Validate ``{name: (x, y, z)}`` (metres, head frame) against the channel names."""
    if positions is None:
        return {}
    if not isinstance(positions, Mapping):
        raise TypeError("positions must be a dict {name: (x, y, z)}, "
                        f"got {type(positions).__name__}")
    extra = [k for k in positions if k not in set(names)]
    if extra:
        raise ValueError(f"positions has names that are not channels: {extra}; "
                         f"expected keys among {list(names)}")
    out = {}
    for key, value in positions.items():
        xyz = np.asarray(value, dtype=float)
        if xyz.shape != (3,) or not np.all(np.isfinite(xyz)):
            raise ValueError(f"positions[{key!r}]={value!r} is not a finite (x, y, z) in metres")
        if np.linalg.norm(xyz) > 0.5:
            logger.warning("positions[%r]=%s is over 0.5 m from the origin; positions are "
                           "expected in metres, MNE head frame", key, xyz.tolist())
        out[key] = xyz
    return out


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


def sort_by_ring(canonical: Sequence[str], regions: Sequence[int],
                 pos: Sequence[np.ndarray], n_regions: int = 5) -> tuple[int, ...]:
    """Concatenate, in ascending region id, each region's :func:`ring_order` (input indices).

    Members are first sorted by (-y, x, z, canonical name), a key that does not depend on
    the input order.
    """
    order: list[int] = []
    for r in range(n_regions):
        members = [i for i, g in enumerate(regions) if g == r]
        members.sort(key=lambda i: (-pos[i][1], pos[i][0], pos[i][2], canonical[i]))
        tour = ring_order(np.array([pos[i] for i in members]).reshape(-1, 3))
        order.extend(members[k] for k in tour)
    return tuple(order)


def bipolar_position(pos: Mapping[str, np.ndarray], canonical: str) -> np.ndarray:
    """Position of an electrode; of a pair ``A-B``: one tenth of the way from A to B."""
    if "-" in canonical:
        a, b = canonical.split("-")
        return pos[a] + BIPOLAR_NUDGE * (pos[b] - pos[a])
    return pos[canonical]
