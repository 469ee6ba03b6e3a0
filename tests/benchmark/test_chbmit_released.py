"""CHB-MIT released windows equal CBraMod ``process1.py``/``process2.py`` rules on the fixture."""

from __future__ import annotations

from csbrain.benchmark.converters import chbmit
from csbrain.benchmark.recipes import get_recipe
from tests.benchmark.fixtures.chbmit import make


def _script(times_s, n):
    """process1.py l.50-53 and process2.py l.108-148 restated on sample indices at 256 Hz."""
    times = [(int(s) * 256 - 1, int(e) * 256 - 1) for s, e in times_s]
    out = []
    for i in range(0, n, 2560):
        if i + 2560 <= n:
            lab = int(any(i < s < i + 2560 or i < e < i + 2560 for s, e in times))
            out.append((i, lab))
    for s, e in times:
        out += [(i, 1) for i in range(max(0, s - 256), min(e + 256, n), 1280) if i + 2560 <= n]
    return out


def test_released_windows_match_script(tmp_path):
    raw = make(tmp_path)
    recipe = get_recipe("chbmit", "released")
    recs = list(chbmit.recordings(raw, recipe=recipe))
    assert any(seg.label for r in recs for seg in r.segments)
    for r in recs:
        table = chbmit.seizures(raw / r.subject / f"{r.subject}-summary.txt")
        got = [(int(round(s.onset_s * 256)), s.label) for s in r.segments]
        assert got == _script(table[f"{r.name}.edf"], r.data.shape[1])
        assert all(abs(s.duration_s - 10) < 1e-9 for s in r.segments)


def test_fixed_unchanged(tmp_path):
    raw = make(tmp_path)
    a = [r.segments for r in chbmit.recordings(raw)]
    b = [r.segments for r in chbmit.recordings(raw, recipe=get_recipe("chbmit", "fixed"))]
    assert a == b and a[0][1].label == 1 and a[0][1].onset_s == 20
