"""The demo's report: ``report.html`` built from ``results.json`` and the PNGs."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from csbrain.report import write_html_report
from csbrain.report.html import image, table

_METRICS = (("balanced_accuracy", "balanced accuracy"), ("auroc", "AUROC"))


def environment() -> dict[str, Any]:
    """Hardware and versions of this run."""
    import mne
    import numpy
    import sklearn
    import torch

    from csbrain import __version__

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "python": platform.python_version(), "platform": platform.platform(),
            "versions": {"csbrain": __version__, "torch": torch.__version__,
                         "mne": mne.__version__, "numpy": numpy.__version__,
                         "scikit-learn": sklearn.__version__}}


def _fmt(summary: dict[str, Any] | None) -> str:
    if not summary or summary.get("mean") is None:
        return "n/a"
    if len(summary["per_seed"]) == 1:
        return f"{summary['mean']:.3f}"
    return f"{summary['mean']:.3f} ± {summary['std']:.3f}"


def results_rows(results: dict[str, Any]) -> list[dict[str, str]]:
    """One row per task and metric: pretrained, scratch, baseline (mean ± std over seeds)."""
    rows = []
    for t in results["tasks"].values():
        for key, label in _METRICS:
            rows.append({"task": t["title"], "metric": label,
                         "CSBrain pretrained": _fmt(t["pretrained"][key]),
                         "CSBrain from scratch": _fmt(t["scratch"][key]),
                         f"baseline ({t['baseline']['name']})": _fmt(t["baseline"][key]),
                         "n train/val/test": "/".join(str(t["n"][s])
                                                      for s in ("train", "val", "test"))})
    return rows


def _verdicts(results: dict[str, Any]) -> str:
    items = []
    for t in results["tasks"].values():
        p = t["pretrained"]["balanced_accuracy"]["mean"]
        s = t["scratch"]["balanced_accuracy"]["mean"]
        b = t["baseline"]["balanced_accuracy"]["mean"]
        word = "beats" if p > s else ("ties" if p == s else "does not beat")
        items.append(f"<li>{t['title']}: pretraining {word} training from scratch "
                     f"({p:.3f} vs {s:.3f} balanced accuracy); the classical baseline gets "
                     f"{b:.3f}.</li>")
    return "<ul>" + "".join(items) + "</ul>"


def write_report(path: Path, results: dict[str, Any], figures: dict[str, Path]) -> Path:
    """Write the self-contained HTML report."""
    pre, plan, env = results["pretraining"], results["plan"], results["environment"]
    seeds = len(plan["seeds"])
    honesty = (
        "<div class='note'><b>What these numbers are.</b> CSBrain was pretrained here on "
        f"{pre['hours']:.2f} h of EEG ({pre['n_windows']} windows of {pre['window_s']:g} s, "
        f"{pre['window_hours']:.2f} h summed over overlapping windows; the "
        f"{len(plan['pretrain_channels'])} channels {', '.join(plan['pretrain_channels'])} that "
        "every pretraining recording has) with a small model on a CPU: a demonstration of the "
        "pipeline, not a foundation model (the authors pretrained on ~9,000 h). Every number "
        "below is computed from predictions of the models this run trained; where pretraining "
        "does not beat training from scratch, the table shows it. No test window of any task "
        "is part of the pretraining data (test windows come after the held-out point of their "
        f"recording: {plan['holdout_from']}). Scores are means ± std over {seeds} seeds "
        "(same split, different initialisation and shuffling); the baseline is deterministic."
        "</div>")
    corpus = table(pre["corpus"])
    stages = table([{"stage": k, "seconds": v} for k, v in results["stage_seconds"].items()])
    imp = results["importance"]
    sections = [
        ("Summary", honesty + _verdicts(results)),
        ("Results on the test splits", table(results_rows(results))),
        ("Pretraining", corpus + image(figures["pretrain_loss"], "pretraining loss")
         + image(figures["reconstruction"], "masked reconstruction")),
        ("Fine-tuning", image(figures["finetune_curves"], "validation curves")),
        ("Confusion matrices", "".join(image(p, k) for k, p in figures.items()
                                       if k.startswith("confusion_"))),
        ("ROC curves", "".join(image(p, k) for k, p in figures.items() if k.startswith("roc_"))),
        ("What the model looks at", f"<p>Task: {imp['task']}, CSBrain "
         f"{imp.get('model', 'pretrained')} (the variant with "
         "the better validation score), seed 0. Occlusion: each channel (left) "
         "or region (right) is set to zero in every test window; the bar is the drop of "
         "balanced accuracy.</p>" + image(figures["importance_topomap"], "importance")),
        ("Configuration", "<pre>" + "\n".join(f"{k}: {v}" for k, v in plan.items()) + "</pre>"),
        ("Hardware, versions, wall time",
         table([{"item": k, "value": v} for k, v in env.items() if k != "versions"]
               + [{"item": k, "value": v} for k, v in env["versions"].items()]) + stages),
    ]
    return write_html_report(path, "csbrain demo: CSBrain on real EEG", sections)
