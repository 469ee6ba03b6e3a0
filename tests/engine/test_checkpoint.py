"""Checkpoint files are atomic: a write that fails part-way leaves the previous one intact."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from csbrain.config import CSBrainConfig
from csbrain.engine import checkpoint as ckpt
from csbrain.models import CSBrainForClassification, load_model
from tests.train.helpers import CHANNELS


def _model(seed: int):
    torch.manual_seed(seed)
    return CSBrainForClassification(CHANNELS, CSBrainConfig.from_preset("tiny", n_layers=1),
                                    n_outputs=2, head="mean")


def _files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_model_write_failing_part_way_keeps_the_previous_model(tmp_path, monkeypatch):
    first = _model(0)
    ckpt.save_model(first, tmp_path, extra={"note": "first"})
    before = _files(tmp_path)
    assert set(before) == {"config.json", "model.safetensors"}

    def half_then_fail(state, path, metadata=None):
        with open(path, "wb") as fh:
            fh.write(b"\0" * 1000)                       # a partial safetensors file
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("csbrain.models.hub.save_file", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        ckpt.save_model(_model(1), tmp_path, extra={"note": "second"})
    assert _files(tmp_path) == before                    # same files, same bytes, no temp left
    loaded = load_model(tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(),
                                                  first.state_dict().values()))


def test_trainer_state_write_failing_part_way_keeps_the_previous_state(tmp_path, monkeypatch):
    ckpt.save_trainer_state(tmp_path, {"step": 1, "w": torch.ones(3)})
    before = _files(tmp_path)

    def fail(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("csbrain._io.os.fsync", fail)    # bytes written to the temp file, then
    with pytest.raises(OSError, match="Input/output"):   # the disk fails before the rename
        ckpt.save_trainer_state(tmp_path, {"step": 2, "w": torch.zeros(3)})
    monkeypatch.undo()
    assert _files(tmp_path) == before
    assert ckpt.load_trainer_state(tmp_path)["step"] == 1


def test_corrupt_or_missing_state_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no checkpoint yet"):
        ckpt.load_trainer_state(tmp_path)
    (tmp_path / ckpt.TRAINER_STATE).write_bytes(b"garbage")
    with pytest.raises(ValueError, match="is not a readable trainer state"):
        ckpt.load_trainer_state(tmp_path)


def test_rng_states_round_trip_through_a_checkpoint(tmp_path):
    ckpt.save_trainer_state(tmp_path, {"rng": ckpt.rng_state()})
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    ckpt.set_rng_state(ckpt.load_trainer_state(tmp_path)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
