"""``csbrain demo --quick`` end to end on the real recordings (fetched from the package index).

Checks that every promised file exists, that the metrics in results.json are recomputed from
the stored predictions for every method, initialisation and seed, that the paired differences
and their intervals follow from the per-seed numbers, that the diagnostics compare the
pretrained and random backbones, that the scaling analysis has its four fractions, that no
test window enters pretraining, and that the eyes closed/open task is learned well above chance.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from csbrain.data import IndexUnreachableError

pytestmark = pytest.mark.realdata

FILES = ["results.json", "report.html", "pretrain_loss.png", "finetune_curves.png",
         "reconstruction.png", "importance_topomap.png", "feature_diagnostics.png", "scaling.png"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    import torch

    from csbrain.cli import main
    from csbrain.data import fetch
    from csbrain.demo.plan import PRETRAIN_SOURCES, TASKS

    out = tmp_path_factory.mktemp("demo")
    torch.set_num_threads(2)
    try:  # the recordings first, so that only a network failure skips
        for name in sorted({t.dataset for t in TASKS} | {s.dataset for s in PRETRAIN_SOURCES}):
            fetch(name)
    except IndexUnreachableError as err:  # pragma: no cover - depends on the network
        pytest.skip(f"the package index cannot be reached: {err}")
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    return out, json.loads((out / "results.json").read_text())


def test_every_promised_file_exists(demo):
    out, results = demo
    for name in FILES:
        assert (out / name).stat().st_size > 1000, name
    for key in results["tasks"]:
        assert (out / f"confusion_{key}.png").is_file() and (out / f"roc_{key}.png").is_file()
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 6 + 2 * len(results["tasks"])
    assert "not a foundation model" in html
    assert results["plan"]["objective_reason"] in html
    # the diagnostics come right after the data summary, before the results table
    assert (html.index("Pretraining data") < html.index("Representation diagnostics")
            < html.index("Results on the test splits"))


def _runs(results):
    for key, task in results["tasks"].items():
        for method, inits in task["runs"].items():
            for init, runs in inits.items():
                yield key, task, method, init, runs


def test_metrics_are_recomputed_from_predictions(demo):
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    _, results = demo
    seen = set()
    for key, task, method, init, runs in _runs(results):
        y = np.asarray(task["y_test"])
        assert len(y) == task["n"]["test"] > 0
        assert [r["seed"] for r in runs] == results["plan"]["seeds"]
        accs = []
        for run in runs:
            proba = np.asarray(run["proba"])
            acc = balanced_accuracy_score(y, proba >= 0.5)
            assert run["test"]["balanced_accuracy"] == pytest.approx(acc)
            assert run["test"]["auroc"] == pytest.approx(roc_auc_score(y, proba))
            accs.append(acc)
        summary = task["methods"][method][init]["balanced_accuracy"]
        assert summary["mean"] == pytest.approx(np.mean(accs))
        assert summary["std"] == pytest.approx(np.std(accs))
        seen.add((key, method, init))
    assert seen == {(k, m, i) for k in results["tasks"] for m in results["plan"]["methods"]
                    for i in ("pretrained", "scratch")}
    assert {"full", "linear"} <= set(results["plan"]["methods"])
    for task in results["tasks"].values():
        y = np.asarray(task["y_test"])
        base = np.asarray(task["baseline"]["proba"])
        assert task["baseline"]["test"]["balanced_accuracy"] == pytest.approx(
            balanced_accuracy_score(y, base >= 0.5))


def test_paired_differences_and_intervals_follow_from_the_seeds(demo):
    from scipy import stats

    _, results = demo
    for task in results["tasks"].values():
        for method, inits in task["runs"].items():
            pre = {r["seed"]: r["test"]["balanced_accuracy"] for r in inits["pretrained"]}
            scr = {r["seed"]: r["test"]["balanced_accuracy"] for r in inits["scratch"]}
            d = np.array([pre[s] - scr[s] for s in results["plan"]["seeds"]])
            diff = task["methods"][method]["difference"]["balanced_accuracy"]
            assert diff["per_seed"] == pytest.approx(d.tolist())
            assert diff["mean"] == pytest.approx(d.mean()) and diff["n"] == len(d)
            half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
            assert diff["ci"] == pytest.approx([d.mean() - half, d.mean() + half], abs=1e-12)
            assert diff["excludes_zero"] == bool(diff["ci"][0] > 0 or diff["ci"][1] < 0)


def test_diagnostics_compare_pretrained_and_random_backbones(demo):
    _, results = demo
    diag = results["diagnostics"]
    sources = [c["source"] for c in results["pretraining"]["corpus"]]
    assert [d["source"] for d in diag] == [s for s, c in zip(
        sources, results["pretraining"]["corpus"]) if c["held_out"] >= 3]
    assert diag
    for d in diag:
        assert d["n_random"] == results["plan"]["n_random"] >= 1 and d["n_windows"] >= 3
        for f in d["features"]:
            for key in ("spread", "effective_rank", "mean_cosine"):
                assert np.isfinite(f["pretrained"][key]) and np.isfinite(f["random"][key])
                assert len(f["random_per_backbone"]) == d["n_random"]
                assert f["random"][key] == pytest.approx(
                    np.mean([r[key] for r in f["random_per_backbone"]]))


def test_scaling_has_four_fractions(demo):
    _, results = demo
    scaling = results["scaling"]
    rows = scaling["rows"]
    assert [r["fraction"] for r in rows] == [0.0, 0.25, 0.5, 1.0]
    assert rows[0]["backbone"] is None
    assert rows[-1]["backbone"] == results["pretraining"]["run_dir"]
    assert len({r["backbone"] for r in rows}) == 4
    task = results["tasks"][scaling["task"]]
    for method in results["plan"]["scaling_methods"]:
        for r in rows:
            m = r["methods"][method]
            assert len(m["per_seed"]) == len(results["plan"]["seeds"])
            assert m["balanced_accuracy"]["mean"] == pytest.approx(
                np.mean([s["test"]["balanced_accuracy"] for s in m["per_seed"]]))
        if method in task["runs"]:  # none and all: the task's own scratch / pretrained runs
            assert rows[0]["methods"][method]["balanced_accuracy"]["mean"] == pytest.approx(
                task["methods"][method]["scratch"]["balanced_accuracy"]["mean"])
            assert rows[-1]["methods"][method]["balanced_accuracy"]["mean"] == pytest.approx(
                task["methods"][method]["pretrained"]["balanced_accuracy"]["mean"])


def test_eyes_closed_open_is_learned(demo):
    _, results = demo
    task = results["tasks"]["eyes_closed_open"]
    best = max(m[init]["balanced_accuracy"]["mean"] for m in task["methods"].values()
               for init in ("pretrained", "scratch"))
    assert best > 0.65
    assert task["baseline"]["balanced_accuracy"]["mean"] > 0.8


def test_no_test_window_in_pretraining(demo):
    """Every source's pretraining windows end before its hold-out point; every task's test
    windows of the same recordings start after it; pretraining saw exactly the kept windows."""
    from csbrain.demo.data import _base

    out, results = demo
    pre = results["pretraining"]
    assert pre["val_fraction"] == results["plan"]["pretrain"]["val_fraction"]
    corpus = pre["corpus"]
    assert len(corpus) >= 2 and len({c["channels"] for c in corpus}) >= 2  # every montage
    for source in corpus:
        assert 0 < source["kept"] <= source["windows"]
        cut = results["plan"]["holdout_from"][_base(source["source"])]
        assert source["held_out_from"] == cut and source["last_end"] <= cut + 1e-9
        for task in results["tasks"].values():
            if _base(task["dataset"]) == _base(source["source"]) and cut < 1:
                assert task["test_first_start"] >= cut - 1e-9 >= source["last_end"] - 2e-9
    assert pre["n_windows"] == sum(s["kept"] for s in corpus)
    # what pretraining read: per source exactly the kept windows; its hold-out, the diagnostics'
    run_config = json.loads((out / "runs" / "pretrain" / "run_config.json").read_text())
    assert [s["n_windows"] for s in run_config["data"]["sources"]] == [c["kept"] for c in corpus]
    held = sum(s["held_out"] for s in corpus)
    assert run_config["split"] == {"train": pre["n_windows"] - held, "val": held}
    # the tasks whose recordings pretraining reads hold test windows after the cut only
    bases = {_base(c["source"]) for c in corpus}
    for task in results["tasks"].values():
        if _base(task["dataset"]) in bases and task["split"] != "official":
            assert task["test_first_start"] is not None


def test_report_states_hardware_versions_and_wall_times(demo):
    out, results = demo
    html = (out / "report.html").read_text()
    for stage in results["stage_seconds"]:
        assert stage in html
    assert results["environment"]["versions"]["torch"] in html


def _per_seed(results):
    return {(k, method, init, s["seed"]): s["test"]["balanced_accuracy"]
            for k, _, method, init, runs in _runs(results) for s in runs}


def test_interrupted_demo_resumes_to_the_same_results(demo, capsys):
    """Runs a killed demo left behind: one finished (kept), one never started (folder gone),
    one killed before its first checkpoint (run_config.json only). ``--resume`` completes them
    and gives the same numbers; without it, or with another plan, the folder is refused."""
    import shutil

    import torch

    from csbrain.cli import main

    out, results = demo
    runs = out / "runs" / "eyes_closed_open"
    first, last = results["plan"]["seeds"][0], results["plan"]["seeds"][-1]
    shutil.rmtree(runs / f"full-scratch-seed{first}")
    for f in (runs / f"full-pretrained-seed{last}").iterdir():
        if f.name != "run_config.json":
            f.unlink()
    (out / "results.json").unlink()
    assert main(["demo", "--quick", "--out", str(out)]) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert main(["demo", "--out", str(out), "--resume"]) == 2
    assert "plan 'quick', not 'default' (add --quick" in capsys.readouterr().err
    torch.set_num_threads(2)  # as the first run: the summed losses then match to the bit
    assert main(["demo", "--quick", "--out", str(out), "--resume"]) == 0
    again = json.loads((out / "results.json").read_text())
    assert _per_seed(again) == pytest.approx(_per_seed(results), abs=1e-9)
    # the finished pretraining is re-scored on resume; another thread count may move the last bits
    before, after = results["pretraining"]["metrics"], again["pretraining"]["metrics"]
    assert after["val_loss"] == pytest.approx(before["val_loss"], rel=1e-6)
    assert {**after, "val_loss": 0} == {**before, "val_loss": 0}
