"""``report``: mean ± std over seeds of every test metric, per dataset and variant, beside the
paper's numbers ("not reported" where none is known), as Markdown, HTML and JSON.

The standard deviation is the sample one (``ddof=1``; 0 for a single seed), as papers that
average 5 seeds report it.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from csbrain._io import atomic_write_text
from csbrain.benchmark.recipes import BenchmarkError, get_recipe
from csbrain.benchmark.runner import RUN_FILE

__all__ = ["collect", "summarise", "write_report"]

NOT_REPORTED = "not reported"


def collect(dirs: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Finished benchmark runs under ``dirs`` (run folders or their parents).

    Returns
    -------
    list of dict
        ``recipe``, ``variant``, ``seed``, ``path``, ``test`` (metrics), sorted.
    """
    runs = []
    for d in dirs:
        d = Path(d)
        if not d.exists():
            raise BenchmarkError(f"report input {str(d)!r} does not exist")
        for f in sorted(d.rglob(RUN_FILE)):
            meta = json.loads(f.read_text("utf-8"))
            m = f.parent / "metrics.json"
            if not m.is_file():
                continue
            metrics = json.loads(m.read_text("utf-8"))
            runs.append({**{k: meta[k] for k in ("recipe", "variant", "seed")},
                         "path": str(f.parent), "test": metrics.get("test", {})})
    if not runs:
        raise BenchmarkError(f"no finished benchmark run under {[str(d) for d in dirs]} "
                             f"(run `csbrain benchmark run` first)")
    return sorted(runs, key=lambda r: (r["recipe"], r["variant"], r["seed"]))


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (recipe, variant): mean, std and n per metric, and the paper's numbers."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["recipe"], r["variant"]), []).append(r)
    rows = []
    for (name, variant), rs in groups.items():
        recipe = get_recipe(name, variant)
        metrics = {}
        for m in recipe["metrics"]:
            vals = np.array([float(r["test"][m]) for r in rs if m in r["test"]])
            metrics[m] = {"mean": float(vals.mean()) if len(vals) else None,
                          "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
                          "n": int(len(vals)),
                          "paper": recipe["paper"].get(m, NOT_REPORTED)}
        rows.append({"dataset": recipe["title"], "recipe": name, "variant": variant,
                     "variant_note": recipe["variant_note"], "task": recipe["task"],
                     "select_metric": recipe["select_metric"],
                     "seeds": [r["seed"] for r in rs], "metrics": metrics,
                     "paper_source": recipe["paper"].get("source", "")})
    return rows


def _cell(v: dict[str, Any]) -> tuple[str, str]:
    ours = "-" if v["mean"] is None else f"{v['mean']:.4f} ± {v['std']:.4f}"
    paper = v["paper"] if isinstance(v["paper"], str) else f"{v['paper']:.4f}"
    return ours, paper


def _markdown(rows: list[dict[str, Any]]) -> str:
    out = ["# csbrain benchmark report", "",
           "Test metrics, mean ± sample std over seeds, beside the paper's numbers.", "",
           "| dataset | variant | seeds | metric | csbrain | paper |", "|---|---|---|---|---|---|"]
    for r in rows:
        for m, v in r["metrics"].items():
            ours, paper = _cell(v)
            sel = " (selects)" if m == r["select_metric"] else ""
            out.append(f"| {r['dataset']} | {r['variant']} | {len(r['seeds'])} | {m}{sel} | "
                       f"{ours} | {paper} |")
    notes = [f"- {r['dataset']} ({r['variant']}): {r['variant_note']}" for r in rows
             if r["variant_note"]]
    srcs = sorted({f"- {r['dataset']}: {r['paper_source']}" for r in rows if r["paper_source"]})
    if notes:
        out += ["", "Variants:", *notes]
    if srcs:
        out += ["", "Paper numbers:", *srcs]
    return "\n".join(out) + "\n"


def _html(rows: list[dict[str, Any]]) -> str:
    e = html.escape
    body = []
    for r in rows:
        for m, v in r["metrics"].items():
            ours, paper = _cell(v)
            body.append(f"<tr><td>{e(r['dataset'])}</td><td>{e(r['variant'])}</td>"
                        f"<td>{len(r['seeds'])}</td><td>{e(m)}</td><td>{e(ours)}</td>"
                        f"<td>{e(paper)}</td></tr>")
    return ("<!doctype html><meta charset='utf-8'><title>csbrain benchmark report</title>"
            "<h1>csbrain benchmark report</h1><p>Test metrics, mean ± sample std over seeds."
            "</p><table border='1'><tr><th>dataset</th><th>variant</th><th>seeds</th>"
            "<th>metric</th><th>csbrain</th><th>paper</th></tr>" + "".join(body)
            + "</table>\n")


def write_report(dirs: Sequence[str | Path], out: str | Path) -> dict[str, Path]:
    """Write ``OUT.md``, ``OUT.html`` and ``OUT.json`` (``out``'s suffix is replaced).

    Returns
    -------
    dict
        ``{"md": path, "html": path, "json": path}``.
    """
    rows = summarise(collect(dirs))
    out = Path(out)
    base = out.with_suffix("") if out.suffix in (".md", ".html", ".json") else out
    base.parent.mkdir(parents=True, exist_ok=True)
    paths = {k: base.parent / f"{base.name}.{k}" for k in ("md", "html", "json")}
    atomic_write_text(paths["md"], _markdown(rows))
    atomic_write_text(paths["html"], _html(rows))
    atomic_write_text(paths["json"], json.dumps({"rows": rows}, indent=1) + "\n")
    return paths
