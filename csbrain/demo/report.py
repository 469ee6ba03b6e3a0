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


def _diff(d: dict[str, Any] | None) -> str:
    if not d or d.get("mean") is None:
        return "n/a"
    if d.get("ci") is None:
        return f"{d['mean']:+.3f}"
    return f"{d['mean']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]"


def results_rows(results: dict[str, Any]) -> list[dict[str, str]]:
    """One row per task, method and metric: pretrained, scratch (mean ± std over seeds), the
    paired difference pretrained − scratch with its 95 % t-interval, and the baseline."""
    rows = []
    for t in results["tasks"].values():
        for method, m in t["methods"].items():
            for key, label in _METRICS:
                rows.append({"task": t["title"], "method": method, "metric": label,
                             "CSBrain pretrained": _fmt(m["pretrained"][key]),
                             "CSBrain from scratch": _fmt(m["scratch"][key]),
                             "pretrained − scratch [95% CI]": _diff(m["difference"][key]),
                             f"baseline ({t['baseline']['name']})": _fmt(t["baseline"][key]),
                             "n train/val/test": "/".join(str(t["n"][s])
                                                          for s in ("train", "val", "test"))})
    return rows


def diagnostics_rows(results: dict[str, Any]) -> list[dict[str, str]]:
    """One row per source and feature set: pretrained vs mean random-init backbone."""
    rows = []
    for d in results["diagnostics"]:
        for f in d["features"]:
            p, r = f["pretrained"], f["random"] or {}
            rows.append({"source (held-out windows)": f"{d['source']} ({d['n_windows']})",
                         "features": f["features"],
                         "spread / RMS pretrained vs random": _pair(p, r, "spread"),
                         "effective rank": _pair(p, r, "effective_rank", ".1f"),
                         "mean cosine": _pair(p, r, "mean_cosine"),
                         "collapsed": "yes" if f["collapsed"] else "no"})
    return rows


def _pair(p: dict[str, float], r: dict[str, float], key: str, spec: str = ".3f") -> str:
    return f"{p[key]:{spec}} vs {r[key]:{spec}}" if key in r else f"{p[key]:{spec}}"


def scaling_rows(results: dict[str, Any]) -> list[dict[str, str]]:
    """One row per fraction of the pretraining windows: each method's test scores."""
    rows = []
    for r in results["scaling"]["rows"]:
        row = {"pretraining windows": "none (random init)" if r["fraction"] == 0
               else f"{r['fraction']:g}"}
        for method, m in r["methods"].items():
            for key, label in _METRICS:
                row[f"{method}: {label}"] = _fmt(m[key])
        rows.append(row)
    return rows


def _verdicts(results: dict[str, Any]) -> str:
    items = []
    for t in results["tasks"].values():
        parts = []
        for method, m in t["methods"].items():
            d = m["difference"]["balanced_accuracy"]
            p, s = m["pretrained"]["balanced_accuracy"]["mean"], m["scratch"][
                "balanced_accuracy"]["mean"]
            word = "beats" if p > s else ("ties" if p == s else "does not beat")
            sure = ("" if d.get("excludes_zero") is None else
                    ", interval excludes zero" if d["excludes_zero"] else
                    ", interval includes zero")
            parts.append(f"{method}: pretraining {word} scratch ({p:.3f} vs {s:.3f}, "
                         f"difference {_diff(d)}{sure})")
        b = t["baseline"]["balanced_accuracy"]["mean"]
        items.append(f"<li>{t['title']}: " + "; ".join(parts)
                     + f"; the classical baseline gets {b:.3f}.</li>")
    return "<ul>" + "".join(items) + "</ul>"


