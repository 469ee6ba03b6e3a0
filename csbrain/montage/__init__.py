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
it, then towards the left neighbour (:func:`csbrain._montage_geometry.sort_by_ring`).

A given position overrides a 10-05 name lying more than :data:`NAME_POSITION_TOLERANCE`
(5 cm) from it (:func:`position_overrides_name`): the name is then a label only (BioSemi
``A1`` is the vertex, not the 10-05 ``A1`` by the ear).

Rules and value object
----------------------
Each rule is a function of one channel: :func:`canonical_name`, :func:`region_of`,
:func:`position_of`, :func:`position_overrides_name` and :func:`channel_site` (all three
for a name and an optional position). :class:`Montage` is a frozen value object that
refuses inconsistent contents; :meth:`Montage.from_names` applies the rules. Presets are
the released per-dataset tables, kept as data (``resources/montage_presets.json``).
"""

from __future__ import annotations

from csbrain._montage_geometry import positions_from_chs
from csbrain.montage.rules import (
                                   N_REGIONS,
                                   NAME_POSITION_TOLERANCE,
                                   REGION_NAMES,
                                   Site,
                                   canonical_name,
                                   channel_site,
                                   position_of,
                                   position_overrides_name,
                                   region_of,
)
from csbrain.montage.rules import _tables as _tables  # the template table, for tests/benchmarks
from csbrain.montage.value import Montage, list_presets, resolve_montage

__all__ = ["NAME_POSITION_TOLERANCE", "REGION_NAMES", "N_REGIONS", "Montage", "Site",
           "canonical_name", "region_of", "position_of", "position_overrides_name",
           "channel_site", "positions_from_chs", "list_presets", "resolve_montage"]
