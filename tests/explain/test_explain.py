"""Sanity checks of the attribution methods (Adebayo et al. 2018; Sundararajan et al. 2017)
on a tiny CSBrain trained on a task whose class signal lives in one region only."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from csbrain.explain import explain_windows, read_attention, summarise
from csbrain.explain.attribution import baseline_of, integrated_gradients
from csbrain.explain.sanity import (
    CHANNELS,
    SIGNAL,
    one_region_task,
    tiny_classifier,
    train_on_task,
)
from csbrain.montage import REGION_NAMES


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(1)
    model, acc = train_on_task(0)
    assert acc >= 0.9, f"the tiny model did not learn the synthetic task (accuracy {acc})"
    xv, yv = one_region_task(24, 1)
    return model, xv, yv


def signal_region():
    from csbrain.montage import Montage

    regions = Montage.from_names(CHANNELS).regions
    (r,) = {regions[CHANNELS.index(c)] for c in SIGNAL}
    return REGION_NAMES[r]


@pytest.fixture(scope="module")
def summary(trained):
    model, x, y = trained
    raw = explain_windows(model, x, y, methods=("ig", "gradcam", "occlusion"), ig_steps=16)
    assert raw["ig"].shape == (len(x), len(CHANNELS), 2)
    assert set(raw["seconds_per_window"]) == {"ig", "gradcam", "occlusion"}
    return summarise(model, raw, y, ["noise", "alpha"], x=x, y=y)


@pytest.mark.parametrize("method", ["ig", "gradcam", "occlusion", "occlusion_accuracy"])
def test_the_signal_region_ranks_first(summary, method):
    if method == "occlusion_accuracy":
        region = summary["occlusion_accuracy"]["region"]
    else:
        region = summary["methods"][method]["alpha"]["region"]
    assert max(region, key=region.get) == signal_region(), region


# measured: Grad-CAM on the backbone's final token map does not localise here (the tokens are
# mixed across channels by the inter-region attention; it ranks temporal first), hence the
# patch-embedding map by default
@pytest.mark.xfail(strict=True, reason="the final token map is not channel-faithful")
def test_gradcam_on_the_output_map_ranks_the_signal_region_first(trained):
    model, x, y = trained
    raw = explain_windows(model, x, y, methods=("gradcam",), gradcam_layer="output")
    region = summarise(model, raw, y, ["noise", "alpha"])["methods"]["gradcam"]["alpha"]["region"]
    assert max(region, key=region.get) == signal_region(), region


def test_randomised_weights_give_different_attributions(trained):
    model, x, y = trained
    random = tiny_classifier(123).eval()
    for m in ("ig", "gradcam"):
        a = explain_windows(model, x, y, methods=(m,), ig_steps=16)[m]
        b = explain_windows(random, x, y, methods=(m,), ig_steps=16)[m]
        # per-window signed maps (Adebayo et al.'s variant without absolute values); the class
        # means of |IG| correlate more (0.54 measured): |IG| follows the input's power
        rho = spearmanr(a.ravel(), b.ravel())[0]
        assert abs(rho) < 0.3, (m, rho)


def test_integrated_gradients_are_complete(trained):
    model, x, y = trained
    xt, yt = torch.from_numpy(x[:6]), torch.from_numpy(y[:6])
    _, full, delta = integrated_gradients(model, xt, yt, n_steps=64, return_delta=True)
    with torch.no_grad():
        diff = (model(xt) - model(baseline_of(xt))).gather(1, yt[:, None])[:, 0].numpy()
    np.testing.assert_allclose(full.sum(axis=(1, 2, 3)), diff, atol=0.05 * np.abs(diff).max())
    assert np.abs(delta).max() < 0.05 * np.abs(diff).max()


@pytest.mark.parametrize("fused", [True, False])
def test_reading_attention_leaves_outputs_unchanged(trained, fused):
    model, x, _ = trained
    model.backbone.fused_cpu = fused
    xt = torch.from_numpy(x[:4])
    with torch.no_grad():
        plain = model(xt)
    with read_attention(model) as att:
        hooked = model(xt)
    model.backbone.fused_cpu = True
    torch.testing.assert_close(hooked, plain, atol=1e-5, rtol=1e-5)
    assert len(att["region"]) == len(model.backbone.layers)
    for a in att["region"]:
        assert a.shape == (4, len(CHANNELS), len(CHANNELS))
        torch.testing.assert_close(a.sum(-1), torch.ones(4, len(CHANNELS)))


def test_summary_and_figures_are_written(trained, tmp_path):
    from csbrain.explain.figures import write_figures

    model, x, y = trained
    raw = explain_windows(model, x[:8], y[:8], ig_steps=4)
    s = summarise(model, raw, y[:8], ["noise", "alpha"], x=x[:8], y=y[:8])
    figs = write_figures(s, tmp_path)
    assert {p.name for _, p in figs} >= {"topomap_ig.png", "region_time_gradcam.png",
                                         "topomap_occlusion.png", "attention_class1.png"}
    json.dumps(s)
    att = s["attention"]["per_class"]["alpha"]
    assert set(att["channel"]) == {"layer 1", "layer 2", "mean"}


def test_attention_is_summed_per_class_across_batches(trained):
    model, x, y = trained
    raw = explain_windows(model, x[:10], y[:10], methods=("attention",), batch_size=3)
    assert raw["attention_region"][0].shape == (2, len(CHANNELS), len(CHANNELS))
    np.testing.assert_array_equal(raw["attention_count"], np.bincount(y[:10], minlength=2))
    with read_attention(model) as att:
        with torch.no_grad():
            model(torch.from_numpy(x[:10]))
    for k in (0, 1):
        for layer, direct in enumerate(att["region"]):
            np.testing.assert_allclose(raw["attention_region"][layer][k] / (y[:10] == k).sum(),
                                       direct.numpy()[y[:10] == k].mean(0), atol=1e-6)
        s = summarise(model, raw, y[:10], ["noise", "alpha"])
        mean = np.mean([a.numpy()[y[:10] == k].mean(0) for a in att["region"]], axis=0)
        np.testing.assert_allclose(s["attention"]["per_class"][["noise", "alpha"][k]]
                                   ["channel"]["mean"], mean, atol=1e-6)