def write_report(path: Path, results: dict[str, Any], figures: dict[str, Path]) -> Path:
    """Write the self-contained HTML report."""
    pre, plan, env = results["pretraining"], results["plan"], results["environment"]
    seeds = len(plan["seeds"])
    channels = sorted({c["channels"] for c in pre["corpus"]})
    honesty = (
        "<div class='note'><b>What these numbers are.</b> CSBrain was pretrained here on "
        f"{pre['hours']:.2f} h of EEG ({pre['n_windows']} windows of {pre['window_s']:g} s, "
        f"{pre['window_hours']:.2f} h summed over overlapping windows; every channel of every "
        f"source, {'/'.join(map(str, channels))} channels) with a small model on a CPU: a "
        "demonstration of the pipeline, not a foundation model (the authors pretrained on "
        "~9,000 h). Every number below is computed from predictions of the models this run "
        "trained; where pretraining does not beat training from scratch, the table shows it. "
        "No test window of any task is part of the pretraining data (test windows come after "
        f"the held-out point of their recording: {plan['holdout_from']}). Scores are means ± "
        f"std over {seeds} seeds (same split, different initialisation and shuffling); the "
        "difference pretrained − scratch is paired by seed, with a 95 % Student-t interval; "
        "the baseline is deterministic.</div>"
        f"<p><b>Objective</b> (target {plan['pretrain'].get('target', 'waveform')}): "
        f"{plan['objective_reason']}</p>")
    corpus = table(pre["corpus"])
    diag = ("<p>Frozen features of the pretrained backbone vs the mean of "
            f"{plan['n_random']} random-init backbones of the same configuration, on the "
            "windows pretraining held out (its validation split). Spread: std across windows / "
            "RMS; effective rank: participation ratio; mean cosine between windows. "
            "Collapsed: spread below a fraction of the random backbones'.</p>"
            + table(diagnostics_rows(results))
            + (image(figures["feature_diagnostics"], "feature diagnostics per epoch")
               if "feature_diagnostics" in figures else ""))
    sc = results["scaling"]
    scaling = (f"<p>Task {sc['task']}: test scores of backbones pretrained on none, a quarter, "
               f"half and all of the pretraining windows (seeded subsets of every source, same "
               f"{sc['same']}).</p>" + table(scaling_rows(results))
               + image(figures["scaling"], "data scaling"))
    stages = table([{"stage": k, "seconds": v} for k, v in results["stage_seconds"].items()])
    imp = results["importance"]
    sections = [
        ("Summary", honesty + _verdicts(results)),
        ("Pretraining data", corpus),
        ("Representation diagnostics", diag),
        ("Results on the test splits", table(results_rows(results))),
        ("Data scaling", scaling),
        ("Pretraining", image(figures["pretrain_loss"], "pretraining loss")
         + image(figures["reconstruction"], "masked reconstruction")),
        ("Fine-tuning", image(figures["finetune_curves"], "validation curves")
         if "finetune_curves" in figures else ""),
        ("Confusion matrices", "".join(image(p, k) for k, p in figures.items()
                                       if k.startswith("confusion_"))),
        ("ROC curves", "".join(image(p, k) for k, p in figures.items() if k.startswith("roc_"))),
        ("What the model looks at", f"<p>Task: {imp['task']}, CSBrain "
         f"{imp.get('model', 'pretrained')}, {imp.get('method', 'full')} (the variant with "
         "the better validation score), seed 0. Occlusion: each channel (left) "
         "or region (right) is set to zero in every test window; the bar is the drop of "
         "balanced accuracy.</p>" + image(figures["importance_topomap"], "importance")),
        ("Explanations", _explanations(imp, figures)),
        ("Configuration", "<pre>" + "\n".join(f"{k}: {v}" for k, v in plan.items()) + "</pre>"),
        ("Hardware, versions, wall time",
         table([{"item": k, "value": v} for k, v in env.items() if k != "versions"]
               + [{"item": k, "value": v} for k, v in env["versions"].items()]) + stages),
    ]
    return write_html_report(path, "csbrain demo: CSBrain on real EEG", sections)


def _explanations(imp: dict, figures: dict) -> str:
    """The ``csbrain explain`` section: same model and test windows as the occlusion above."""
    from csbrain.explain.run import html_section

    summary = imp.get("explanations")
    if not summary:
        return "<p>(not computed)</p>"
    figs = [(k.split(": ", 1)[1], p) for k, p in figures.items() if k.startswith("explain: ")]
    return (f"<p>{summary['n_windows']} test windows of task {imp['task']} (the same model): "
            "integrated gradients (noise baseline), Grad-CAM on the patch-embedding token map and "
            "the attention weights, per class (csbrain explain).</p>"
            + html_section(summary, figs))
