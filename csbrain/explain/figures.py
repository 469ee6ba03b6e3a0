"""Figures of an explanation summary (:func:`csbrain.explain.core.summarise`): scalp topomaps
per class and method with the regions marked, region x time heat maps, attention matrices."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from csbrain.report.plots import _save, plt

__all__ = ["plot_topomaps", "plot_region_time", "plot_attention", "write_figures"]

def _info(ch_names: Sequence[str]):
    import mne

    from csbrain._montage_geometry import template_positions
    from csbrain.montage import canonical_name

    names = [canonical_name(n) for n in ch_names]
    pos = template_positions()
    info = mne.create_info(names, 200.0, "eeg")
    info.set_montage(mne.channels.make_dig_montage({n: pos[n] for n in names},
                                                   coord_frame="head"))
    return info, names


def plot_topomaps(summary: Mapping[str, Any], method: str, path: str | Path) -> Path:
    """One MNE topomap per class of ``method``'s channel values; each region's electrodes
    labelled with their region's first letters, the top region named in the panel title."""
    import mne

    per_class = summary["methods"][method]
    info, names = _info(summary["channels"])
    regions = summary["channel_regions"]
    labels = [f"{n}\n{r[:3]}" for n, r in zip(names, regions)]   # region marked per electrode
    fig, axes = plt.subplots(1, len(per_class), figsize=(3.4 * len(per_class), 3.4),
                             squeeze=False)
    for ax, (cls, entry) in zip(axes[0], per_class.items()):
        values = np.asarray(entry["channel"], dtype=float)
        lim = float(np.max(np.abs(values))) or 1.0
        vlim = (-lim, lim) if values.min() < 0 else (0.0, lim)
        im, _ = mne.viz.plot_topomap(values, info, axes=ax, show=False,
                                     cmap="RdBu_r" if values.min() < 0 else "Reds",
                                     vlim=vlim, names=labels, contours=4)
        top = max(entry["region"], key=entry["region"].get)
        ax.set_title(f"{cls} (top region: {top})", fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.6)
    fig.suptitle(f"{method}: per channel, per class", fontsize=10)
    return _save(fig, path)


def plot_region_time(summary: Mapping[str, Any], method: str, path: str | Path) -> Path:
    """Region x patch heat map per class of ``method`` (mean |attribution|)."""
    per_class = summary["methods"][method]
    fig, axes = plt.subplots(1, len(per_class), figsize=(3.6 * len(per_class), 2.8),
                             squeeze=False)
    for ax, (cls, entry) in zip(axes[0], per_class.items()):
        rt = np.asarray(entry["region_time"])
        im = ax.imshow(rt, aspect="auto", cmap="Reds", interpolation="nearest")
        ax.set_yticks(range(len(summary["regions"])), summary["regions"], fontsize=8)
        ax.set_xlabel("patch (1 s each)")
        ax.set_title(str(cls), fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(f"{method}: region x time", fontsize=10)
    return _save(fig, path)


def plot_attention(summary: Mapping[str, Any], cls: str, path: str | Path) -> Path:
    """Inter-region attention of one class: channel x channel (sorted, labelled) and
    region x region for each layer and their mean, plus the inter-window matrix (mean)."""
    att = summary["attention"]["per_class"][cls]
    keys = list(att["channel"])
    labels = summary["attention"]["sorted_channels"]
    fig, axes = plt.subplots(3, len(keys), figsize=(3.2 * len(keys), 9.0), squeeze=False)
    for j, k in enumerate(keys):
        for row, (what, ticks) in enumerate((("channel", labels),
                                             ("region", summary["regions"]))):
            ax = axes[row][j]
            im = ax.imshow(np.asarray(att[what][k]), cmap="viridis", vmin=0)
            fig.colorbar(im, ax=ax, shrink=0.7)
            ax.set_xticks(range(len(ticks)), ticks, rotation=90, fontsize=6)
            ax.set_yticks(range(len(ticks)), ticks, fontsize=6)
            ax.set_title(f"{what}s, {k}", fontsize=8)
        ax = axes[2][j]
        win = np.asarray(att["window"][k])
        im = ax.imshow(win, cmap="viridis", vmin=0)
        fig.colorbar(im, ax=ax, shrink=0.7)
        ax.set_xticks(range(len(win)), [str(i + 1) for i in range(len(win))])
        ax.set_yticks(range(len(win)), [str(i + 1) for i in range(len(win))])
        ax.set_title(f"windows, {k}", fontsize=8)
        ax.set_xlabel("key window")
        ax.set_ylabel("query window")
    fig.suptitle(f"attention, class {cls} (rows: queries)", fontsize=10)
    return _save(fig, path)


def write_figures(summary: Mapping[str, Any], out: str | Path) -> list[tuple[str, Path]]:
    """Every figure of ``summary`` as PNGs in ``out``; returns ``(caption, path)`` pairs."""
    out = Path(out)
    figs = []
    for m, entry in summary["methods"].items():
        if entry:
            figs.append((f"{m}: topomaps per class", plot_topomaps(summary, m,
                                                                    out / f"topomap_{m}.png")))
        if entry and "region_time" in next(iter(entry.values())):
            figs.append((f"{m}: region x time per class",
                         plot_region_time(summary, m, out / f"region_time_{m}.png")))
    for i, cls in enumerate(summary.get("attention", {}).get("per_class", {})):
        figs.append((f"attention, class {cls}",
                     plot_attention(summary, cls, out / f"attention_class{i}.png")))
    return figs
