"""The recipe's channels of a recording, as :mod:`csbrain.benchmark.prepare` reads them.

Channels are matched by name without ``EEG ``/``-REF``/``-LE``/``-AR`` decorations and trailing
dots; a bipolar pair ``A-B`` the file does not store is derived as ``A - B`` from referential
channels; ``channel_slice`` and ``drop_channels`` then apply. A channel that is neither stored
nor derivable raises :class:`MissingChannelsError`, or gives a row of zeros where the recipe
says ``missing_channels: "zeros"``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import numpy as np

from csbrain._checks import more
from csbrain.benchmark.recipes import BenchmarkError

logger = logging.getLogger(__name__)

__all__ = ["MissingChannelsError", "channel_key", "pick_channels"]


class MissingChannelsError(BenchmarkError):
    """A recording lacks channels of the recipe (``prepare`` records it as skipped)."""


def channel_key(name: str) -> str:
    """``"EEG Fp1-REF"`` -> ``"FP1"``: upper case, no spaces, no ``EEG`` prefix, no
    ``-REF``/``-LE``/``-AR`` suffix, no trailing dots."""
    n = name.strip().upper().replace(" ", "")
    n = re.sub(r"^EEG", "", n)
    n = re.sub(r"-(REF|LE|AR)$", "", n)
    return n.rstrip(".")


def pick_channels(rec, recipe: dict[str, Any]) -> tuple[np.ndarray, list[str]]:
    """Rows of the recipe's channels (derived bipolar pairs) and their names."""
    have = {}
    for i, n in enumerate(rec.ch_names):
        have.setdefault(channel_key(n), i)
    want = recipe["channels"]
    if want is None:
        rows, names = np.asarray(rec.data, dtype=np.float64), list(rec.ch_names)
    else:
        out, missing = [], []
        for w in want:
            k = channel_key(w)
            if k in have:
                out.append(rec.data[have[k]])
                continue
            a, _, b = k.partition("-")
            if b and a in have and b in have:
                out.append(np.asarray(rec.data[have[a]], float) - rec.data[have[b]])
            else:
                missing.append(w)
        if missing and recipe.get("missing_channels") == "zeros":
            logger.info("recording %s: channels [%s] missing, filled with zeros (as the "
                        "released script)", rec.name, more(missing, 10))
            n = np.asarray(rec.data).shape[1]
            out = [np.zeros(n) if w in missing else out.pop(0) for w in want]
        elif missing:
            raise MissingChannelsError(f"recording {rec.name!r}: channels "
                                       f"[{more(missing, 10)}] are neither stored nor "
                                       f"derivable (it has [{more(rec.ch_names, 30)}])")
        rows, names = np.asarray(out, dtype=np.float64), list(want)
    if recipe.get("channel_slice"):
        lo, hi = recipe["channel_slice"]
        rows, names = rows[lo:hi], names[lo:hi]
    if recipe.get("drop_channels"):
        drop = {channel_key(d) for d in recipe["drop_channels"]}
        keep = [i for i, n in enumerate(names) if channel_key(n) not in drop]
        rows, names = rows[keep], [names[i] for i in keep]
    return rows, names
