"""Hub ids through huggingface_hub: the hub cache (laid out as the library lays it out),
revisions, offline mode without any network call, clear errors; the generated model card."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

hub = pytest.importorskip("huggingface_hub")

from csbrain import CSBrainConfig, CSBrainForClassification  # noqa: E402
from csbrain.models import load_model  # noqa: E402
from csbrain.models.hfhub import is_hub_id, resolve_pretrained  # noqa: E402

TINY = CSBrainConfig.from_preset("tiny", n_layers=1)
REPO = "csbrain-test/tiny-clf"
COMMITS = ("a" * 40, "b" * 40)


def cache_repo(cache: Path, repo_id: str, folder: Path, commit: str, refs=("main",)) -> Path:
    """Put ``folder``'s files into ``cache`` as huggingface_hub does: content-addressed blobs,
    ``snapshots/<commit>/<file>`` symlinks to them, ``refs/<name>`` holding the commit."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    (repo / "blobs").mkdir(exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    for f in sorted(folder.iterdir()):
        data = f.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snap / f.name).symlink_to(os.path.relpath(blob, snap))
    for ref in refs:
        (repo / "refs" / ref).write_text(commit)
    return snap


@pytest.fixture
def no_network(monkeypatch):
    """Offline mode, and any socket connection fails loudly (proof that none is attempted)."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network call attempted: {args[1:]}")

    monkeypatch.setattr(hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def cached(tmp_path):
    """Two revisions of a tiny classifier in a hub cache: main -> commit a, v1 -> commit b."""
    models = []
    for i, commit in enumerate(COMMITS):
        torch.manual_seed(i)
        model = CSBrainForClassification(["C3", "Cz", "C4"], TINY, n_outputs=3).eval()
        model.save_pretrained(tmp_path / f"m{i}")
        cache_repo(tmp_path / "cache", REPO, tmp_path / f"m{i}", commit,
                   refs=("main",) if i == 0 else ("v1",))
        models.append(model)
    return tmp_path / "cache", models


def _same(a, b):
    x = torch.randn(2, 3, 400)
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


def test_hub_ids_and_local_paths_are_told_apart(tmp_path):
    assert is_hub_id("org/name") and is_hub_id("braindecode/cbramod-pretrained")
    for local in ("CSBrain.pth", "runs/a/b", "./org/name", "org/model.safetensors",
                  tmp_path / "org", "../x/y", "name"):
        assert not is_hub_id(local), local
    (tmp_path / "org" / "name").mkdir(parents=True)
    assert not is_hub_id(str(tmp_path / "org" / "name"))


def test_from_pretrained_reads_the_cache_offline_without_network(cached, no_network):
    cache, (main, v1) = cached
    model = CSBrainForClassification.from_pretrained(REPO, cache_dir=cache)
    assert model.n_outputs == 3 and not model.training
    _same(model, main)
    _same(load_model(REPO, cache_dir=cache), main)              # the one loading rule
    _same(CSBrainForClassification.from_pretrained(REPO, revision="v1", cache_dir=cache), v1)
    _same(CSBrainForClassification.from_pretrained(REPO, revision=COMMITS[1], cache_dir=cache,
                                                   local_files_only=True), v1)
    folder = resolve_pretrained(REPO, cache_dir=cache)
    assert folder.parent.name == "snapshots" and folder.name == COMMITS[0]
    # braindecode: another n_outputs keeps the backbone and starts a new head
    five = CSBrainForClassification.from_pretrained(REPO, cache_dir=cache, n_outputs=5)
    assert five.final_layer.out_features == 5
    torch.testing.assert_close(five.backbone.state_dict(), main.backbone.state_dict())


def test_missing_from_the_cache_offline_is_a_clear_error(cached, no_network):
    cache, _ = cached
    with pytest.raises(FileNotFoundError, match=r"hub model 'csbrain-test/other' \(revision "
                                                r"main\): config.json is not in the hub cache "
                                                r".*offline \(HF_HUB_OFFLINE=1") as err:
        load_model("csbrain-test/other", cache_dir=cache)
    assert "\n" not in str(err.value)
    with pytest.raises(FileNotFoundError, match=r"revision v2\): config.json is not in the hub"):
        CSBrainForClassification.from_pretrained(REPO, revision="v2", cache_dir=cache)


def test_environment_offline_mode_and_no_hub_import_at_import_time(cached):
    """As a user runs it: HF_HUB_OFFLINE=1 and HF_HUB_CACHE in the environment."""
    cache, _ = cached
    code = ("import sys, csbrain, csbrain.models\n"
            "assert 'huggingface_hub' not in sys.modules, 'imported at import time'\n"
            "from csbrain.models import load_model\n"
            f"m = load_model({REPO!r})\n"
            "print(type(m).__name__, m.n_outputs)\n"
            "try:\n"
            "    load_model('csbrain-test/absent')\n"
            "except FileNotFoundError as e:\n"
            "    print('ERR', e)\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "CSBrainForClassification 3" in proc.stdout
    assert "ERR hub model 'csbrain-test/absent' (revision main): config.json is not in the hub " \
           "cache" in proc.stdout


def test_push_to_hub_offline_fails_before_uploading(cached, no_network):
    _, (main, _) = cached
    with pytest.raises(OSError):
        main.push_to_hub("csbrain-test/new")


def test_model_card_of_a_saved_folder(tmp_path):
    torch.manual_seed(0)
    model = CSBrainForClassification(["C3", "Cz", "C4"], TINY, n_outputs=2, head="mean_bn")
    extra = {"run": "finetune", "task": "binary", "label_names": ["rest", "move"],
             "preprocessing": {"filter": {"l_freq": 0.3, "h_freq": 75.0}},
             "data": {"source": "memory", "n_windows": 24, "sha256": "0" * 64}}
    model.save_pretrained(tmp_path / "m", extra=extra,
                          metrics={"test": {"balanced_accuracy": 0.75}})
    card = hub.ModelCard.load(tmp_path / "m" / "README.md")
    assert card.data.license == "mit" and card.data.library_name == "csbrain"
    assert "eeg" in card.data.tags
    text = card.text
    weights = hashlib.sha256((tmp_path / "m" / "model.safetensors").read_bytes()).hexdigest()
    for part in ("# CSBrain: CSBrainForClassification", "1 layers, d_model 40",
                 "3 channels: C3, Cz, C4", "\"l_freq\": 0.3",
                 "labels ['rest', 'move']", f"`model.safetensors` sha256: `{weights}`",
                 "| test | balanced_accuracy | 0.75 |", "parity: not measured"):
        assert part in text, part
    assert load_model(tmp_path / "m").head_name == "mean_bn"      # the card does not disturb


def test_converted_release_card_records_source_sha256_and_parity(golden, tmp_path):
    from csbrain.models.inspect import convert_released

    pth = golden / "csbrain_official_2layer.pth"
    out = convert_released(pth, tmp_path / "conv", montage="HMC")
    meta = json.loads((out / "config.json").read_text())
    digest = hashlib.sha256(pth.read_bytes()).hexdigest()
    assert meta["extra"]["source_sha256"] == digest
    assert meta["extra"]["parity"]["max_abs_diff"] <= 1e-6
    text = (out / "README.md").read_text()
    assert f"source checkpoint `csbrain_official_2layer.pth` sha256: `{digest}`" in text
    assert "parity: max |difference|" in text and "license: mit" in text


def test_sklearn_init_from_a_hub_id_offline(cached, no_network, monkeypatch):
    pytest.importorskip("sklearn")
    import numpy as np

    from csbrain.sklearn import CSBrainEmbedder

    cache, (main, _) = cached
    monkeypatch.setattr(hub.constants, "HF_HUB_CACHE", str(cache))   # the default cache
    x = np.random.default_rng(0).normal(scale=0.5, size=(4, 3, 400)).astype(np.float32)
    emb = CSBrainEmbedder(REPO, sfreq=200.0, ch_names=["C3", "Cz", "C4"], unit="model").fit(x)
    with torch.no_grad():
        ref = main.backbone(torch.from_numpy(x)).mean(dim=(1, 2)).numpy()
    np.testing.assert_allclose(emb.transform(x), ref, rtol=1e-5, atol=1e-5)
