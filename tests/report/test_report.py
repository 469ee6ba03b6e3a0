"""Report figures and the self-contained HTML page."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from csbrain.report import (
    plot_confusion,
    plot_curves,
    plot_reconstruction,
    plot_roc,
    plot_topomap_importance,
    write_html_report,
)
from csbrain.report.html import image, table

PNG_MAGIC = b"\x89PNG"


def test_every_plot_writes_a_png(tmp_path):
    rng = np.random.default_rng(0)
    names = ["Fp1", "Fp2", "C3", "C4", "O1", "O2", "T7", "T8"]
    paths = [
        plot_curves({"loss": {"train": (np.arange(5), rng.random(5))}}, tmp_path / "c.png"),
        plot_confusion(np.array([[3, 1], [0, 4]]), ["a", "b"], tmp_path / "cm.png"),
        plot_roc({"m": (np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.3, 0.6]))},
                 tmp_path / "roc.png"),
        plot_topomap_importance(rng.random(8), names, {"frontal": 0.1, "occipital": 0.3},
                                tmp_path / "topo.png"),
        plot_reconstruction(rng.normal(size=(8, 3, 200)), rng.normal(size=(8, 3, 200)),
                            rng.random((8, 3)) < 0.5, names, tmp_path / "rec.png"),
    ]
    for p in paths:
        assert p.read_bytes()[:4] == PNG_MAGIC and p.stat().st_size > 5000


def test_topomap_rejects_unknown_channel_names(tmp_path):
    with pytest.raises(ValueError, match="not a 10-05 electrode name"):
        plot_topomap_importance([1.0, 2.0], ["Fp1", "XYZ9"], {}, tmp_path / "t.png")


def test_html_is_self_contained_and_escaped(tmp_path):
    png = plot_confusion(np.eye(2, dtype=int), ["x", "y"], tmp_path / "cm.png")
    out = write_html_report(tmp_path / "r.html", "R & D", [
        ("results", table([{"task": "<b>t</b>", "acc": 0.5}])), ("figures", image(png, "cm"))])
    text = out.read_text()
    assert "R &amp; D" in text and "&lt;b&gt;t&lt;/b&gt;" in text
    assert base64.b64encode(png.read_bytes()).decode()[:200] in text
    assert "src=\"http" not in text and "<link" not in text


def test_occlusion_importance_finds_the_informative_channel():
    from csbrain.report.importance import occlusion_importance

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4, 1, 20))
    y = rng.integers(0, 2, 200)
    x[:, 2] += (2 * y - 1)[:, None, None]  # channel 2 carries the label

    def predict(w):
        return (w[:, 2].mean(axis=(1, 2)) > 0).astype(int)

    drop, region_drop = occlusion_importance(predict, x, y, [0, 0, 3, 4])
    assert drop[2] > 0.4 and np.all(np.abs(drop[[0, 1, 3]]) < 1e-9)
    assert region_drop["occipital"] > 0.4 and abs(region_drop["frontal"]) < 1e-9
