"""Figures only the demo draws: the spectral reconstruction of a held-out window and the
data-scaling curve."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from csbrain import units
from csbrain.report.plots import _save, plt  # Agg backend, atomic PNG writes


def plot_spectral_reconstruction(target: np.ndarray, predicted: np.ndarray, mask: np.ndarray,
                                 ch_names: Sequence[str], path: str | Path, *, title: str,
                                 max_channels: int = 6) -> Path:
    """Target vs predicted standardised log-amplitude spectrum of the masked patches.

    Parameters
    ----------
    target, predicted : ndarray, shape (C, P, F)
        Spectral target and the model's spectral head, input channel order.
    mask : ndarray, shape (C, P)
        1 where the patch was masked.
    ch_names : sequence of str
    path : path-like
    title : str
    max_channels : int
        Channels drawn (those with a masked patch, spread over the montage).
    """
    masked = [c for c in range(len(ch_names)) if mask[c].any()]
    show = [masked[int(i)] for i in np.linspace(0, len(masked) - 1,
                                                min(max_channels, len(masked)))] if masked else []
    freqs = np.fft.rfftfreq(units.PATCH_SIZE, 1 / units.SFREQ)[: target.shape[-1]]
    fig, axes = plt.subplots(1, max(1, len(show)), figsize=(2.2 * max(1, len(show)) + 0.6, 2.8),
                             sharey=True, squeeze=False)
    for ax, c in zip(axes[0], show):
        m = mask[c].astype(bool)
        for p, colour in ((target, "k"), (predicted, "tab:red")):
            mean, sd = p[c][m].mean(axis=0), p[c][m].std(axis=0)
            ax.plot(freqs, mean, color=colour, lw=1.0)
            ax.fill_between(freqs, mean - sd, mean + sd, color=colour, alpha=0.15, lw=0)
        ax.set_title(f"{ch_names[c]} ({int(m.sum())} masked)", fontsize=8)
        ax.set_xlabel("Hz", fontsize=8)
    axes[0, 0].set_ylabel("standardised log-amplitude", fontsize=8)
    axes[0, 0].plot([], [], color="k", label="target")
    axes[0, 0].plot([], [], color="tab:red", label="predicted")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def plot_scaling(rows: list[dict[str, Any]], path: str | Path, *, title: str,
                 metric: str = "balanced_accuracy") -> Path:
    """Test score (mean ± std over seeds) against the fraction of pretraining windows, one
    line per adaptation method (``rows``: the ``scaling`` entries of ``results.json``)."""
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    methods = sorted({m for r in rows for m in r["methods"]})
    for method in methods:
        pts = [(r["fraction"], r["methods"][method][metric]) for r in rows
               if method in r["methods"] and r["methods"][method][metric]["mean"] is not None]
        x = np.array([p[0] for p in pts])
        mean = np.array([p[1]["mean"] for p in pts])
        std = np.array([p[1]["std"] for p in pts])
        ax.errorbar(x, mean, yerr=std, marker="o", capsize=3, label=method)
    ax.set_xticks([r["fraction"] for r in rows])
    ax.set_xticklabels(["none\n(random init)" if r["fraction"] == 0 else f"{r['fraction']:g}"
                        for r in rows])
    ax.set_xlabel("fraction of the pretraining windows")
    ax.set_ylabel(f"test {metric.replace('_', ' ')}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=9)
    return _save(fig, path)
