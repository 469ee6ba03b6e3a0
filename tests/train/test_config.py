"""Run configs: typed, file + --set overrides, bad keys / types / booleans rejected."""

from __future__ import annotations

import pytest

from csbrain.config import CSBrainConfig
from csbrain.configio import ConfigError
from csbrain.train.config import FinetuneConfig, PretrainConfig, load_run_config


def test_defaults_follow_the_released_recipe():
    p, f = PretrainConfig(), FinetuneConfig()
    assert (p.lr, p.weight_decay, p.min_lr, p.epochs, p.batch_size, p.mask_ratio,
            p.mask_token, p.grad_clip) == (5e-4, 5e-2, 1e-5, 40, 128, 0.5, "zero", 1.0)
    assert (f.min_lr, f.epochs, f.batch_size, f.label_smoothing, f.head) == \
        (1e-6, 50, 64, 0.1, "flatten")
    assert p.model_config == CSBrainConfig()  # preset "released"
    assert p.decay_norm_and_bias  # the released code decays every parameter


def test_file_then_overrides(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('seed = 3\nepochs = 7\n[model]\npreset = "tiny"\nn_layers = 3\n'
                    '[split]\nby = "recording"\n')
    cfg = load_run_config(FinetuneConfig, path, ["epochs=9", "freeze_backbone=False",
                                                 "model.dropout=0.3", "backbone_lr=1e-5"])
    assert (cfg.seed, cfg.epochs, cfg.freeze_backbone, cfg.backbone_lr) == (3, 9, False, 1e-5)
    assert cfg.model_config == CSBrainConfig.from_preset("tiny", n_layers=3, dropout=0.3)
    assert cfg.split.by == "recording"
    yaml = tmp_path / "run.yaml"
    yaml.write_text("mask_ratio: 0.3\nmodel:\n  n_layers: 2\n")
    assert load_run_config(PretrainConfig, yaml).mask_ratio == 0.3


@pytest.mark.parametrize("text,value", [("False", False), ("false", False), ("0", False),
                                        ("no", False), ("True", True), ("yes", True)])
def test_booleans_are_parsed_not_truthy(text, value):
    assert load_run_config(FinetuneConfig, None, [f"freeze_backbone={text}"]).freeze_backbone \
        is value


@pytest.mark.parametrize("cls,override,match", [
    (FinetuneConfig, "freez_backbone=true", "unknown config key 'freez_backbone'.*freeze_backbone"),
    (FinetuneConfig, "model.n_layer=2", "unknown config key 'model.n_layer'.*model.n_layers"),
    (FinetuneConfig, "freeze_backbone=Flase",
     "freeze_backbone='Flase' is not valid; expected bool"),
    (FinetuneConfig, "epochs=2.5", "epochs='2.5' is not valid; expected int"),
    (FinetuneConfig, "model.n_layers=two", "model.n_layers='two' is not valid"),
    (PretrainConfig, "mask_token=random", "mask_token='random' is not allowed"),
    (PretrainConfig, "freeze_backbone=true", "unknown config key 'freeze_backbone'"),
    (PretrainConfig, "model.preset=huge", "preset='huge' is not allowed"),
    (FinetuneConfig, "batch_size=0", "batch_size must be >= 1"),
    (FinetuneConfig, "select_metric=balanced_acc", r"select_metric='balanced_acc' is not a "
     r"validation metric of any task.*Did you mean 'balanced_accuracy'"),
    (FinetuneConfig, "select_metric=val_val_loss", "is not a validation metric"),
    (PretrainConfig, "select_metric=balanced_accuracy",
     r"not a validation metric of pretraining; expected one of \['auto', 'last', 'loss'\]"),
])
def test_bad_keys_types_values_rejected(cls, override, match):
    with pytest.raises(ConfigError, match=match):
        load_run_config(cls, None, [override])


def test_select_metric_is_checked_against_the_task_and_loses_its_val_prefix():
    def select(cls, *overrides):
        return load_run_config(cls, None, list(overrides)).select()

    assert select(FinetuneConfig, "select_metric=val_loss") == "loss"
    assert select(FinetuneConfig, "select_metric=loss") == "loss"
    assert select(FinetuneConfig, "select_metric=val_balanced_accuracy") == "balanced_accuracy"
    assert select(FinetuneConfig, "select_metric=auto") == "auto"
    assert select(PretrainConfig, "select_metric=val_loss", "val_fraction=0.1") == "loss"
    assert select(FinetuneConfig, "task=regression", "select_metric=rmse") == "rmse"
    with pytest.raises(ConfigError, match="'auroc' is not a validation metric of task "
                                          "'regression'"):
        load_run_config(FinetuneConfig, None, ["task=regression", "select_metric=auroc"])
    cfg = load_run_config(FinetuneConfig, None, ["select_metric=auroc"])   # task inferred later
    assert cfg.select("binary") == "auroc"
    with pytest.raises(ValueError, match="of task 'multiclass'"):
        cfg.select("multiclass")


def test_inconsistent_values_rejected():
    with pytest.raises(ConfigError, match="warmup_steps=5 and warmup_epochs=1.0 are both set"):
        load_run_config(FinetuneConfig, None, ["warmup_steps=5", "warmup_epochs=1"])
    with pytest.raises(ConfigError, match="must be below 1"):
        load_run_config(FinetuneConfig, None, ["split.val_fraction=0.5", "split.test_fraction=0.5"])
    with pytest.raises(ConfigError, match="n_heads=7 must divide d_model=40"):
        load_run_config(PretrainConfig, None, ["model.preset=tiny", "model.n_heads=7"])
    with pytest.raises(ConfigError, match="min_lr=0.1 must not exceed lr"):
        load_run_config(PretrainConfig, None, ["min_lr=0.1"])


def test_model_section_covers_every_architecture_field():
    import dataclasses

    from csbrain.train.config import ModelSection

    names = {f.name for f in dataclasses.fields(ModelSection)}
    assert names == {f.name for f in dataclasses.fields(CSBrainConfig)} | {"preset"}
