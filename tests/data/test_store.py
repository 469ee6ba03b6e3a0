"""The window store: layout, manifest, bad inputs as counted skips, resumability under kills."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from csbrain.configio import load_config
from csbrain.data.pipeline import prepare
from csbrain.data.prepconfig import PrepConfig
from csbrain.data.readers import Recording, find_recordings
from csbrain.data.store import StoreError, WindowStore, open_store
from tests.data.conftest import make_raw, write

REPO = Path(__file__).resolve().parents[2]
SETS = ["windows.length_s=10"]


def cfg_of(*items: str) -> PrepConfig:
    return load_config(PrepConfig, None, [*SETS, *items])


def snapshot(path) -> dict:
    """Everything a store holds, for equality checks."""
    store = open_store(path)
    out = {"manifest": store.manifest(), "channels": store.channels(),
           "skipped": store.skipped(), "identity": store.identity}
    for rec in store.recordings():
        x, y, start = store.arrays(rec)
        out[rec] = (store.entry(rec), x[:], y[:], start[:])
    assert not list((Path(path) / "staging").iterdir()), "staging left behind"
    assert not (Path(path) / "lock").exists()
    return out


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], tuple):
            assert a[key][0] == b[key][0]
            for u, v in zip(a[key][1:], b[key][1:]):
                np.testing.assert_array_equal(u, v)
        else:
            assert a[key] == b[key], key


def test_prepare_layout_manifest_and_dataset_shapes(edf_dir, tmp_path):
    out = tmp_path / "store"
    summary = prepare(find_recordings([edf_dir]), out, cfg_of())
    assert (summary.prepared, summary.windows_kept, summary.store_windows) == (3, 12, 12)
    store = open_store(out)
    assert store.recordings() == ["rec0", "rec1", "rec2"]
    e = store.entry("rec1")
    assert e["channels"][12:16] == ["T7", "T8", "P7", "P8"] and e["source_channels"][12] == "T3"
    assert e["n_windows"] == 4 and e["sfreq"] == 200.0 and e["units"] == "100 uV"
    assert len(e["source_sha256"]["rec1.edf"]) == 64 and e["source_sfreq"] == 250.0
    assert set(e["rejected"]) >= {"nan", "flat", "amplitude"} and e["labels"] == {"-1": 4}
    x, y, start = store.arrays("rec1")
    assert x.shape == (4, 19, 10, 200) and x.dtype == np.float32 and x.chunks == (1, 19, 10, 200)
    np.testing.assert_array_equal(start[:], [0, 2000, 4000, 6000])
    m = json.loads((out / "manifest.json").read_text())
    assert m["config"]["windows"]["length_s"] == 10.0 and m["n_windows"] == 12
    assert store.channels() == e["channels"]
    # rerun: nothing to do, same store
    before = snapshot(out)
    again = prepare(find_recordings([edf_dir]), out, cfg_of())
    assert (again.prepared, again.already) == (0, 3)
    assert_same(before, snapshot(out))


def test_store_path_checks(edf_dir, tmp_path):
    out = tmp_path / "s"
    recs = find_recordings([edf_dir / "rec0.edf"])
    prepare(recs, out, cfg_of())
    with pytest.raises(StoreError, match=r"different preprocessing parameters \(filter.l_freq: "
                                         r"0.3 != 0.5\); choose a new --out path, or pass "
                                         r"--overwrite"):
        prepare(recs, out, cfg_of("filter.l_freq=0.5"))
    prepare(recs, out, cfg_of("filter.l_freq=0.5"), overwrite=True)
    assert open_store(out).config["filter"]["l_freq"] == 0.5
    (tmp_path / "notastore").mkdir()
    (tmp_path / "notastore" / "keep.txt").write_text("x")
    with pytest.raises(StoreError, match="exists and is not a csbrain window store"):
        prepare(recs, tmp_path / "notastore", cfg_of(), overwrite=True)
    assert (tmp_path / "notastore" / "keep.txt").exists()
    with pytest.raises(StoreError, match="is not a csbrain window store"):
        open_store(tmp_path / "notastore")
    (out / "lock").write_text(str(os.getppid()))
    with pytest.raises(StoreError, match="is being prepared by process"):
        prepare(recs, out, cfg_of("filter.l_freq=0.5"))


def test_bad_inputs_are_counted_skips(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    good = write(make_raw(seed=1), d / "good.edf")
    blob = open(good, "rb").read()
    (d / "junk.edf").write_bytes(b"0" * 400)
    (d / "trunc.edf").write_bytes(blob[: len(blob) // 3])
    write(make_raw(seconds=5), d / "short.edf")
    write(make_raw(names=["Cz", "Xq1"], seconds=40), d / "unknown.edf")
    write(make_raw(sfreq=100.0), d / "slow.edf")  # prepares: the low-pass adapts to 100 Hz
    write(make_raw(names=["Cz", "Pz"], seconds=40), d / "other_channels.edf")
    recs = find_recordings([d])
    summary = prepare(recs, tmp_path / "s", cfg_of())
    reasons = {k: v[0] for k, v in summary.skipped.items()}
    assert reasons == {"junk": "unreadable", "trunc": "unreadable", "short": "too_short",
                       "unknown": "unknown_channels", "other_channels": "channels_differ"}
    assert summary.prepared == 2 and summary.store_recordings == 2
    text = "\n".join(summary.lines())
    assert "adapted: filter.h_freq 75 Hz -> 45 Hz (0.9 x Nyquist 50 Hz) (1 recording(s): slow)" \
        in text
    assert open_store(tmp_path / "s").entry("slow")["filter"]["h_freq"] == 45.0
    assert "skipped short [too_short]: recording has 5.00 s" in text
    assert "skipped trunc [unreadable]:" in text and "is truncated" in text
    assert "'Xq1' is not a 10-05 electrode name" in text
    manifest = open_store(tmp_path / "s").manifest()
    assert {s["id"]: s["reason"] for s in manifest["skipped"]} == reasons
    assert manifest["skipped"][0]["source"].endswith(".edf")
    # labels missing for a labelled preparation
    summary = prepare(find_recordings([good]), tmp_path / "s2",
                      cfg_of("labels.mode=events", "labels.events=face:0"))
    assert summary.skipped["good"][0] == "no_labels" and summary.store_recordings == 0


def test_float16_store_and_arrays(tmp_path):
    x = np.random.default_rng(0).standard_normal((2, 4000)) * 30.0
    rec = Recording("arr", "array", array={"data": x, "ch_names": ["Cz", "Pz"], "sfreq": 200.0,
                                           "unit": "uV"})
    for dtype in ("float32", "float16"):
        prepare([rec], tmp_path / dtype, cfg_of(*SETS, f"store.dtype={dtype}", "filter.l_freq=null",
                                                "filter.h_freq=null", "reject.max_abs=null"))
    a = open_store(tmp_path / "float32").arrays("arr")[0][:]
    b = open_store(tmp_path / "float16").arrays("arr")[0][:]
    np.testing.assert_allclose(a, (x[:, :4000] / 100).reshape(2, 2, 10, 200).transpose(1, 0, 2, 3),
                               rtol=1e-6)
    assert b.dtype == np.float16
    assert np.all(np.abs(b.astype(np.float32) - a) <= np.abs(a) * 2.0 ** -11 + 6e-8)


def _prepare_args(src, out, jobs=1) -> list[str]:
    return ["prepare", str(src), "--out", str(out), "--jobs", str(jobs),
            *sum((["--set", s] for s in SETS), [])]


def _cli(src, out, jobs=1) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "csbrain", *_prepare_args(src, out, jobs)]
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


#: Runs ``csbrain prepare`` in a process that SIGKILLs itself at a point the test chooses,
#: ``stage:K`` (half-way through writing the K-th staged recording: its windows written, its
#: labels not) or ``commit:K`` (right after the K-th commit). The product code has no hook:
#: the driver wraps its functions from outside.
KILL_DRIVER = textwrap.dedent("""
    import os, signal, sys

    import csbrain.data.pipeline as pipeline
    from csbrain.cli import main
    from csbrain.data.store import WindowStore

    point, k = sys.argv[1].split(":")
    calls = []

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    class DieWhenRead:  # write_windows reads the labels after writing the windows
        def __array__(self, *args, **kwargs):
            die()

    if point == "stage":
        real_write = pipeline.write_windows

        def write_windows(path, x, y, start, entry, cfg):
            calls.append(path)
            return real_write(path, x, DieWhenRead() if len(calls) == int(k) else y, start,
                              entry, cfg)

        pipeline.write_windows = write_windows
    else:
        real_commit = WindowStore.commit

        def commit(self, staged, rec_id, **kwargs):
            real_commit(self, staged, rec_id, **kwargs)
            calls.append(rec_id)
            if len(calls) == int(k):
                die()

        WindowStore.commit = commit
    sys.exit(main(sys.argv[2:]))
