"""Runs the bad-input catalogue (:mod:`tests.bad_inputs`) and checks that the troubleshooting
table generated from it is up to date.

Every command row: the exit status, the phrase in the output, a single ``error:`` line without
traceback for status 2, and nothing left behind where the row says so. Every ``api`` row: the
exception type and the phrase.
"""

from __future__ import annotations

import pickle
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from csbrain.cli import main
from tests.bad_inputs import CASES, troubleshooting_markdown
from tests.cli.test_prepare_own_recordings import HEADSET_14
from tests.conftest import REPO
from tests.data.conftest import make_raw, write
from tests.train.helpers import CHANNELS, finetune_cfg, make_store, write_edf


class _RunsCode:
    def __reduce__(self):
        return (__import__("os").system, ("echo pwned",))


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> dict[str, str]:
    """The files the rows name: recordings, stores, models, a trained run."""
    from csbrain import CSBrain, CSBrainConfig
    from csbrain.data import find_recordings, prepare
    from csbrain.train import finetune
    from tests.train.helpers import prep_config

    root = tmp_path_factory.mktemp("catalogue")
    good = write(make_raw(names=HEADSET_14, sfreq=128.0, seconds=20), root / "good.edf")
    loud = write(make_raw(names=HEADSET_14, sfreq=128.0, seconds=20, amp_uv=300.0),
                 root / "loud.edf")
    unknown = write(make_raw(names=["Cz", "Pz", "Xq1"], sfreq=128.0, seconds=20),
                    root / "unknown_ch.edf")
    blob = Path(good).read_bytes()
    (root / "trunc.edf").write_bytes(blob[: len(blob) // 2])
    (root / "junk.edf").write_bytes(b"junk" * 100)
    (root / "notes.txt").write_text("not a checkpoint\n")
    (root / "afile").write_text("a file, not a folder\n")
    store = make_store(root / "labelled")
    unlabelled = make_store(root / "unlab", labelled=False)
    prepare(find_recordings([root / "labelled" / "edf"]), root / "h30",
            prep_config(**{"filter.h_freq": 30.0}))
    prepare(find_recordings([root / "junk.edf"]), root / "empty")
    run = finetune(finetune_cfg("max_steps=1"), store, root / "run").run_dir
    CSBrain(CHANNELS, CSBrainConfig.from_preset("tiny")).save_pretrained(root / "bare")
    CSBrain(HEADSET_14, CSBrainConfig.from_preset("tiny")).save_pretrained(root / "bare14")
    shutil.copytree(root / "bare", root / "trunc_model")
    weights = root / "trunc_model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    return {"good": good, "loud": loud, "unknown_ch": unknown, "trunc_edf": str(root / "trunc.edf"),
            "junk": str(root / "junk.edf"), "notes": str(root / "notes.txt"),
            "afile": str(root / "afile"), "srcdir": str(root / "labelled" / "edf"),
            "store": str(store), "unlabelled": str(unlabelled), "store_h30": str(root / "h30"),
            "empty_store": str(root / "empty"), "run": str(run), "bare": str(root / "bare"),
            "bare14": str(root / "bare14"), "trunc_model": str(root / "trunc_model"),
            "rec_a": str(write_edf(root / "rec_a.edf", seconds=6.0, seed=7)), "root": str(root)}


def _api(case_args: str, ws: dict[str, str], tmp: Path):
    """The Python call an ``api`` row describes."""
    from csbrain import CSBrain, CSBrainConfig
    from csbrain.configio import load_config
    from csbrain.data import PrepConfig, WindowDataset, to_model_input
    from csbrain.data.labels import recording_label
    from csbrain.data.prepconfig import LabelConfig
    from csbrain.montage import Montage

    model = CSBrain(CHANNELS, CSBrainConfig.from_preset("tiny"))
    x = torch.randn(2, 4, 2, 200)
    volts = np.random.default_rng(0).standard_normal((1, 1280)) * 1e-5
    calls = {
        "CSBrain(x, mask=torch.rand(B, C, P))": lambda: model(x, torch.rand(2, 4, 2)),
        "CSBrain(x[:0])": lambda: model(x[:0]),
        "CSBrain(x.long())": lambda: model(x.long()),
        "CSBrain(x.numpy())": lambda: model(x.numpy()),
        "to_model_input(volts, sfreq=128, ch_names=..., unit='uV')": lambda: to_model_input(
            volts, sfreq=128, ch_names=["Cz"], unit="uV"),
        "to_model_input(volts, sfreq=128, ch_names=...)": lambda: to_model_input(
            volts, sfreq=128, ch_names=["Cz"]),
        "to_model_input(10-s array, window_s=60)": lambda: to_model_input(
            volts, sfreq=128, ch_names=["Cz"], unit="V", window_s=60),
        "LMDBWindows(lmdb with a pickled os.system value)[0]": lambda: _evil_lmdb(tmp)[0],
        "recording_label('rec_b', {'*rec*': 0, 'rec_b': 1})": lambda: recording_label(
            "rec_b", LabelConfig(mode="recording", recording={"*rec*": 0, "rec_b": 1})),
        "WindowDataset(folder of recordings)": lambda: WindowDataset(ws["srcdir"]),
        "Montage.from_names(['Fpp1', 'Cz'])": lambda: Montage.from_names(["Fpp1", "Cz"]),
        "load_config(PrepConfig, overrides=['reject.max_ab=1'])": lambda: load_config(
            PrepConfig, None, ["reject.max_ab=1"]),
    }
    return calls[case_args]


def _evil_lmdb(tmp: Path):
    import lmdb

    from csbrain.data.lmdb_reader import LMDBWindows

    env = lmdb.open(str(tmp / "evil"), map_size=1 << 22)
    with env.begin(write=True) as txn:
        txn.put(b"w0", pickle.dumps(_RunsCode()))
        txn.put(b"__keys__", pickle.dumps(["w0"]))
    env.close()
    return LMDBWindows(tmp / "evil")


def _argv(text: str, fields: dict[str, str]) -> list[str]:
    return shlex.split(text.format(**fields))


@pytest.mark.parametrize("case", [
    pytest.param(c, id=f"{i:02d}-{c.command}", marks=[pytest.mark.xfail(
        strict=True, reason=c.known_gap)] if c.known_gap else [])
    for i, c in enumerate(CASES)])
def test_bad_input(case, ws, tmp_path, capsys):
    fields = {**ws, "tmp": str(tmp_path)}
    for step in case.setup:
        assert main(_argv(step, fields)) == 0, capsys.readouterr().err
    capsys.readouterr()
    if case.command == "api":
        with pytest.raises(Exception) as info:
            _api(case.args, ws, tmp_path)()
        assert type(info.value).__name__ == case.code or case.code in [
            t.__name__ for t in type(info.value).__mro__], repr(info.value)
        assert case.phrase in str(info.value)
        text = str(info.value)
    else:
        rc = main([case.command, *_argv(case.args, fields)])
        out, err = capsys.readouterr()
        assert rc == case.code, (out, err)
        assert case.phrase in out + err, (out, err)
        assert "Traceback" not in err
        if rc == 2:
            lines = [ln for ln in err.splitlines() if "error:" in ln]
            assert len(lines) == 1 and lines[0].startswith(f"csbrain {case.command}: error: ")
        text = out + err
    if case.absent:
        assert case.absent not in text
    for path in case.leaves:
        assert not Path(path.format(**fields)).exists(), f"{path} was left behind"


def test_catalogue_size_and_troubleshooting_is_up_to_date():
    commands = {c.command for c in CASES}
    assert len(CASES) >= 60 and {"prepare", "check", "pretrain", "finetune", "evaluate",
                                 "predict", "embed", "info", "convert", "api"} <= commands
    doc = REPO / "docs" / "troubleshooting.md"
    assert doc.read_text("utf-8") == troubleshooting_markdown(), (
        "docs/troubleshooting.md is stale: python -m tests.bad_inputs > docs/troubleshooting.md")


def test_long_lists_say_how_many_more():
    from csbrain._checks import more

    assert more(range(3)) == "0, 1, 2"
    assert more(range(25), 10) == "0, 1, 2, 3, 4, 5, 6, 7, 8, 9 … and 15 more"
    assert more([]) == ""
