"""``csbrain explain`` end to end on a tiny fine-tuning run and its window store."""

from __future__ import annotations

import json

import torch

from csbrain.cli import main
from tests.train.helpers import finetune_cfg, make_store


def test_explain_cli_writes_figures_json_and_html(tmp_path, capsys):
    from csbrain.train import finetune

    torch.set_num_threads(1)
    store = make_store(tmp_path)
    run = finetune(finetune_cfg("epochs=1", "split.val_fraction=0.25",
                                "split.test_fraction=0.25"), store, tmp_path / "run").run_dir
    out = tmp_path / "explain"
    assert main(["explain", "--model", str(run), "--data", str(store), "--split", "all",
                 "--out", str(out), "--ig-steps", "4", "--batch-size", "8"]) == 0
    assert "per window" in capsys.readouterr().out
    s = json.loads((out / "explanations.json").read_text())
    assert set(s["methods"]) == {"ig", "gradcam", "occlusion"}
    assert s["n_windows"] == 20
    for name in ("topomap_ig.png", "topomap_gradcam.png", "topomap_occlusion.png",
                 "region_time_ig.png", "attention_class0.png", "index.html"):
        assert (out / name).stat().st_size > 1000, name
    assert "Explanations" in (out / "index.html").read_text()
