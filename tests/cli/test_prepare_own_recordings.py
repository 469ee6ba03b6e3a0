"""First try on one's own recordings: default options fit any sampling rate, and no dead ends.

Recordings are generated here with the channel names of real devices: a 14-channel consumer
headset at 128 Hz, a 2-channel sleep EDF at 100 Hz, a 16-channel open-hardware board at 125 Hz.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from csbrain.cli import main
from csbrain.data.store import open_store
from tests.conftest import REPO
from tests.data.conftest import make_raw, write

#: A 14-channel consumer headset (128 Hz).
HEADSET_14 = ["AF3", "F7", "F3", "FC5", "T7", "P7", "O1", "O2", "P8", "T8", "FC6", "F4", "F8",
              "AF4"]
#: A sleep EDF's EEG derivations (100 Hz).
SLEEP_2 = ["EEG Fpz-Cz", "EEG Pz-Oz"]
#: An open-hardware 16-channel board (125 Hz).
BOARD_16 = ["Fp1", "Fp2", "C3", "C4", "P7", "P8", "O1", "O2", "F7", "F8", "F3", "F4", "T7", "T8",
            "P3", "P4"]


def _prepare(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(["prepare", *args])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("names, sfreq", [(SLEEP_2, 100.0), (HEADSET_14, 128.0),
                                          (BOARD_16, 125.0)])
def test_default_options_prepare_any_sampling_rate(tmp_path, capsys, names, sfreq):
    src = write(make_raw(names=names, sfreq=sfreq, seconds=65, seed=3), tmp_path / "rec.edf")
    rc, out, err = _prepare(capsys, src, "--out", str(tmp_path / "store"))
    assert rc == 0, err
    h_freq = round(0.9 * sfreq / 2, 3)
    assert f"adapted: filter.h_freq 75 Hz -> {h_freq:g} Hz (0.9 x Nyquist {sfreq / 2:g} Hz)" in out
    store = open_store(tmp_path / "store")
    entry = store.entry("rec")
    assert entry["n_windows"] == 2 and entry["source_sfreq"] == sfreq
    assert entry["filter"] == {"l_freq": 0.3, "h_freq": h_freq, "notch": [], "method": "fir"}
    assert store.config["filter"]["h_freq"] == 75.0  # what the user asked, per store


def test_short_14_channel_recording_with_4s_windows(tmp_path, capsys):
    src = write(make_raw(names=HEADSET_14, sfreq=128.0, seconds=16), tmp_path / "short.edf")
    rc, out, err = _prepare(capsys, src, "--out", str(tmp_path / "s"),
                            "--set", "windows.length_s=4")
    assert rc == 0, err
    assert "1 recordings, 4 windows" in out
    assert open_store(tmp_path / "s").arrays("short")[0].shape == (4, 14, 4, 200)


def test_zero_windows_exit_1_with_reasons_and_the_option_then_retry(tmp_path, capsys):
    src = write(make_raw(names=HEADSET_14, sfreq=128.0, seconds=16, amp_uv=150.0),
                tmp_path / "loud.edf")
    out_dir = tmp_path / "s"
    rc, out, err = _prepare(capsys, src, "--out", str(out_dir), "--set", "windows.length_s=4")
    assert rc == 1
    assert "no window could be prepared" in err
    assert "amplitude 4 (keep them with: reject.max_abs=null" in err
    assert "skipped loud [no_windows]: all 4 windows were rejected" in out
    # the empty store fixed no parameter: the natural retry with a changed option works
    rc, out, err = _prepare(capsys, src, "--out", str(out_dir), "--set", "windows.length_s=4",
                            "--set", "reject.max_abs=null")
    assert rc == 0, err
    assert open_store(out_dir).manifest()["n_windows"] == 4


def test_one_dead_channel_is_named_and_interpolated(tmp_path, capsys):
    raw = make_raw(names=HEADSET_14, sfreq=128.0, seconds=16)
    raw._data[HEADSET_14.index("FC5")] = 5e-6  # a constant (dead) electrode
    src = write(raw, tmp_path / "dead.fif")
    rc, out, err = _prepare(capsys, src, "--out", str(tmp_path / "s"),
                            "--set", "windows.length_s=4")
    assert rc == 0, err
    assert "adapted: flat channel FC5 interpolated (1 recording(s): dead)" in out
    entry = open_store(tmp_path / "s").entry("dead")
    assert entry["interpolated"] == ["FC5"] and entry["n_windows"] == 4


@pytest.mark.parametrize("scale, sets, phrase", [
    (1.0, ["input.unit=uV"], "values in volts read as µV"),
    (1e6, [], "values in µV read as volts"),
])
def test_implausible_amplitude_is_an_error_unless_confirmed(tmp_path, capsys, scale, sets,
                                                            phrase):
    raw = make_raw(names=BOARD_16, sfreq=125.0, seconds=8)
    raw._data *= scale
    src = write(raw, tmp_path / "rec.fif")
    common = ["--out", str(tmp_path / "s"), "--set", "windows.length_s=4", *sum(
        (["--set", s] for s in sets), [])]
    rc, out, err = _prepare(capsys, src, *common)
    assert rc == 1 and "[implausible_amplitude]" in out and phrase in out
    assert "input.allow_implausible=true" in out
    rc, out, err = _prepare(capsys, src, *common, "--set", "input.allow_implausible=true",
                            "--set", "reject.max_abs=null", "--set", "reject.flat_std=null")
    assert rc == 0, err


def test_changed_source_is_prepared_again(tmp_path, capsys):
    path = tmp_path / "rec.edf"
    write(make_raw(names=BOARD_16, sfreq=125.0, seconds=8, seed=1), path)
    args = [str(path), "--out", str(tmp_path / "s"), "--set", "windows.length_s=4"]
    assert _prepare(capsys, *args)[0] == 0
    before = open_store(tmp_path / "s").entry("rec")["source_sha256"]
    rc, out, _ = _prepare(capsys, *args)
    assert rc == 0 and "0 prepared, 1 already in the store" in out
    os.utime(path, ns=(1, 1))  # touched, same content: hashed again, found unchanged
    rc, out, _ = _prepare(capsys, *args)
    assert rc == 0 and "0 prepared, 1 already in the store" in out
    write(make_raw(names=BOARD_16, sfreq=125.0, seconds=12, seed=2), path)
    rc, out, _ = _prepare(capsys, *args)
    assert rc == 0 and "prepared again (source file changed): rec" in out
    entry = open_store(tmp_path / "s").entry("rec")
    assert entry["source_sha256"] != before and entry["n_windows"] == 3


def test_unmatched_label_keys_are_reported(tmp_path, capsys):
    for name in ("rec", "rec_b"):
        write(make_raw(names=BOARD_16, sfreq=125.0, seconds=8), tmp_path / f"{name}.edf")
    rc, out, err = _prepare(capsys, str(tmp_path / "rec.edf"), str(tmp_path / "rec_b.edf"),
                            "--out", str(tmp_path / "s"), "--set", "windows.length_s=4",
                            "--set", "labels.mode=recording",
                            "--set", 'labels.recording={"rec": 0, "rec_b": 1, "recc": 2}')
    assert rc == 0, err
    assert "labels.recording keys that matched no recording: recc" in out
    store = open_store(tmp_path / "s")
    assert store.entry("rec")["labels"] == {"0": 2} and store.entry("rec_b")["labels"] == {"1": 2}


def test_overwrite_respects_the_lock(tmp_path, capsys):
    src = write(make_raw(names=BOARD_16, sfreq=125.0, seconds=8), tmp_path / "rec.edf")
    out_dir = tmp_path / "s"
    assert _prepare(capsys, src, "--out", str(out_dir), "--set", "windows.length_s=4")[0] == 0
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out_dir / "lock").write_text(str(holder.pid))
        rc, _, err = _prepare(capsys, src, "--out", str(out_dir), "--set", "windows.length_s=8",
                              "--overwrite")
    finally:
        holder.kill()
        holder.wait()
    assert rc == 2 and f"is being prepared by process {holder.pid}" in err
    assert open_store(out_dir).manifest()["n_windows"] == 2  # left as it was


#: ``csbrain prepare`` under a file-size limit: writing a shard fails with EFBIG, a real
#: file-system error like a full disk (SIGXFSZ ignored, so the write returns the error).
FSIZE_DRIVER = textwrap.dedent("""
    import resource, signal, sys
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    from csbrain.cli import main
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    sys.exit(main(sys.argv[2:]))
""")


def test_write_error_stops_the_run_with_one_line(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    for i in range(2):
        write(make_raw(names=BOARD_16, sfreq=125.0, seconds=60, seed=i), d / f"r{i}.fif")
    out_dir = tmp_path / "s"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", FSIZE_DRIVER, "60000", "prepare", str(d),
                           "--out", str(out_dir), "--set", "store.compression=none"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert err[-1].startswith("csbrain prepare: error: cannot write recording 'r0' into store")
    assert "File too large" in err[-1] and "rerun the same command to resume" in err[-1]
    assert "Traceback" not in proc.stderr
    store = open_store(out_dir)  # as it was: no recording, no half-written group, no skip mark
    assert store.recordings() == [] and store.skipped() == {}
    assert not any((out_dir / "staging").iterdir()) and not (out_dir / "lock").exists()


def test_out_under_a_file_is_one_clear_line(tmp_path, capsys):
    src = write(make_raw(names=BOARD_16, sfreq=125.0, seconds=8), tmp_path / "rec.edf")
    (tmp_path / "afile").write_text("x")
    rc, _, err = _prepare(capsys, src, "--out", str(tmp_path / "afile" / "store"))
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1
    assert f"cannot create store '{tmp_path / 'afile' / 'store'}': Not a directory" in lines[0]


def test_created_files_honour_the_umask(tmp_path, capsys):
    src = write(make_raw(names=BOARD_16, sfreq=125.0, seconds=8), tmp_path / "rec.edf")
    old = os.umask(0o002)
    try:
        assert _prepare(capsys, src, "--out", str(tmp_path / "s"),
                        "--set", "windows.length_s=4")[0] == 0
    finally:
        os.umask(old)
    for name in ("manifest.json", "csbrain-store.json", "channels.json"):
        assert (tmp_path / "s" / name).stat().st_mode & 0o777 == 0o664, name
    assert json.loads((tmp_path / "s" / "manifest.json").read_text())["n_windows"] == 2
    assert open_store(tmp_path / "s").channels() == BOARD_16


def test_killed_parallel_prepare_leaves_no_worker(tmp_path):
    import signal
    import time

    import psutil

    d = tmp_path / "in"
    d.mkdir()
    for i in range(6):
        write(make_raw(names=BOARD_16, sfreq=125.0, seconds=240, seed=i), d / f"r{i}.edf")
    proc = subprocess.Popen([sys.executable, "-m", "csbrain", "prepare", str(d), "--out",
                             str(tmp_path / "s"), "--jobs", "2"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parent = psutil.Process(proc.pid)
    deadline = time.monotonic() + 60
    workers: list[psutil.Process] = []
    while time.monotonic() < deadline and len(workers) < 2:
        workers = [c for c in parent.children(recursive=True) if "loky" in " ".join(c.cmdline())
                   and "popen_loky" in " ".join(c.cmdline())]
        time.sleep(0.2)
    assert len(workers) >= 2, "the workers did not start"
    everything = parent.children(recursive=True)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    gone, alive = psutil.wait_procs(everything, timeout=15)
    for p in alive:  # leave nothing running even when the test fails
        p.kill()
    assert not alive, [" ".join(p.cmdline())[:80] for p in alive]


def test_a_store_from_before_a_new_parameter_is_reused(tmp_path, capsys):
    src = write(make_raw(names=BOARD_16, sfreq=125.0, seconds=8), tmp_path / "rec.edf")
    args = [src, "--out", str(tmp_path / "s"), "--set", "windows.length_s=4"]
    assert _prepare(capsys, *args)[0] == 0
    ident_path = tmp_path / "s" / "csbrain-store.json"
    ident = json.loads(ident_path.read_text())
    del ident["config"]["reject"]["flat_channels"]  # as written before the parameter existed
    del ident["config"]["input"]["allow_implausible"]
    ident["config_sha256"] = "0" * 64
    ident_path.write_text(json.dumps(ident))
    rc, out, err = _prepare(capsys, *args)
    assert rc == 0 and "0 prepared, 1 already in the store" in out, err
    rc, _, err = _prepare(capsys, *args, "--set", "reject.flat_channels=reject")
    assert rc == 2 and "different preprocessing parameters" in err
