"""``csbrain pretrain / finetune / evaluate / predict / embed`` end to end on a tiny store the
test writes, and their one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from csbrain.cli import main
from tests.train.helpers import TINY, make_store, write_edf

SET = [a for kv in TINY for a in ("--set", kv)]


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("cli"))


def test_pretrain_finetune_evaluate_predict_embed(store, tmp_path, capsys):
    pre, ft = tmp_path / "pre", tmp_path / "ft"
    assert main(["pretrain", "--data", str(store), "--out", str(pre), *SET,
                 "--set", "max_steps=2", "--set", "batch_size=4"]) == 0
    assert "pretraining finished after 2 steps" in capsys.readouterr().out
    cfg = tmp_path / "ft.toml"
    cfg.write_text('epochs = 1\nbatch_size = 4\nhead = "mean"\n[split]\nby = "recording"\n'
                   'val_fraction = 0.25\ntest_fraction = 0.25\n')
    assert main(["finetune", "--data", str(store), "--out", str(ft), "--init", str(pre),
                 "--config", str(cfg), *SET, "--set", "freeze_backbone=True"]) == 0
    out = capsys.readouterr().out
    assert "fine-tuning finished" in out and "balanced_accuracy" in out
    rc = json.loads((ft / "run_config.json").read_text())
    assert rc["config"]["init"] == str(pre) and rc["config"]["freeze_backbone"] is True
    from safetensors.torch import load_file

    a, b = load_file(pre / "model.safetensors"), load_file(ft / "model.safetensors")
    backbone = [k for k in a if k.startswith("backbone.")]
    assert backbone and all(torch.equal(a[k], b[k]) for k in backbone)  # --init, frozen
    assert main(["evaluate", "--data", str(store), "--model", str(ft), "--out",
                 str(tmp_path / "eval.json"), "--set", "device=cpu", "--set", "progress=no"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics == json.loads((tmp_path / "eval.json").read_text())
    assert {"balanced_accuracy", "auroc", "auc_pr", "confusion_matrix"} <= set(metrics)
    edf = write_edf(tmp_path / "new.edf", seconds=6.0)
    assert main(["predict", str(edf), "--model", str(ft), "--out", str(tmp_path / "p.csv"),
                 "--set", "progress=false"]) == 0
    assert len((tmp_path / "p.csv").read_text().strip().splitlines()) == 1 + 3
    assert main(["embed", str(edf), "--model", str(pre), "--out", str(tmp_path / "e.npy"),
                 "--set", "progress=false"]) == 0
    assert np.load(tmp_path / "e.npy").shape == (3, 40)


def test_resume_after_a_finished_run_is_a_no_op(store, tmp_path, capsys):
    args = ["finetune", "--data", str(store), "--out", str(tmp_path / "r"), *SET,
            "--set", "max_steps=2", "--set", "split.by=recording"]
    assert main(args) == 0
    before = (tmp_path / "r" / "model.safetensors").read_bytes()
    assert main([*args, "--resume"]) == 0
    assert (tmp_path / "r" / "model.safetensors").read_bytes() == before


@pytest.mark.parametrize("extra,message", [
    (["--set", "freez_backbone=1"], "unknown config key 'freez_backbone'"),
    (["--set", "freeze_backbone=Flase"], "freeze_backbone='Flase' is not valid; expected bool"),
    (["--set", "epochs=many"], "epochs='many' is not valid; expected int"),
    (["--set", "epochs"], "override 'epochs' is not key=value"),
    (["--set", "select_metric=balanced_acc"], "Did you mean 'balanced_accuracy'"),
])
def test_bad_config_is_one_line_exit_2(store, tmp_path, capsys, extra, message):
    assert main(["finetune", "--data", str(store), "--out", str(tmp_path / "r"), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()                 # refused before anything was written


def test_bad_data_and_outputs_are_one_line_errors(tmp_path, capsys):
    unlabelled = make_store(tmp_path / "u", n_recordings=2, labelled=False)
    assert main(["finetune", "--data", str(unlabelled), "--out", str(tmp_path / "r1"),
                 *SET]) == 2
    assert "has no labels (every window is -1" in capsys.readouterr().err
    empty = make_store(tmp_path / "e", n_recordings=2, **{"windows.length_s": 30.0})
    assert main(["finetune", "--data", str(empty), "--out", str(tmp_path / "r2"), *SET]) == 2
    err = capsys.readouterr().err
    assert "holds no window; 2 recording(s) were skipped" in err and "too_short" in err
    (tmp_path / "f").write_text("")
    assert main(["pretrain", "--data", str(unlabelled), "--out", str(tmp_path / "f" / "run"),
                 *SET]) == 2
    assert "is not writable" in capsys.readouterr().err


@pytest.mark.parametrize("bug", [KeyError, TypeError, RuntimeError, AttributeError])
def test_a_bug_is_not_a_user_error(store, tmp_path, monkeypatch, bug):
    """Only ValueError (the project's CSBrainError) and OSError are one-line user errors."""
    def broken(*args, **kwargs):
        raise bug("an internal bug")

    monkeypatch.setattr("csbrain.train.runs.open_run_data", broken)
    with pytest.raises(bug, match="an internal bug"):
        main(["finetune", "--data", str(store), "--out", str(tmp_path / "r"), *SET])


def test_user_errors_are_one_line_and_bugs_show_a_traceback(store, tmp_path):
    driver = textwrap.dedent("""
        import sys
        import csbrain.train.runs as runs
        from csbrain.cli import main

        def broken(*args, **kwargs):
            raise KeyError("an internal bug")

        if sys.argv[1] == "bug":
            runs.open_run_data = broken
        sys.exit(main(sys.argv[2:]))
    """)

    def cli(kind, *args):
        return subprocess.run([sys.executable, "-c", driver, kind, *args], capture_output=True,
                              text=True, timeout=300)

    args = ["finetune", "--data", str(store), *SET]
    bug = cli("bug", *args, "--out", str(tmp_path / "a"))
    assert bug.returncode == 1 and "Traceback" in bug.stderr
    assert "KeyError: 'an internal bug'" in bug.stderr
    user = cli("user", *args, "--out", str(tmp_path / "b"), "--set", "select_metric=r2")
    assert user.returncode == 2 and "Traceback" not in user.stderr
    assert user.stderr.strip().splitlines() == [
        "csbrain finetune: error: select_metric='r2' is not a validation metric of task "
        "'binary'; expected one of ['auto', 'last', 'balanced_accuracy', 'auroc', 'auc_pr', "
        "'accuracy', 'loss'] (the 'val_' prefix is optional)."]
