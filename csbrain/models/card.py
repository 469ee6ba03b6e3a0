"""Model cards: the ``README.md`` of a saved model folder (what the hub shows).

:func:`model_card` renders one from a folder's ``config.json`` (architecture, montage,
preprocessing, training data, the source checkpoint's sha256 and the measured parity recorded in
``extra``) plus metrics (given, or the run's ``metrics.json``); the YAML header (license,
library, tags) is ``huggingface_hub.ModelCardData``. Nothing here is measured: the card reports
what the folder records.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from csbrain._io import atomic_write_text
from csbrain.models.hub import WEIGHTS_NAME, read_model_config

logger = logging.getLogger(__name__)

__all__ = ["CARD_NAME", "LICENSE", "sha256_of", "model_card", "write_model_card"]

CARD_NAME = "README.md"
#: License of csbrain's code and of the models it saves (the project's license, MIT).
LICENSE = "mit"
#: Metrics file of a run folder (:mod:`csbrain.engine.rundir`), read when present.
_RUN_METRICS = "metrics.json"
_TAGS = ["eeg", "csbrain", "pytorch", "foundation-model", "braindecode-compatible"]


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _json_block(value: Any) -> str:
    return "```json\n" + json.dumps(value, indent=1, sort_keys=True, default=str) + "\n```"


def _metric_lines(metrics: dict[str, Any]) -> list[str]:
    rows = []
    for split in ("val", "test"):
        for name, value in sorted((metrics.get(split) or {}).items()):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                rows.append(f"| {split} | {name} | {value:.4g} |")
    flat = [f"| - | {k} | {v:.4g} |" for k, v in sorted(metrics.items())
            if isinstance(v, (int, float)) and not isinstance(v, bool)]
    rows += flat
    return ["| split | metric | value |", "| --- | --- | --- |", *rows] if rows else []


def model_card(folder: str | Path, *, metrics: dict[str, Any] | None = None,
               license: str = LICENSE):
    """The model card of a saved model folder.

    Parameters
    ----------
    folder : path-like
        A folder of :meth:`csbrain.models.hub.HubMixin.save_pretrained`.
    metrics : dict | None
        Evaluation metrics (``{"test": {"balanced_accuracy": ...}}`` or flat numbers); default:
        the folder's ``metrics.json`` when it is a run folder, else none.
    license : str
        License identifier of the YAML header.

    Returns
    -------
    huggingface_hub.ModelCard
    """
    from huggingface_hub import ModelCard, ModelCardData

    folder = Path(folder)
    meta = read_model_config(folder)
    extra = meta.get("extra") or {}
    if metrics is None and (folder / _RUN_METRICS).is_file():
        metrics = json.loads((folder / _RUN_METRICS).read_text("utf-8"))
    mont, cfg, task = meta["montage"], meta["config"], meta.get("task") or {}
    channels = list(mont.get("channels") or [])
    data = ModelCardData(license=license, library_name="csbrain", tags=list(_TAGS))
    lines = [f"# CSBrain: {meta['architecture']}", "",
             "CSBrain, a cross-scale spatiotemporal EEG foundation model, saved by "
             f"[csbrain](https://pypi.org/project/csbrain-eeg/) {meta.get('csbrain_version', '')}"
             " (`pip install csbrain-eeg`).", "",
             "## Architecture", "",
             f"`{meta['architecture']}`: {cfg.get('n_layers')} layers, d_model "
             f"{cfg.get('d_model')}, {cfg.get('n_heads')} heads, feed-forward "
             f"{cfg.get('dim_feedforward')}, kernel sizes {cfg.get('kernel_sizes')}, temporal "
             f"mode `{cfg.get('temporal_mode')}`; task arguments `{json.dumps(task)}`.", "",
             "## Montage", "",
             f"{len(channels)} channels"
             + (f" (preset `{mont['preset']}`)" if mont.get("preset") else "")
             + f": {', '.join(channels)}.", "",
             "## Input and preprocessing", "",
             "Input `(batch, n_chans, n_times)` at 200 Hz in units of 100 µV (volts x 1e4), "
             "`n_times` a multiple of 200 (1 s patches); channels in the montage's order."]
    if extra.get("preprocessing"):
        lines += ["", "Preprocessing of the training windows (`csbrain prepare` config):", "",
                  _json_block(extra["preprocessing"])]
    lines += ["", "## Training data", ""]
    if extra.get("data"):
        kind = extra.get("run", "run")
        lines += [f"Run kind `{kind}`" + (f", method `{extra['method']}`" if "method" in extra
                                          else "")
                  + (f", task `{extra['task']}`" if "task" in extra else "")
                  + (f", labels {extra['label_names']}" if extra.get("label_names") else "")
                  + ".", "", _json_block(extra["data"])]
    elif extra.get("converted_from"):
        lines.append(f"Converted from the released checkpoint `{extra['converted_from']}` "
                     "(pretrained by the CSBrain authors; see their paper for the corpus).")
    else:
        lines.append("Not recorded.")
    lines += ["", "## Checksums and parity", "",
              f"- `{WEIGHTS_NAME}` sha256: `{sha256_of(folder / WEIGHTS_NAME)}`"]
    if extra.get("source_sha256"):
        lines.append(f"- source checkpoint `{extra.get('converted_from', '?')}` sha256: "
                     f"`{extra['source_sha256']}`")
    parity = extra.get("parity")
    if parity:
        lines.append(f"- parity: max |difference| {parity['max_abs_diff']:.3g} "
                     f"({parity.get('what', '')})")
    else:
        lines.append("- parity: not measured for this folder")
    table = _metric_lines(metrics or {})
    lines += ["", "## Metrics", "", *(table or ["None recorded."])]
    lines += ["", "## Use", "", "```python", "from csbrain.models import load_model",
              "model = load_model(\"THIS_REPO_OR_FOLDER\")   # hub id or local folder",
              "```", "", f"License: {license}.", ""]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))


def write_model_card(folder: str | Path, *, metrics: dict[str, Any] | None = None,
                     license: str = LICENSE) -> Path | None:
    """Write :func:`model_card` to ``folder/README.md``; None (logged) without huggingface_hub.

    Returns
    -------
    Path | None
        The card's path.
    """
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        logger.info("no model card for %s: it needs huggingface_hub (pip install "
                    "'csbrain-eeg[hub]')", folder)
        return None
    card = model_card(folder, metrics=metrics, license=license)
    path = Path(folder) / CARD_NAME
    atomic_write_text(path, str(card))
    return path

