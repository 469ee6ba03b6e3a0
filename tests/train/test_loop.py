"""The training loop end to end on tiny data: it learns, resumes bit-exactly, and refuses bad
runs before training."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from csbrain.engine.checkpoint import load_trainer_state
from csbrain.engine.inference import predict_outputs
from csbrain.models import load_model
from csbrain.train import finetune, pretrain
from tests.train.helpers import finetune_cfg, pretrain_cfg, run_data


def _log(run_dir):
    return [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_classifier_overfits_a_few_batches(tmp_path):
    data = run_data(16)
    cfg = finetune_cfg("epochs=25", "lr=3e-3", "min_lr=1e-4", "model.dropout=0",
                       "head_dropout=0", "split.val_fraction=0", "split.test_fraction=0",
                       "log_every=5")
    result = finetune(cfg, data, tmp_path / "run")
    losses = [r["train_loss"] for r in _log(tmp_path / "run") if "train_loss" in r]
    assert losses[-1] < 0.2 * losses[0]
    outputs, y = predict_outputs(load_model(tmp_path / "run"), data.dataset)
    accuracy = float(((outputs[:, 0] > 0).astype(int) == y).mean())
    assert accuracy >= 0.95, accuracy
    assert result.metrics["task"] == "binary" and result.state.step == 50


def test_pretraining_loss_goes_down(tmp_path):
    cfg = pretrain_cfg("epochs=12", "lr=3e-3", "min_lr=1e-4", "model.dropout=0")
    result = pretrain(cfg, run_data(16), tmp_path / "pre")
    losses = [r["train_loss"] for r in _log(tmp_path / "pre") if "train_loss" in r]
    assert len(losses) == 12 and losses[-1] < 0.7 * losses[0], losses
    assert (tmp_path / "pre" / "model.safetensors").is_file()
    assert result.metrics["kind"] == "pretrain"


class Kill(RuntimeError):
    pass


def _kill_at(step):
    def hook(state):
        if state.step == step:
            raise Kill(f"killed at step {step}")
    return hook


@pytest.mark.parametrize("kind", ["pretrain", "finetune"])
def test_killed_and_resumed_run_equals_uninterrupted(tmp_path, kind):
    data = run_data(24)
    if kind == "pretrain":  # dropout and masks: RNG streams must be restored
        cfg, fn = pretrain_cfg("epochs=3", "checkpoint_every=2", "val_fraction=0.25",
                               "log_every=1"), pretrain
    else:
        cfg, fn = finetune_cfg("epochs=3", "checkpoint_every=2", "eval_every=3",
                               "log_every=1"), finetune
    full = fn(cfg, data, tmp_path / "full")
    with pytest.raises(Kill):
        fn(cfg, data, tmp_path / "cut", hooks=(_kill_at(5),))   # last checkpoint: step 4
    assert load_trainer_state(tmp_path / "cut")["loop"]["step"] == 4
    resumed = fn(cfg, data, tmp_path / "cut", resume=True)
    assert resumed.state.step == full.state.step
    a = load_trainer_state(tmp_path / "full")["model"]
    b = load_trainer_state(tmp_path / "cut")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)               # bit-exact final weights
    sa = load_file(tmp_path / "full" / "model.safetensors")
    sb = load_file(tmp_path / "cut" / "model.safetensors")
    assert all(torch.equal(sa[k], sb[k]) for k in sa)            # same selected model
    def no_time(run):  # the log of the resumed run has the same records, no duplicates
        return [{k: v for k, v in r.items() if k != "time_s"} for r in _log(tmp_path / run)]

    assert no_time("full") == no_time("cut")
    assert full.metrics == resumed.metrics


def test_failed_checkpoint_write_then_resume(tmp_path, monkeypatch):
    data, cfg = run_data(16), finetune_cfg("epochs=2", "checkpoint_every=2")
    import csbrain.engine.checkpoint as ckpt

    real = ckpt.save_trainer_state
    calls = {"n": 0}

    def flaky(run_dir, state):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        return real(run_dir, state)

    monkeypatch.setattr(ckpt, "save_trainer_state", flaky)
    with pytest.raises(OSError):
        finetune(cfg, data, tmp_path / "run")
    monkeypatch.undo()
    assert load_trainer_state(tmp_path / "run")["loop"]["step"] == 2   # previous one intact
    finetune(cfg, data, tmp_path / "run", resume=True)
    finetune(cfg, data, tmp_path / "ref")
    a = load_trainer_state(tmp_path / "run")["model"]
    b = load_trainer_state(tmp_path / "ref")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_run_folder_contents_and_records(tmp_path):
    finetune(finetune_cfg("epochs=1"), run_data(16), tmp_path / "run")
    names = {p.name for p in (tmp_path / "run").iterdir()}
    assert names == {"config.json", "model.safetensors", "trainer_state.pt", "metrics.jsonl",
                     "metrics.json", "run_config.json"}
    rc = json.loads((tmp_path / "run" / "run_config.json").read_text())
    assert rc["kind"] == "finetune" and rc["config"]["model"]["n_layers"] == 1
    assert rc["csbrain_version"] and rc["data"]["sha256"] and rc["task"] == "binary"
    assert sum(rc["split"].values()) == 16
    meta = json.loads((tmp_path / "run" / "config.json").read_text())
    assert meta["architecture"] == "CSBrainForClassification"
    assert meta["extra"]["task"] == "binary" and meta["extra"]["run"] == "finetune"
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(metrics["test"]) >= {"balanced_accuracy", "auroc", "auc_pr", "confusion_matrix"}


def test_bad_runs_fail_before_training(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(PermissionError, match="is not writable"):   # before the data is read
        finetune(finetune_cfg(), tmp_path / "no-such-store", blocker / "run")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        finetune(finetune_cfg(), tmp_path / "no-such-store", tmp_path / "r0")
    with pytest.raises(ValueError, match="has no labels"):
        finetune(finetune_cfg(), run_data(8, labels=False), tmp_path / "r1")
    assert not (tmp_path / "r1" / "trainer_state.pt").exists()
    finetune(finetune_cfg("max_steps=1"), run_data(16), tmp_path / "r2")
    with pytest.raises(FileExistsError, match="already holds a run.*--resume"):
        finetune(finetune_cfg("max_steps=1"), run_data(16), tmp_path / "r2")
    with pytest.raises(ValueError, match="different configuration: lr"):
        finetune(finetune_cfg("max_steps=1", "lr=0.1"), run_data(16), tmp_path / "r2",
                 resume=True)
    with pytest.raises(FileNotFoundError, match="has no trainer_state.pt"):
        finetune(finetune_cfg(), run_data(16), tmp_path / "r3", resume=True)


def test_frozen_backbone_changes_only_the_head(tmp_path):
    cfg = finetune_cfg("epochs=1", "freeze_backbone=true", "lr=1e-2")
    torch.manual_seed(0)
    finetune(cfg, run_data(16), tmp_path / "probe")
    from csbrain.config import CSBrainConfig
    from csbrain.models import CSBrainForClassification
    from csbrain.train.seeds import seed_everything
    from tests.train.helpers import CHANNELS

    seed_everything(cfg.seed)   # the run's initial weights
    init = CSBrainForClassification(CHANNELS, CSBrainConfig.from_preset("tiny", n_layers=1),
                                    n_outputs=1, n_times=400, head="mean")
    trained = load_trainer_state(tmp_path / "probe")["model"]
    state = init.state_dict()
    assert all(torch.equal(v, trained[k]) for k, v in state.items() if k.startswith("backbone."))
    assert not all(torch.equal(v, trained[k]) for k, v in state.items() if k.startswith("head."))
    assert np.isfinite(json.loads((tmp_path / "probe" / "metrics.json").read_text())["test"]
                       ["balanced_accuracy"])


def test_finetune_from_a_released_checkpoint(golden, tmp_path):
    """``init`` = a released .pth: its 2-layer, d_model-200 backbone is loaded strictly."""
    from csbrain.models import CSBrain
    from csbrain.train import FinetuneConfig, load_run_config

    pth = golden / "csbrain_official_2layer.pth"
    base = ["progress=false", "head=mean", "batch_size=8", "split.by=recording", "max_steps=1"]
    cfg = load_run_config(FinetuneConfig, None, [*base, f"init={pth}", "freeze_backbone=true",
                                                 "model.dropout=0.2"])
    finetune(cfg, run_data(16), tmp_path / "run")
    ref = CSBrain.from_released(pth).state_dict()
    got = load_model(tmp_path / "run")
    assert (got.config.d_model, got.config.n_layers, got.config.dropout) == (200, 2, 0.2)
    assert all(torch.equal(v, got.backbone.state_dict()[k]) for k, v in ref.items())
    with pytest.raises(ValueError, match="model.n_layers=1 conflict with the --init checkpoint"):
        finetune(finetune_cfg(f"init={pth}"), run_data(16), tmp_path / "r2")
    with pytest.raises(ValueError, match="cannot read checkpoint .*manifest.json"):
        finetune(finetune_cfg(f"init={golden / 'manifest.json'}"), run_data(16), tmp_path / "r3")


def test_bf16_autocast_on_cpu_and_learned_mask_token(tmp_path):
    r = finetune(finetune_cfg("max_steps=2", "bf16=true"), run_data(16), tmp_path / "bf16")
    assert np.isfinite(r.metrics["test"]["balanced_accuracy"])
    for token, changes in (("zero", False), ("learned", True)):
        pretrain(pretrain_cfg("max_steps=3", f"mask_token={token}", "lr=1e-2"), run_data(16),
                 tmp_path / token)
        w = load_file(tmp_path / token / "model.safetensors")
        moved = bool(w["backbone.patch_embedding.mask_token"].abs().max() > 0)
        assert moved is changes, token


def test_regression_task_is_inferred_from_float_labels(tmp_path):
    from csbrain.engine.rundata import RunData
    from tests.train.helpers import CHANNELS, arrays

    x, y = arrays(24)
    target = x[:, 2].std(axis=(1, 2)) + 0.01 * np.arange(24)      # a float per window
    data = RunData.from_arrays(x, target, CHANNELS, recording=[f"r{i % 6}" for i in range(24)])
    r = finetune(finetune_cfg("epochs=2"), data, tmp_path / "reg")
    assert r.metrics["task"] == "regression" and r.metrics["select_metric"] == "r2"
    assert {"pearson_r", "r2", "rmse"} <= set(r.metrics["test"])
    assert load_model(tmp_path / "reg").__class__.__name__ == "CSBrainForRegression"


def test_select_metric_val_loss_selects_on_the_validation_loss(tmp_path):
    r = finetune(finetune_cfg("epochs=3", "select_metric=val_loss"), run_data(16), tmp_path / "r")
    val = [rec["val_loss"] for rec in _log(tmp_path / "r") if "val_loss" in rec]
    assert len(val) == 3 and r.metrics["select_metric"] == "loss"
    assert r.state.best_metric == min(val)
    assert r.state.best_step == 2 * (1 + val.index(min(val)))     # 2 steps per epoch


def test_a_metric_the_task_lacks_is_refused_before_training(tmp_path):
    with pytest.raises(ValueError, match="select_metric='r2' is not a validation metric of task "
                                         "'binary'.*'auroc'"):
        finetune(finetune_cfg("select_metric=r2"), run_data(16), tmp_path / "r")
    assert not (tmp_path / "r" / "run_config.json").exists()
    assert not (tmp_path / "r" / "trainer_state.pt").exists()


def test_an_undefined_select_metric_selects_nothing_and_says_so(tmp_path):
    """AUROC of a one-class validation set is undefined: no selection, the last model kept."""
    from csbrain.engine.rundata import RunData
    from tests.train.helpers import CHANNELS, arrays

    x, y = arrays(24)
    recording = [f"{'ab'[c]}{i % 3}" for i, c in enumerate(y)]   # a*: class 0, b*: class 1
    data = RunData.from_arrays(x, y, CHANNELS, recording=recording)
    r = finetune(finetune_cfg("epochs=2", "select_metric=auroc", 'split.val=["a0"]',
                              'split.test=["a1", "b1"]'), data, tmp_path / "r")
    assert r.state.best_step is None and r.metrics["select_metric"] == "last"
    last = load_trainer_state(tmp_path / "r")["model"]
    saved = load_file(tmp_path / "r" / "model.safetensors")
    assert all(torch.equal(saved[k], last[k]) for k in saved)
