"""Figures of a run, each written to a PNG and returned as its path.

Inputs are plain arrays and lists, so any stage (demo, training runs) can call them.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from csbrain import units  # noqa: E402
from csbrain._io import atomic_write_bytes  # noqa: E402


def _save(fig, path: str | Path) -> Path:
    """Save ``fig`` as PNG at ``path`` atomically (an interrupted run leaves no half image)."""
    path = Path(path)
    fig.tight_layout()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, dpi=110, format="png")
    finally:
        plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def plot_curves(panels: Mapping[str, Mapping[str, tuple[Sequence[float], Sequence[float]]]],
                path: str | Path, *, xlabel: str | Sequence[str] = "step",
                title: str | None = None, logy: bool = False) -> Path:
    """One panel per entry of ``panels``; each panel maps a line label to ``(x, y)``.

    Example: ``{"loss": {"train": (steps, losses)}, "val bal. acc.": {"seed 0": (epochs, accs)}}``.
    ``xlabel`` is one label for all panels or one per panel; ``logy`` uses a log y axis.
    """
    n = max(len(panels), 1)
    cols = n if n <= 3 else 2
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    xlabels = [xlabel] * n if isinstance(xlabel, str) else list(xlabel)
    for ax, xl, (name, lines) in zip(axes.flat, xlabels, panels.items()):
        for label, (x, y) in lines.items():
            ax.plot(np.asarray(x), np.asarray(y), label=label, lw=1.4)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(xl)
        if logy:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        if len(lines) > 1:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_confusion(cm: np.ndarray, class_names: Sequence[str], path: str | Path, *,
                   title: str = "confusion matrix") -> Path:
    """Confusion matrix ``cm`` (true rows x predicted columns), counts and row percentages."""
    cm = np.asarray(cm)
    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 * len(class_names) + 2, 1.1 * len(class_names) + 1.5))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{cm[i, j]}\n{100 * rates[i, j]:.0f}%", ha="center", va="center",
                    color="white" if rates[i, j] > 0.6 else "black", fontsize=8)
    ax.set_xticks(range(len(class_names)), class_names, rotation=30, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def plot_roc(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str | Path, *,
             title: str = "ROC") -> Path:
    """ROC curves: ``label -> (y_true, score)`` for binary tasks; AUROC in the legend."""
    from sklearn.metrics import roc_auc_score, roc_curve

    fig, ax = plt.subplots(figsize=(4, 4))
    for label, (y, s) in curves.items():
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, lw=1.4, label=f"{label} (AUROC {roc_auc_score(y, s):.2f})")
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def plot_topomap_importance(channel_importance: Sequence[float], ch_names: Sequence[str],
                            region_importance: Mapping[str, float], path: str | Path, *,
                            title: str = "importance") -> Path:
    """Scalp topomap of per-channel importance (MNE) next to per-region importance bars.

    ``ch_names`` must be 10-05 names (positions from MNE's standard 10-05 template).
    """
    import mne

    from csbrain._montage_geometry import template_positions
    from csbrain.montage import canonical_name

    names = [canonical_name(n) for n in ch_names]
    pos = template_positions()
    info = mne.create_info(names, units.SFREQ, "eeg")
    info.set_montage(mne.channels.make_dig_montage({n: pos[n] for n in names}, coord_frame="head"))
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.6), gridspec_kw={"width_ratios": [1.1, 1]})
    values = np.asarray(channel_importance, dtype=float)
    lim = float(np.max(np.abs(values))) or 1.0
    im, _ = mne.viz.plot_topomap(values, info, axes=axes[0], show=False, cmap="RdBu_r",
                                 vlim=(-lim, lim), names=names, contours=4)
    fig.colorbar(im, ax=axes[0], shrink=0.7)
    axes[0].set_title("per channel", fontsize=9)
    regions = list(region_importance)
    vals = [region_importance[r] for r in regions]
    axes[1].barh(regions, vals, color=["tab:red" if v > 0 else "tab:blue" for v in vals])
    axes[1].axvline(0, color="k", lw=0.8)
    axes[1].invert_yaxis()
    axes[1].set_title("per region", fontsize=9)
    axes[1].set_xlabel("drop in accuracy when removed")
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_reconstruction(x: np.ndarray, recon: np.ndarray, mask: np.ndarray,
                        ch_names: Sequence[str], path: str | Path, *,
                        title: str = "masked reconstruction", max_channels: int = 6) -> Path:
    """Real signal vs reconstruction of one window; masked patches shaded.

    Parameters
    ----------
    x, recon : ndarray, shape (C, P, S)
        Input and reconstruction in the same channel order, model units (100 µV).
    mask : ndarray, shape (C, P)
        1 where the patch was masked.
    """
    C, P, S = x.shape
    show = list(range(min(C, max_channels)))
    t = np.arange(P * S) / units.SFREQ
    fig, axes = plt.subplots(len(show), 1, figsize=(10, 1.3 * len(show) + 0.6), sharex=True,
                             squeeze=False)
    for ax, c in zip(axes[:, 0], show):
        for p in np.flatnonzero(mask[c]):
            ax.axvspan(p * S / units.SFREQ, (p + 1) * S / units.SFREQ, color="0.9")
        ax.plot(t, x[c].reshape(-1) * units.MICROVOLTS_PER_UNIT, lw=0.8, color="k", label="signal")
        ax.plot(t, recon[c].reshape(-1) * units.MICROVOLTS_PER_UNIT, lw=0.8, color="tab:red",
                label="reconstruction")
        ax.set_ylabel(f"{ch_names[c]}\nµV", fontsize=8)
    axes[0, 0].legend(fontsize=7, loc="upper right", ncol=2)
    axes[-1, 0].set_xlabel("time (s); grey = masked patches")
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_feature_diagnostics(records: Sequence[Mapping[str, object]], path: str | Path, *,
                             title: str = "representation diagnostics (validation windows)",
                             spread_threshold: float | None = 0.1) -> Path:
    """Feature spread, mean cosine and effective rank of the validation windows per epoch.

    Parameters
    ----------
    records : sequence of dict
        A run's ``metrics.jsonl`` records; those with ``val_feature_spread`` are drawn
        (``epoch``, else ``step``, on the x axis), with ``val_mean_cosine`` and
        ``val_effective_rank`` where present.
    path : path-like
    title : str
    spread_threshold : float | None
        Drawn as a dotted line (the collapse threshold of
        :data:`csbrain.engine.diagnostics.SPREAD_THRESHOLD`); ``None``: none.

    Raises
    ------
    ValueError
        No record holds ``val_feature_spread`` (a run without validation windows).
    """
    rows = [r for r in records if r.get("val_feature_spread") is not None]
    if not rows:
        raise ValueError("no record holds val_feature_spread (pretrain with val_fraction > 0)")
    xkey = "epoch" if all("epoch" in r for r in rows) else "step"
    x = np.array([float(r.get(xkey, i)) for i, r in enumerate(rows)])

    def series(key: str) -> tuple[np.ndarray, np.ndarray]:
        keep = [i for i, r in enumerate(rows) if r.get(key) is not None]
        return x[keep], np.array([float(rows[i][key]) for i in keep])

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.2, 3.2))
    ax1.plot(*series("val_feature_spread"), marker="o", ms=3, lw=1.4, label="spread / RMS")
    ax1.plot(*series("val_mean_cosine"), marker="o", ms=3, lw=1.4, label="mean cosine")
    if spread_threshold is not None:
        ax1.axhline(spread_threshold, color="tab:red", ls=":", lw=1, label="collapse threshold")
    ax1.set_title("spread across windows, mean pairwise cosine", fontsize=9)
    ax1.legend(fontsize=7)
    ax2.plot(*series("val_effective_rank"), marker="o", ms=3, lw=1.4, color="tab:green")
    ax2.set_title("effective rank (participation ratio)", fontsize=9)
    for ax in (ax1, ax2):
        ax.set_xlabel(xkey)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)
