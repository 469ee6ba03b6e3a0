"""``csbrain probe --model PATH --data STORE``: are the frozen features informative?

Feature spread across windows, effective rank and mean pairwise cosine at the patch embedding and
after every layer (mean-pooled and per channel), next to ``--n-random`` randomly initialised
backbones of the same configuration; where the store has labels, a cross-validated linear probe
of each (folds keep recordings together when every class spans two recordings or more). A
feature set is flagged ``collapsed`` when its spread is far below that of random backbones (see
:func:`csbrain.engine.diagnostics.diagnose`). Run it on windows held out from pretraining.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from csbrain.cli._common import add_montage_options, montage_option

logger = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("probe", help="representation diagnostics of a frozen model on a store",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, metavar="PATH",
                   help="model or run folder, or a released .pth")
    p.add_argument("--data", required=True, metavar="STORE", help="window store")
    p.add_argument("--json", metavar="OUT", help="write the full report as JSON here")
    p.add_argument("--n-random", type=int, default=3, metavar="N",
                   help="random-initialised backbones to compare with (default 3)")
    p.add_argument("--max-windows", type=int, default=1000, metavar="N",
                   help="a seeded random subset of at most N windows (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of everything random (default 0)")
    p.add_argument("--batch-size", type=int, default=64, metavar="N")
    p.add_argument("--device", default=None, help="e.g. cpu or cuda (default: cpu)")
    add_montage_options(p, " (a released .pth without it reads the store's montage)")
    p.set_defaults(run=run)


def _probe_groups(labels: np.ndarray, recordings: np.ndarray) -> np.ndarray | None:
    """The recordings as probe groups if every class spans two recordings or more."""
    for c in np.unique(labels):
        if len(np.unique(recordings[labels == c])) < 2:
            logger.info("class %s lies in one recording: probe folds split windows, not "
                        "recordings", c)
            return None
    return recordings


def run(args: argparse.Namespace) -> int:
    from csbrain.engine.diagnostics import diagnose
    from csbrain.engine.rundata import labelled_indices, open_run_data
    from csbrain.models import load_model

    if args.n_random < 0 or args.max_windows < 2 or args.batch_size < 1:
        raise ValueError("--n-random must be >= 0, --max-windows >= 2 and --batch-size >= 1")
    if args.json:
        from csbrain._io import check_writable

        check_writable(args.json)  # before the probe runs, not after it
    rd = open_run_data(args.data)
    montage = montage_option(args)
    if montage is None and Path(args.model).is_file():
        montage = rd.montage
    model = load_model(args.model, montage=montage)
    backbone = getattr(model, "backbone", model)
    if backbone.montage != rd.montage:
        backbone.set_montage(rd.montage)
    labels = np.asarray(rd.labels)
    labelled = labelled_indices(labels) if labels.dtype.kind in "iu" else np.array([], int)
    dataset, labels_arg, groups = rd.dataset, None, None
    if len(labelled) and len(np.unique(labels[labelled])) >= 2:
        from torch.utils.data import Subset

        dataset, labels_arg = Subset(rd.dataset, labelled.tolist()), labels[labelled]
        rec = np.asarray(rd.groups["recording"])[labelled]
        groups = _probe_groups(labels_arg, rec)
    report = diagnose(model, dataset, labels_arg, groups=groups, n_random=args.n_random,
                      seed=args.seed, batch_size=args.batch_size, device=args.device or "cpu",
                      max_windows=args.max_windows)
    report.update(model=str(args.model), data=str(args.data))
    if args.json:
        from csbrain._io import atomic_write_bytes

        atomic_write_bytes(Path(args.json), json.dumps(report, indent=2).encode())
    print(_table(report))
    return 0


def _fmt(v: float | None) -> str:
    return "   -" if v is None else f"{v:.3f}"


def _table(report: dict) -> str:
    """A short text table: one row per feature set."""
    probe = report.get("n_probe_windows") is not None
    head = f"{'features':<20} {'spread':>7} {'rand':>6} {'rank':>6} {'cosine':>7}"
    if probe:
        head += f" {'bacc':>6} {'rand':>6} {'auroc':>6} {'rand':>6}"
    lines = [f"{report['n_windows']} windows, {report['n_random']} random backbone(s)"
             + (f", probe on {report['n_probe_windows']} labelled" if probe else ""), head]
    for name, e in report["features"].items():
        m, r = e["model"], e.get("random_mean", {})
        row = (f"{name:<20} {_fmt(m['spread']):>7} {_fmt(r.get('spread')):>6} "
               f"{m['effective_rank']:>6.1f} {_fmt(m['mean_cosine']):>7}")
        if probe:
            pm, pr = e["probe"]["model"], e["probe"]["random"]

            def rand_mean(key: str, pr=pr) -> float | None:
                vals = [p[key] for p in pr if p.get(key) is not None]
                return float(np.mean(vals)) if vals else None

            row += (f" {_fmt(pm['balanced_accuracy']):>6} {_fmt(rand_mean('balanced_accuracy')):>6}"
                    f" {_fmt(pm.get('auroc')):>6} {_fmt(rand_mean('auroc')):>6}")
        lines.append(row + ("  COLLAPSED" if e["collapsed"] else ""))
    return "\n".join(lines)
