"""`csbrain check` and :func:`csbrain.data.check_recordings`: what prepare would do, before
any work, on recordings with the channel names of a real 14-channel headset."""

from __future__ import annotations

import json

from csbrain.cli import main
from csbrain.data import check_recordings
from csbrain.data.check import summary_line
from tests.cli.test_prepare_own_recordings import HEADSET_14
from tests.data.conftest import make_raw, write


def _folder(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    raw = make_raw(names=HEADSET_14 + ["Xq1"], sfreq=128.0, seconds=20)
    raw._data[HEADSET_14.index("FC5")] = 4e-3  # a dead electrode with a 4 mV offset
    write(raw, d / "headset.fif")
    write(make_raw(names=HEADSET_14, sfreq=128.0, seconds=20, amp_uv=300.0), d / "loud.edf")
    (d / "junk.edf").write_bytes(b"junk" * 100)
    return d


def test_check_reports_channels_units_windows_and_options(tmp_path, capsys):
    d = _folder(tmp_path)
    before = sorted(p.name for p in d.iterdir())
    rc = main(["check", str(d), "--set", "windows.length_s=4", "--set", "channels.exclude=Xq1"])
    out = capsys.readouterr().out
    assert rc == 1  # not every recording would prepare
    assert "headset: OK" in out and "128 Hz, 20.0 s, read in V" in out
    assert "FC5             FC5       central" in out and "flat" in out
    assert "Xq1             ?         ?" in out and "not-kept" in out
    assert "adapted: filter.h_freq 75 Hz -> 57.6 Hz (0.9 x Nyquist 64 Hz)" in out
    assert "adapted: flat channel FC5 interpolated" in out
    assert "windows: 5 of 5 kept; rejected: none" in out
    assert "loud: WOULD BE SKIPPED [no_windows]" in out and "rejected: amplitude 5" in out
    assert "option: amplitude: reject.max_abs=null" in out
    assert "junk: WOULD BE SKIPPED [unreadable]" in out
    assert "3 recordings: 1 would prepare (5 windows), 2 would be skipped" in out
    assert sorted(p.name for p in d.iterdir()) == before  # wrote nothing
    assert main(["check", str(d / "headset.fif"), "--set", "windows.length_s=4",
                 "--set", "channels.exclude=Xq1"]) == 0


def test_annotations_are_listed_for_labels_events(tmp_path, capsys):
    raw = make_raw(names=HEADSET_14, sfreq=128.0, seconds=12,
                   annotations=[(1.0, 0.0, "face"), (5.0, 0.0, "face"), (8.0, 0.0, "house")])
    write(raw, tmp_path / "ev.fif")
    assert main(["check", str(tmp_path / "ev.fif"), "--set", "labels.mode=events",
                 "--set", "labels.events=tree:0", "--set", "windows.length_s=2"]) == 1
    out = capsys.readouterr().out
    assert "annotations (labels.events keys): face x2, house x1" in out
    assert "WOULD BE SKIPPED [no_labels]" in out


def test_unknown_channel_is_named_with_closest_names(tmp_path, capsys):
    write(make_raw(names=["Fp1", "Fpp2", "Cz"], sfreq=125.0, seconds=10), tmp_path / "r.edf")
    assert main(["check", str(tmp_path / "r.edf"), "--set", "windows.length_s=4"]) == 1
    out = capsys.readouterr().out
    assert "r: WOULD BE SKIPPED [unknown_channels]" in out
    assert "! channel 'Fpp2' is not a 10-05 electrode name; closest: " in out
    assert "option: channels.exclude (drop them)" in out


def test_check_as_a_python_function_and_json(tmp_path, capsys):
    raw = make_raw(names=HEADSET_14, sfreq=128.0, seconds=12)
    write(raw, tmp_path / "volts_as_uv.fif")
    reports = check_recordings([tmp_path],
                               _cfg("windows.length_s=4", "input.unit=uV"))
    (r,) = reports
    assert not r.ok and r.reason == "implausible_amplitude"
    assert all("implausible" in c.flags for c in r.channels)
    assert r.channels[0].std_uv < 1e-3  # volts read as µV: 1e6 times too small
    assert r.n_candidates == 3 and r.rejected["flat"] == 3  # counted as if confirmed
    assert "input.allow_implausible=true" in r.options[0]
    assert summary_line(reports).startswith("1 recordings: 0 would prepare")
    assert main(["check", str(tmp_path), "--json", "--set", "windows.length_s=4"]) == 0
    (data,) = json.loads(capsys.readouterr().out)
    assert data["ok"] and data["n_windows"] == 3 and data["channels"][0]["region"] == "frontal"


def _cfg(*items):
    from csbrain.configio import load_config
    from csbrain.data.prepconfig import PrepConfig

    return load_config(PrepConfig, None, list(items))


def test_mne_messages_go_to_stderr_so_json_on_stdout_stays_parseable(tmp_path, capsys):
    import mne

    write(make_raw(names=HEADSET_14, sfreq=128.0, seconds=12), tmp_path / "rec.edf")
    assert main(["check", str(tmp_path), "--json", "--set", "windows.length_s=4"]) == 0
    mne.utils.logger.warning("a message from MNE")
    out, err = capsys.readouterr()
    assert "a message from MNE" in err and "a message from MNE" not in out
    json.loads(out)
