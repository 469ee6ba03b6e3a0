"""The run folder is made only once a run can start; a start that never reached a checkpoint
leaves a folder that a new run reuses cleanly. A split that can leak warns."""

from __future__ import annotations

import json

import pytest

from csbrain.train import finetune
from tests.train.helpers import finetune_cfg, make_store, run_data


def test_bad_init_creates_no_folder(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a checkpoint\n")
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        finetune(finetune_cfg(f"init={notes}", "max_steps=1"), run_data(16), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    with pytest.raises(FileNotFoundError, match="is not a csbrain model folder"):
        finetune(finetune_cfg(f"init={tmp_path}", "max_steps=1"), run_data(16), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_start_without_checkpoint_restarts_cleanly(tmp_path):
    def stop(state):  # the run is stopped before its first checkpoint
        raise KeyboardInterrupt

    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        finetune(finetune_cfg("max_steps=2"), run_data(16), run, hooks=(stop,))
    assert (run / "run_config.json").is_file() and not (run / "trainer_state.pt").exists()
    with pytest.raises(FileNotFoundError, match=r"stopped before its first checkpoint\); start the "
                                                "run without --resume"):
        finetune(finetune_cfg("max_steps=2"), run_data(16), run, resume=True)
    result = finetune(finetune_cfg("max_steps=2", "lr=0.01"), run_data(16), run)  # a new start
    assert result.state.step == 2 and (run / "trainer_state.pt").is_file()
    assert json.loads((run / "run_config.json").read_text())["config"]["lr"] == 0.01
    with pytest.raises(FileExistsError, match="already holds a run"):
        finetune(finetune_cfg("max_steps=2"), run_data(16), run)


def test_split_by_window_of_overlapping_windows_warns(tmp_path, caplog):
    store = make_store(tmp_path, **{"windows.stride_s": 1.0})  # 2-s windows every second
    with caplog.at_level("WARNING", logger="csbrain.train.runs"):
        finetune(finetune_cfg("max_steps=1", "split.by=window"), store, tmp_path / "run")
    assert "split.by=window with overlapping windows (windows.stride_s=1 < " \
           "windows.length_s=2)" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="csbrain.train.runs"):
        finetune(finetune_cfg("max_steps=1"), store, tmp_path / "run2")  # split.by=recording
    assert "overlapping windows" not in caplog.text
