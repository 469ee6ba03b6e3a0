"""Tests for csbrain.montage: names, regions, ring order, presets, validation."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from csbrain.montage import (
    N_REGIONS,
    REGION_NAMES,
    Montage,
    canonical_name,
    list_presets,
    region_of,
    resolve_montage,
)

PRETRAIN_19 = "FP1 FP2 F3 F4 C3 C4 P3 P4 O1 O2 F7 F8 T3 T4 T5 T6 FZ CZ PZ".split()
PHYSIONET_64 = (
    "Fc5 Fc3 Fc1 Fcz Fc2 Fc4 Fc6 C5 C3 C1 Cz C2 C4 C6 Cp5 Cp3 Cp1 Cpz Cp2 Cp4 Cp6 Fp1 Fpz Fp2 "
    "Af7 Af3 Afz Af4 Af8 F7 F5 F3 F1 Fz F2 F4 F6 F8 Ft7 Ft8 T7 T8 T9 T10 Tp7 Tp8 P7 P5 P3 P1 Pz "
    "P2 P4 P6 P8 Po7 Po3 Poz Po4 Po8 O1 Oz O2 Iz").split()
SEED_V_62 = (
    "FP1 FPZ FP2 AF3 AF4 F7 F5 F3 F1 FZ F2 F4 F6 F8 FT7 FC5 FC3 FC1 FCZ FC2 FC4 FC6 FT8 T7 C5 C3 "
    "C1 CZ C2 C4 C6 T8 TP7 CP5 CP3 CP1 CPZ CP2 CP4 CP6 TP8 P7 P5 P3 P1 PZ P2 P4 P6 P8 PO7 PO5 PO3 "
    "POZ PO4 PO6 PO8 CB1 O1 OZ O2 CB2").split()
FRONTAL, PARIETAL, TEMPORAL, OCCIPITAL, CENTRAL = range(5)


@pytest.fixture(scope="module")
def manifest(golden) -> dict:
    """The released montage tables (the ``golden`` fixture skips where they are absent)."""
    return json.loads((golden / "manifest.json").read_text())


def test_region_names():
    assert REGION_NAMES == ("frontal", "parietal", "temporal", "occipital", "central")
    assert N_REGIONS == len(REGION_NAMES) == 5


@pytest.mark.parametrize("raw, canon", [
    ("FP1", "Fp1"), ("fp1", "Fp1"), ("  Fp1 ", "Fp1"), ("EEG FP1-REF", "Fp1"),
    ("eeg fp1-le", "Fp1"), ("EEG_Cz-AVG", "Cz"), ("Fcz.", "FCz"), ("FPZ", "Fpz"), ("af7", "AF7"),
    ("OZ", "Oz"), ("T3", "T7"), ("t4", "T8"), ("T5", "P7"), ("T6", "P8"), ("cb1", "CB1"),
    ("FP1-F7", "Fp1-F7"), ("EEG T3-T5", "T7-P7"), ("fp2-f8", "Fp2-F8"),
])
def test_canonical_name(raw, canon):
    assert canonical_name(raw) == canon


def test_aliases_are_the_same_electrode():
    for old, new in [("T3", "T7"), ("T4", "T8"), ("T5", "P7"), ("T6", "P8")]:
        assert canonical_name(old) == canonical_name(new) == new
        assert region_of(old) == region_of(new) == TEMPORAL


@pytest.mark.parametrize("name, region", [
    ("Fp1", FRONTAL), ("Fpz", FRONTAL), ("AF3", FRONTAL), ("AF7", FRONTAL), ("F9", FRONTAL),
    ("Fz", FRONTAL), ("Nz", FRONTAL), ("FC5", CENTRAL), ("FCz", CENTRAL), ("FT7", TEMPORAL),
    ("FT10", TEMPORAL), ("C5", CENTRAL), ("Cz", CENTRAL), ("CPz", CENTRAL), ("CP6", CENTRAL),
    ("T7", TEMPORAL), ("T10", TEMPORAL), ("TP7", TEMPORAL), ("TP10", TEMPORAL),
    ("P3", PARIETAL), ("Pz", PARIETAL), ("P6", PARIETAL), ("P7", TEMPORAL), ("P8", TEMPORAL),
    ("P9", TEMPORAL), ("P10", TEMPORAL), ("PO3", PARIETAL), ("POz", PARIETAL),
    ("PO10", PARIETAL), ("O1", OCCIPITAL), ("Oz", OCCIPITAL), ("Iz", OCCIPITAL),
    ("I1", OCCIPITAL), ("CB2", OCCIPITAL), ("FP1-F7", FRONTAL), ("T3-T5", TEMPORAL),
    ("C3-P3", CENTRAL), ("P7-O1", TEMPORAL),
])
def test_region_rule(name, region):
    assert region_of(name) == region


def test_extended_names_take_nearest_region():
    assert region_of("FCC3h") == CENTRAL
    assert region_of("AFF1h") == FRONTAL
    assert region_of("POO1") in (PARIETAL, OCCIPITAL)
    assert region_of("A1") == TEMPORAL


@pytest.mark.parametrize("names", [
    PRETRAIN_19,
    [n.lower() for n in PRETRAIN_19],
    [{"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}.get(n, n) for n in PRETRAIN_19],
    [f"EEG {n}-REF" for n in PRETRAIN_19],
])
def test_pretraining_19_regions(names):
    m = Montage.from_names(names)
    by_region = {r: {PRETRAIN_19[i] for i in range(19) if m.regions[i] == r} for r in range(5)}
    assert by_region[FRONTAL] == {"FP1", "FP2", "F3", "F4", "F7", "F8", "FZ"}
    assert by_region[CENTRAL] == {"C3", "C4", "CZ"}
    assert by_region[PARIETAL] == {"P3", "P4", "PZ"}
    assert by_region[OCCIPITAL] == {"O1", "O2"}
    assert by_region[TEMPORAL] == {"T3", "T4", "T5", "T6"}
    assert m.region_sizes == (7, 3, 4, 2, 3)


def test_from_names_structure():
    m = Montage.from_names(SEED_V_62)
    assert len(m) == m.n_chans == 62 and m.preset is None
    assert sorted(m.order) == list(range(62))
    assert list(m.sorted_regions) == sorted(m.regions)
    assert m.sorted_channels == tuple(SEED_V_62[i] for i in m.order)
    assert sum(m.region_sizes) == 62
    assert m.canonical[SEED_V_62.index("FPZ")] == "Fpz"


def test_ring_order_is_independent_of_input_order():
    ref = Montage.from_names(SEED_V_62)
    for seed in range(3):
        names = SEED_V_62[:]
        random.Random(seed).shuffle(names)
        assert Montage.from_names(names).sorted_channels == ref.sorted_channels


def test_ring_order_start_and_orientation():
    m = Montage.from_names(PRETRAIN_19)
    frontal = [m.canonical[i] for i in m.order if m.regions[i] == FRONTAL]
    assert frontal[0] in ("Fp1", "Fp2")  # most anterior electrode first
    assert frontal == ["Fp2", "Fp1", "F7", "F3", "Fz", "F4", "F8"]


def test_ring_neighbours_are_near():
    from csbrain.montage import _tables

    pos = _tables()[2]
    m = Montage.from_names(SEED_V_62)
    ok = total = 0
    for r in range(5):
        ring = [m.canonical[i] for i in m.order if m.regions[i] == r]
        if len(ring) < 4:
            continue
        p = np.array([pos[c] for c in ring])
        knn = np.argsort(np.linalg.norm(p[:, None] - p[None], axis=-1), axis=1)[:, 1:4]
        for i in range(len(ring)):
            j = (i + 1) % len(ring)
            total += 1
            ok += bool(j in knn[i] and i in knn[j])
    assert ok / total >= 0.8, (ok, total)


def test_bipolar():
    m = Montage.from_names(["FP1-F7", "FP1-F3", "T3-T5", "C3-P3"])
    assert m.canonical == ("Fp1-F7", "Fp1-F3", "T7-P7", "C3-P3")
    assert m.regions == (FRONTAL, FRONTAL, TEMPORAL, CENTRAL)
    # pairs sharing Fp1 are ordered by their second electrode, whatever the input order
    m2 = Montage.from_names(["C3-P3", "T3-T5", "FP1-F3", "FP1-F7"])
    assert m.sorted_channels == m2.sorted_channels


def test_unknown_name_error_lists_closest():
    with pytest.raises(ValueError, match=r"'FPP1' is not a 10-05 electrode name; closest: .*Fp1"):
        canonical_name("FPP1")
    with pytest.raises(ValueError, match=r"positions=\{'FPP1'"):
        Montage.from_names(["Fp1", "FPP1"])
    with pytest.raises(ValueError, match=r"'FP1-XX': 'XX' is not a 10-05"):
        canonical_name("FP1-XX")
    with pytest.raises(TypeError):
        canonical_name(3)


def test_unknown_name_with_position():
    from csbrain.montage import _tables

    pos = _tables()[2]
    xyz = tuple(pos["O1"] + 0.002)
    m = Montage.from_names(["Fp1", "Cz", "MyOcc"], positions={"MyOcc": xyz})
    assert m.canonical == ("Fp1", "Cz", "MyOcc")
    assert m.regions == (FRONTAL, CENTRAL, OCCIPITAL)
    with pytest.raises(ValueError, match="not channels"):
        Montage.from_names(["Fp1"], positions={"Cz": xyz})
    with pytest.raises(ValueError, match=r"positions\['MyOcc'\]"):
        Montage.from_names(["MyOcc"], positions={"MyOcc": (0.0, np.nan, 0.0)})


def test_duplicates_rejected():
    with pytest.raises(ValueError, match=r"duplicate channels \['Cz'\]"):
        Montage.from_names(["Cz", "Fz", "Cz"])
    with pytest.raises(ValueError, match="same electrode"):
        Montage.from_names(["T3", "T7"])
    with pytest.raises(ValueError, match=r"channels has duplicate names \['A'\]"):
        Montage(("A", "A"), ("A", "A"), (0, 0), (0, 1))


def test_from_info_matches_from_names():
    mne = pytest.importorskip("mne")
    names = ["Fp1", "Fp2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2", "F7", "F8", "T7",
             "T8", "P7", "P8", "Fz", "Cz", "Pz"]
    info = mne.create_info(names + ["ECG"], 200.0, ["eeg"] * 19 + ["ecg"])
    template = "colin27_1020" if "colin27_1020" in mne.channels.get_builtin_montages() \
        else "standard_1020"  # renamed in MNE 1.13
    info.set_montage(template, on_missing="ignore")
    m = Montage.from_info(info)
    assert m.channels == tuple(names)
    ref = Montage.from_names(names)
    assert (m.regions, m.order) == (ref.regions, ref.order)
    assert resolve_montage(info) == m
    bare = mne.create_info(["EEG FP1-REF", "EEG CZ-REF"], 200.0, "eeg")  # no positions
    assert Montage.from_info(bare).canonical == ("Fp1", "Cz")


def test_dict_round_trip():
    for m in (Montage.from_names(SEED_V_62), Montage.from_preset("tuev")):
        d = json.loads(json.dumps(m.to_dict()))
        assert Montage.from_dict(d) == m
        assert resolve_montage(d) == m
    with pytest.raises(ValueError, match="lacks keys"):
        Montage.from_dict({"channels": ["Cz"]})


def test_resolve_montage():
    m = Montage.from_preset("TUEG")
    assert resolve_montage(m) is m
    assert resolve_montage("tueg") == m
    assert resolve_montage(PRETRAIN_19) == Montage.from_names(PRETRAIN_19)
    with pytest.raises(TypeError, match="not understood"):
        resolve_montage(3.0)


def test_presets_match_released_tables(manifest):
    assert list_presets()[:len(manifest)] == list(manifest)
    for name, entry in manifest.items():
        m = Montage.from_preset(name)
        assert m.preset == name
        assert list(m.channels) == entry["channels"]
        assert list(m.regions) == entry["regions"], name
        assert list(m.order) == entry["sorted_indices"], name


def test_preset_lookup_and_errors():
    assert Montage.from_preset("seed-v").preset == "SEED-V"
    assert Montage.from_preset("TUEG").canonical[12] == "T7"
    with pytest.raises(ValueError, match=r"preset='SEEDV' is unknown; expected one of .*"
                                         r"Did you mean 'SEED-V'"):
        Montage.from_preset("SEEDV")


def test_physionet_preset_uses_the_rule():
    m = Montage.from_preset("PhysioNet-MI")
    assert len(m) == 64 and list(m.channels) == PHYSIONET_64
    ref = Montage.from_names(PHYSIONET_64)
    assert (m.regions, m.order) == (ref.regions, ref.order)
    assert m.canonical[PHYSIONET_64.index("Fcz")] == "FCz"


def test_all_presets_load():
    for name in list_presets():
        m = Montage.from_preset(name)
        assert list(m.sorted_regions) == sorted(m.regions)


@pytest.mark.parametrize("kwargs, match", [
    (dict(regions=(0, 7)), r"regions\[1\]=7 is not a region id; expected 0..4 \(frontal, "
                           r"parietal, temporal, occipital, central\)"),
    (dict(regions=(0,)), r"regions has 1 entries but channels has 2"),
    (dict(order=(0, 0)), r"order repeats indices \[0\]"),
    (dict(order=(0, 2)), r"order\[1\]=2 is not a channel index; expected 0..1"),
    (dict(regions=(4, 0), order=(0, 1)), r"regions\[order\] must be non-decreasing"),
    (dict(channels=()), None),
])
def test_validation_messages(kwargs, match):
    args = dict(channels=("Fz", "Cz"), canonical=("Fz", "Cz"), regions=(0, 4), order=(0, 1))
    args.update(kwargs)
    if match is None:
        with pytest.raises(ValueError):
            Montage(**args)
    else:
        with pytest.raises(ValueError, match=match):
            Montage(**args)


def test_constructor_coerces_to_tuples():
    m = Montage(["Fz", "Cz"], ["Fz", "Cz"], [0, 4], np.array([0, 1]))
    assert m.order == (0, 1) and isinstance(m.order[0], int) and isinstance(m.channels, tuple)
    assert "frontal 1" in repr(m)


def test_positions_override_a_name_that_means_another_site():
    """BioSemi 'A1' is the vertex: with its position it is placed there, not by the ear."""
    from csbrain._montage_geometry import template_positions

    tpl = template_positions()
    names = ["A1", "Fz", "Oz"]
    positions = {"A1": tpl["Cz"], "Fz": tpl["Fz"], "Oz": tpl["Oz"]}
    m = Montage.from_names(names, positions=positions)
    assert m.regions == (4, 0, 3)          # A1 at the vertex -> central
    assert m.canonical[0] == "A1"
    assert Montage.from_names(["A1"]).regions[0] != 4  # the 10-05 A1 (ear) by name alone


# ---------------------------------------------------------------------------- the value object
@pytest.mark.parametrize("kwargs, error, match", [
    (dict(canonical=("Cz", "Cz")), ValueError,
     r"channels \[\['Fz', 'Cz'\]\] are the same electrode\(s\) \['Cz'\]"),
    (dict(channels=(" ", "Cz")), ValueError, r"channels\[0\]=' ' is blank"),
    (dict(canonical=("Fz", "")), ValueError, r"canonical\[1\]='' is blank"),
    (dict(canonical=("Fz", 3)), TypeError, r"canonical\[1\]=3 must be a str"),
    (dict(channels="FzCz"), TypeError, "channels must be a sequence, got str"),
    (dict(order=None), TypeError, "order must be a sequence, got NoneType"),
    (dict(regions=(0, True)), ValueError, r"regions\[1\]=True is not a region id"),
    (dict(regions=(0, 4.0)), ValueError, r"regions\[1\]=4.0 is not a region id"),
    (dict(order=(0, -1)), ValueError, r"order\[1\]=-1 is not a channel index; expected 0..1"),
    (dict(preset=3), TypeError, "preset=3 must be a str or None"),
])
def test_invalid_value_objects_are_refused(kwargs, error, match):
    args = dict(channels=("Fz", "Cz"), canonical=("Fz", "Cz"), regions=(0, 4), order=(0, 1))
    with pytest.raises(error, match=match):
        Montage(**(args | kwargs))


def test_montage_errors_are_user_errors():
    from csbrain._checks import CSBrainError

    with pytest.raises(CSBrainError):
        Montage(("Fz", "Cz"), ("Fz", "Cz"), (4, 0), (0, 1))
    with pytest.raises(CSBrainError):
        canonical_name("FPP1")


def test_from_dict_refuses_a_string_and_unknown_keys():
    good = Montage.from_names(["Fz", "Cz"]).to_dict()
    with pytest.raises(TypeError, match="channels must be a sequence, got str"):
        Montage.from_dict(good | {"channels": "Cz", "canonical": None})
    with pytest.raises(ValueError, match=r"unknown keys \['regoins'\].*'regions'"):
        Montage.from_dict(good | {"regoins": [0, 4]})
    assert Montage.from_dict({k: good[k] for k in ("channels", "regions", "order")}) \
        == Montage.from_names(["Fz", "Cz"])


def test_canonical_name_default():
    assert canonical_name("FPP1", default=None) is None
    assert canonical_name("EEG FP1-REF", default=None) == "Fp1"
    assert canonical_name("X1@cap", default="X1@cap") == "X1@cap"


# ------------------------------------------------------------------------ the rules as functions
def test_rules_agree_with_from_names():
    from csbrain._montage_geometry import template_positions
    from csbrain.montage import channel_site, position_of, position_overrides_name

    tpl = template_positions()
    np.testing.assert_allclose(position_of("t3"), tpl["T7"])
    np.testing.assert_allclose(position_of("FP1-F7"), tpl["Fp1"] + 0.1 * (tpl["F7"] - tpl["Fp1"]))
    assert position_overrides_name("A1", tpl["Cz"])
    assert not position_overrides_name("Cz", tpl["Cz"] + 0.01)
    assert not position_overrides_name("Fp1-F7", tpl["Oz"])  # a pair is never overridden
    site = channel_site("A1", tpl["Cz"])
    assert (site.canonical, site.region) == ("A1", CENTRAL)
    assert channel_site("T3")[:2] == ("T7", TEMPORAL)
    with pytest.raises(ValueError, match="not a 10-05 electrode name"):
        channel_site("MyOcc")
    names = ["A1", "Fz", "T3"]
    m = Montage.from_names(names, positions={"A1": tpl["Cz"]})
    sites = [channel_site(n, tpl["Cz"] if n == "A1" else None) for n in names]
    assert m.canonical == tuple(s.canonical for s in sites)
    assert m.regions == tuple(s.region for s in sites) == tuple(
        region_of(n) if n != "A1" else CENTRAL for n in names)
