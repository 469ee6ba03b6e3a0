"""A self-contained HTML report: tables and PNGs embedded as base64."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from csbrain._io import atomic_write_text

_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222}table{border-collapse:collapse;margin:.8em 0}td,th{border:1px solid #ccc;
padding:.3em .6em;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{
text-align:left}img{max-width:100%;border:1px solid #eee;margin:.5em 0}.note{background:#fff8e1;
padding:.6em 1em;border-left:4px solid #f0b400}code,pre{background:#f6f6f6}"""


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """An HTML table from a list of dicts (values escaped)."""
    if not rows:
        return "<p>(none)</p>"
    columns = list(columns or rows[0].keys())
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>" for c in columns)
                   + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def image(path: str | Path, caption: str = "") -> str:
    """An ``<img>`` with the PNG embedded (data URI) and a caption."""
    data = base64.b64encode(Path(path).read_bytes()).decode()
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    img = f'<img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
    return f"<figure>{img}{cap}</figure>"


def write_html_report(path: str | Path, title: str, sections: Sequence[tuple[str, str]]) -> Path:
    """Write ``sections`` (heading, HTML body) as one self-contained page, atomically."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    for heading, body in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>\n{body}")
    parts.append("</body></html>")
    atomic_write_text(path, "\n".join(parts))
    return Path(path)
