"""Adaptation methods of ``finetune`` end to end on tiny data: probe, LP-FT (and its resume),
LoRA (adapters only, both compute paths, merged == adapted, adapters saved), the scikit-learn
linear model (the saved model reproduces it), layer-wise learning-rate decay, and the config
checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from csbrain.config import CSBrainConfig
from csbrain.engine.checkpoint import load_trainer_state
from csbrain.engine.inference import embed_dataset, predict_outputs
from csbrain.models import CSBrainForClassification, load_model
from csbrain.train import FinetuneConfig, finetune, load_run_config
from csbrain.train.seeds import seed_everything
from tests.train.helpers import CHANNELS, finetune_cfg, run_data

TWO = ("model.n_layers=2", "cpu_threads=1")


def _init_model(cfg: FinetuneConfig, head: str = "mean") -> CSBrainForClassification:
    """The initial weights of a run of ``cfg`` (finetune seeds, then builds)."""
    seed_everything(cfg.seed)
    return CSBrainForClassification(CHANNELS, cfg.model_config, n_outputs=1, n_times=400,
                                    head=head)


def _backbone(state: dict, prefix: str = "") -> dict:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix + "backbone.")}


def _log(run_dir):
    return [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("overrides, message", [
    (["method=adapter"], r"method='adapter' is not allowed; expected one of \['full', 'probe'"),
    (["method=lp_ft"], "method='lp_ft' needs probe_epochs"),
    (["method=lp_ft", "epochs=3", "probe_epochs=3"], "probe_epochs must be <= 2, got 3"),
    (["probe_epochs=1"], "probe_epochs=1 only applies to method='lp_ft' .method='full'"),
    (["method=lora", "freeze_backbone=true"], "freeze_backbone=True is an alias of method="),
    (["lora_rank=0"], "lora_rank must be >= 1, got 0"),
    (["lora_alpha=0"], "lora_alpha must be > 0.0"),
    (["lora_dropout=1.5"], "lora_dropout must be <= 1.0, got 1.5"),
    (["layer_decay=0"], r"layer_decay=0.0 must be in \(0, 1\]"),
    (["layer_decay=1.5"], "layer_decay must be <= 1.0, got 1.5"),
    (["method=linear", "layer_decay=0.5"], "layer_decay=0.5 applies to method 'full', 'lp_ft'"),
])
def test_config_checks_name_key_value_and_choices(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_run_config(FinetuneConfig, None, overrides)


def test_config_defaults_and_alias():
    cfg = load_run_config(FinetuneConfig, None, [])
    assert (cfg.method, cfg.lora_rank, cfg.lora_alpha, cfg.lora_dropout, cfg.layer_decay) == \
        ("full", 8, 16.0, 0.0, 1.0)
    assert cfg.lora_targets == ("window_attn.qkv", "window_attn.proj", "region_attn.qkv",
                                "region_attn.proj", "fc1", "fc2")
    assert load_run_config(FinetuneConfig, None, ["freeze_backbone=true"]).method == "probe"


def test_probe_trains_only_the_head(tmp_path):
    cfg = finetune_cfg(*TWO, "method=probe", "epochs=2", "lr=1e-2", "model.dropout=0.3")
    finetune(cfg, run_data(16), tmp_path / "run")
    init, trained = _init_model(cfg).state_dict(), load_trainer_state(tmp_path / "run")["model"]
    assert all(torch.equal(v, trained[k]) for k, v in _backbone(init).items())
    assert not all(torch.equal(v, trained[k]) for k, v in init.items() if k.startswith("head."))


class Kill(RuntimeError):
    pass


def test_lp_ft_probes_then_finetunes_and_resumes(tmp_path):
    data = run_data(24)
    cfg = finetune_cfg(*TWO, "method=lp_ft", "probe_epochs=1", "epochs=3", "lr=1e-2",
                       "log_every=1")
    full = finetune(cfg, data, tmp_path / "full")
    steps = full.state.step // 3                                 # steps per epoch

    def kill(state):
        if state.step == steps + 1:
            raise Kill

    with pytest.raises(Kill):                                    # last checkpoint: epoch 0 end
        finetune(cfg, data, tmp_path / "cut", hooks=(kill,))
    init = _init_model(cfg).state_dict()
    saved = load_trainer_state(tmp_path / "cut")
    probed = saved["model"]
    assert all(torch.equal(v, probed[k]) for k, v in _backbone(init).items())
    n_head = sum(k.startswith("head.") for k in init)
    assert len(saved["optimizer"]["state"]) == n_head           # no gradient reached the backbone
    assert not torch.equal(init["head.fc.weight"], probed["head.fc.weight"])
    resumed = finetune(cfg, data, tmp_path / "cut", resume=True)
    final = load_trainer_state(tmp_path / "cut")["model"]
    assert resumed.state.step == full.state.step
    assert not all(torch.equal(v, final[k]) for k, v in _backbone(init).items())
    reference = load_trainer_state(tmp_path / "full")["model"]
    assert all(torch.equal(reference[k], final[k]) for k in reference)   # bit-exact resume
    rates = [r["lr"] for r in _log(tmp_path / "full") if "lr" in r]      # group 0: backbone
    assert rates[:steps] == [0.0] * steps and min(rates[steps:]) > 0


def _apply_lora(model, *overrides):
    from csbrain.train.adapt import apply_lora

    return apply_lora(model, load_run_config(FinetuneConfig, None, list(overrides)))


def test_lora_adapters_act_on_both_compute_paths_and_merge():
    from csbrain.models import fused_cpu
    from csbrain.train.adapt import merged_copy

    torch.manual_seed(0)
    cfg = CSBrainConfig.from_preset("tiny", n_layers=2)
    model = CSBrainForClassification(CHANNELS, cfg, n_outputs=3, n_times=400, head="mean")
    x = torch.randn(4, 4, 2, 200)
    h = model.backbone.patch_embedding(x[:, model.backbone.layout.order])
    assert all(all(s is not None for s in layer) for layer in fused_cpu.plan(model.backbone,
                                                                             h).layers)
    wrapped = _apply_lora(model, "lora_rank=4").eval()
    assert all(layer == (None, None, None) for layer in fused_cpu.plan(model.backbone,
                                                                       h).layers)
    with torch.no_grad():
        for name, p in wrapped.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.2)                                # non-zero adapters
        outputs = {}
        for fused in (True, False):
            model.backbone.fused_cpu = fused
            with wrapped.disable_adapter():
                base = wrapped(x)
            outputs[fused] = (base, wrapped(x))
        merged = merged_copy(wrapped)
        merged_out = {}
        for fused in (True, False):
            merged.backbone.fused_cpu = fused
            merged_out[fused] = merged(x)
    (base_f, lora_f), (base_p, lora_p) = outputs[True], outputs[False]
    assert (lora_p - base_p).abs().max() > 1e-2                 # the adapters matter
    torch.testing.assert_close(lora_f, lora_p, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(lora_f - base_f, lora_p - base_p, rtol=1e-4, atol=1e-5)
    assert type(merged) is CSBrainForClassification
    assert not any("lora" in k or "base_layer" in k for k in merged.state_dict())
    for out in merged_out.values():                             # merged == adapted
        torch.testing.assert_close(out, lora_p, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="lora_targets entry 'fc3' names no linear layer"):
        _apply_lora(CSBrainForClassification(CHANNELS, cfg, n_times=400), "lora_targets=fc3")


def test_lora_run_trains_adapters_and_head_and_saves_them(tmp_path):
    from csbrain.train.adapt import ADAPTER_DIR, merge_lora

    cfg = finetune_cfg(*TWO, "method=lora", "epochs=2", "lr=1e-2", "lora_rank=2",
                       "lora_targets=window_attn.qkv,fc1")
    result = finetune(cfg, run_data(16), tmp_path / "run")
    init = _init_model(cfg).state_dict()
    trained = load_trainer_state(tmp_path / "run")["model"]
    base = {k.replace(".base_layer", ""): v for k, v in _backbone(trained, "base_model.model.")
            .items() if "lora_" not in k}
    assert set(base) == set(_backbone(init))
    assert all(torch.equal(v, base[k]) for k, v in _backbone(init).items())  # frozen base
    adapters = [v for k, v in trained.items() if "lora_B" in k]
    assert len(adapters) == 4 and all(v.abs().max() > 0 for v in adapters)  # B starts at 0
    assert (tmp_path / "run" / ADAPTER_DIR / "adapter_model.safetensors").is_file()
    saved = load_file(tmp_path / "run" / "model.safetensors")           # merged, plain keys
    assert set(saved) == set(init)
    changed = {k for k in _backbone(init) if not torch.equal(init[k], saved[k])}
    assert changed == {f"backbone.layers.{i}.{m}.weight" for i in (0, 1)
                       for m in ("window_attn.qkv", "fc1")}
    model = load_model(tmp_path / "run")
    assert type(model) is CSBrainForClassification and result.metrics["test"]["n"] > 0
    merged = merge_lora(_init_model(cfg), tmp_path / "run" / ADAPTER_DIR)  # adapters + head
    for k, v in merged.state_dict().items():
        torch.testing.assert_close(v, saved[k], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_linear_model_is_reproduced_by_the_saved_run(tmp_path, task):
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.preprocessing import StandardScaler
    from torch.utils.data import Subset

    data = run_data(32)
    cfg = finetune_cfg(*TWO, "method=linear", f"task={task}")
    result = finetune(cfg, data, tmp_path / "run")
    model = load_model(tmp_path / "run")
    assert model.head_name == "mean_bn" and result.state.step == 0
    split = json.loads((tmp_path / "run" / "run_config.json").read_text())["split_recordings"]
    rec = np.asarray(data.groups["recording"])
    sets = {k: Subset(data.dataset, np.flatnonzero(np.isin(rec, v)).tolist())
            for k, v in split.items()}
    feats = {k: embed_dataset(model, s) for k, s in sets.items()}
    y = {k: np.asarray(data.labels)[s.indices] for k, s in sets.items()}
    strength = result.metrics["linear"]["strength"]
    assert len(result.metrics["linear"]["val_scores"]) == 7
    scaler = StandardScaler().fit(feats["train"])
    est = (Ridge(alpha=strength) if task == "regression"
           else LogisticRegression(C=1 / strength, max_iter=2000))
    est.fit(scaler.transform(feats["train"]), y["train"])
    z = scaler.transform(feats["test"])
    expected = est.predict(z) if task == "regression" else est.decision_function(z)
    outputs, _ = predict_outputs(model, sets["test"])
    np.testing.assert_allclose(outputs[:, 0], expected, rtol=1e-4, atol=1e-4)
    assert np.ptp(expected) > 1e-3                              # not a constant prediction


def test_layer_decay_groups_follow_the_geometric_rule(tmp_path):
    from csbrain.train.optim import layer_id, param_groups

    torch.manual_seed(0)
    model = CSBrainForClassification(CHANNELS, CSBrainConfig.from_preset("tiny", n_layers=3),
                                     n_times=400, head="mean")
    groups = {g["name"]: g for g in param_groups(model, lr=1e-3, weight_decay=0.1,
                                                 layer_decay=0.5, decay_norm_and_bias=False)}
    for name, group in groups.items():
        k = 4 if name.startswith("head") else int(name.split("layer")[1].split("_")[0])
        assert group["lr"] == pytest.approx(1e-3 * 0.5 ** (4 - k)), name
    where = {id(p): g for g in groups.values() for p in g["params"]}
    for name, p in model.named_parameters():
        want = (4 if name.startswith("head.") else
                int(name.split(".")[2]) + 1 if name.startswith("backbone.layers.") else 0)
        if p.requires_grad:
            assert where[id(p)]["lr"] == pytest.approx(1e-3 * 0.5 ** (4 - want)), name
    assert layer_id("base_model.model.backbone.layers.2.fc1.lora_A.default.weight") == 3
    assert layer_id("backbone.patch_embedding.spectral_proj.weight") == 0
    plain = [g["name"] for g in param_groups(model, lr=1e-3, weight_decay=0.1)]
    assert plain == ["backbone", "head"]                        # 1.0: the released groups
    cfg = finetune_cfg(*TWO, "layer_decay=0.5", "max_steps=1", "backbone_lr=1e-3", "head_lr=2e-3")
    finetune(cfg, run_data(16), tmp_path / "run")
    saved = load_trainer_state(tmp_path / "run")["optimizer"]["param_groups"]
    peaks = {g["name"]: g["initial_lr"] for g in saved}
    assert peaks == pytest.approx({"backbone_layer0": 1e-3 / 8, "backbone_layer1": 1e-3 / 4,
                                   "backbone_layer2": 1e-3 / 2, "head": 2e-3})


def test_lora_run_resumes_bit_exactly(tmp_path):
    from csbrain.train.adapt import ADAPTER_DIR

    data = run_data(16)
    cfg = finetune_cfg(*TWO, "method=lora", "epochs=3", "lr=1e-2", "lora_rank=2",
                       "lora_dropout=0.1", "select_metric=last")
    full = finetune(cfg, data, tmp_path / "full")

    def kill(state):
        if state.step == full.state.step - 1:
            raise Kill

    with pytest.raises(Kill):
        finetune(cfg, data, tmp_path / "cut", hooks=(kill,))
    finetune(cfg, data, tmp_path / "cut", resume=True)
    for name in ("model.safetensors", f"{ADAPTER_DIR}/adapter_model.safetensors"):
        a, b = load_file(tmp_path / "full" / name), load_file(tmp_path / "cut" / name)
        assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a), name