""")


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    d = tmp_path_factory.mktemp("many")
    for i in range(6):
        write(make_raw(seed=10 + i, seconds=60), d / f"r{i}.edf")
    (d / "zbad.edf").write_bytes(b"x" * 300)
    ref = tmp_path_factory.mktemp("ref") / "store"
    prepare(find_recordings([d]), ref, cfg_of(), jobs=2)  # parallel writers
    return d, snapshot(ref)


@pytest.mark.parametrize("crash", ["stage:3", "commit:2"])
def test_killed_then_rerun_equals_uninterrupted(many, tmp_path, crash):
    src, ref = many
    out = tmp_path / "store"
    proc = subprocess.run([sys.executable, "-c", KILL_DRIVER, crash, *_prepare_args(src, out)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    store = WindowStore(out)
    n_done = len(store.recordings())
    assert n_done == (2 if crash == "stage:3" else 2)
    if crash == "stage:3":  # the half-written third recording is in staging, not in the store
        (staged,) = list((out / "staging").iterdir())
        assert (staged / "x").is_dir() and not (staged / "start").exists()
        assert not json.loads((staged / "zarr.json").read_text()).get("attributes")
    summary = prepare(find_recordings([src]), out, cfg_of())
    assert summary.already == n_done and summary.prepared == 6 - n_done
    assert_same(ref, snapshot(out))


def test_sigkill_then_rerun_equals_uninterrupted(many, tmp_path):
    src, ref = many
    out = tmp_path / "store"
    proc = _cli(src, out)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if (out / "data.zarr").is_dir() and any(
                p.is_dir() for p in (out / "data.zarr").iterdir()):
            break
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    if proc.returncode == -signal.SIGKILL:  # killed part-way: a stale lock, a partial store
        assert (out / "lock").exists() and len(WindowStore(out).recordings()) < 6
    prepare(find_recordings([src]), out, cfg_of())
    assert_same(ref, snapshot(out))
