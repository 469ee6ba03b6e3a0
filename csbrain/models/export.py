"""Export a model for deployment: ONNX (checked with onnxruntime) or TorchScript.

The exported graph has the model's montage and window length fixed and a dynamic batch: input
``eeg`` ``(batch, n_chans, n_times)`` raw samples in model units (100 µV, 200 Hz, channels in
the montage's input order), output ``output``: logits ``(batch, n_outputs)`` of a
classifier / regressor, tokens ``(batch, C, P, D)`` of a backbone, the reconstruction of a
pretraining model; a sequence model reads ``(batch, L, n_chans, n_times)`` (``L`` fixed) and
gives ``(batch, L, n_outputs)``. It runs the portable path (not the eager-CPU fused kernels)
and does not check for NaN (the eager model does). TorchScript is ``torch.jit.trace``
(deprecated by torch in favour of ``torch.export``, still supported). After writing, the file
is run at two batch sizes and compared with eager PyTorch (fp32): beyond ``atol`` is an
:class:`ExportError`. The ONNX graph differs from eager by float32 rounding (relative ~5e-6
measured).
"""

from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from csbrain._checks import check_int, check_option
from csbrain.models.sequence import CSBrainForSequenceClassification

logger = logging.getLogger(__name__)

__all__ = ["FORMATS", "ExportError", "ExportResult", "export_model"]

FORMATS: tuple[str, ...] = ("onnx", "torchscript")
#: Batch sizes of the parity check (two, so that a batch fixed in the graph is caught).
CHECK_BATCHES: tuple[int, ...] = (1, 3)
#: ONNX opset of the export.
OPSET = 18
INPUT_NAME, OUTPUT_NAME = "eeg", "output"


class ExportError(RuntimeError):
    """The exported file does not reproduce the eager model within the tolerance."""


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_model` wrote.

    Attributes
    ----------
    path : Path
    format : str
    input_shape : tuple
        ``("batch", n_chans, n_times)``.
    max_abs_diff : float | None
        Largest |exported - eager| over the check batches (None: not checked).
    max_abs_output : float | None
        Largest |eager output| over the check batches (the scale of that difference).
    """

    path: Path
    format: str
    input_shape: tuple
    max_abs_diff: float | None
    max_abs_output: float | None = None


class _Raw(nn.Module):
    """The model as one tensor in, one tensor out (what an exported graph holds)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _prepared(model: nn.Module) -> nn.Module:
    """A copy in eval mode on the CPU, portable path, no data-dependent NaN check."""
    model = copy.deepcopy(model).cpu().eval()
    backbone = getattr(model, "backbone", model)
    backbone.fused_cpu = False
    backbone.check_finite = False
    backbone.gradient_checkpointing = False
    return _Raw(model).eval()


def _window_length(model: nn.Module, n_times: int | None) -> int:
    backbone = getattr(model, "backbone", model)
    patch = backbone.config.patch_size
    n_times = n_times if n_times is not None else getattr(model, "n_times", None)
    if n_times is None:
        raise ValueError("n_times is not set: pass n_times= (samples per window at 200 Hz, a "
                         f"multiple of {patch}); the model does not record one")
    n_times = check_int("n_times", n_times, min_value=patch)
    if n_times % patch:
        raise ValueError(f"n_times={n_times} is not a multiple of the patch size {patch}")
    return n_times


def _export_onnx(wrapped: nn.Module, x: torch.Tensor, out: Path, opset: int) -> None:
    batch = torch.export.Dim("batch", min=1)
    torch.onnx.export(wrapped, (x,), str(out), input_names=[INPUT_NAME],
                      output_names=[OUTPUT_NAME], dynamic_shapes={"x": {0: batch}},
                      opset_version=opset, dynamo=True, external_data=False)


def _onnx_runner(path: Path):
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise ImportError("checking an ONNX export needs onnxruntime: "
                          "pip install 'csbrain-eeg[export]'") from err
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda x: session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]


def _torchscript_runner(path: Path):
    module = torch.jit.load(str(path), map_location="cpu").eval()

    def run(x: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return module(x).numpy()
    return run


def export_model(model: nn.Module | str | Path, out: str | Path, *, format: str = "onnx",
                 n_times: int | None = None, sequence_length: int | None = None,
                 check: bool = True, atol: float = 1e-4, opset: int = OPSET, seed: int = 0,
                 **load_kwargs: Any) -> ExportResult:
    """Write ``model`` as an ONNX or TorchScript file with a dynamic batch and check it.

    Parameters
    ----------
    model : torch.nn.Module | str | Path
        A csbrain model, or what :func:`csbrain.models.load_model` reads (folder, hub id,
        released ``.pth``; ``load_kwargs`` such as ``montage`` go to it).
    out : path-like
        The file to write (its folder is created).
    format : {"onnx", "torchscript"}
    n_times : int | None
        Samples per window (a multiple of 200); default: the model's ``n_times``.
    sequence_length : int | None
        Windows per sequence of a :class:`~csbrain.models.CSBrainForSequenceClassification`
        (input ``(batch, sequence_length, n_chans, n_times)``, output ``(batch,
        sequence_length, n_outputs)``); default: the ``sequence_length`` its folder records.
    check : bool
        Run the file (onnxruntime / ``torch.jit.load``) at batch sizes :data:`CHECK_BATCHES`
        on seeded random windows and compare with eager PyTorch.
    atol : float
        Largest accepted absolute difference (fp32).
    opset : int
        ONNX opset.
    seed : int
        Seed of the check's and the tracing's random windows.

    Returns
    -------
    ExportResult

    Raises
    ------
    ExportError
        The file's outputs differ from eager PyTorch by more than ``atol``.
    """
    check_option("format", format, FORMATS)
    saved_length = None
    if not isinstance(model, nn.Module):
        from csbrain.models.hub import load_model, read_model_config

        if Path(model).is_dir():
            extra = read_model_config(model).get("extra") or {}
            saved_length = extra.get("sequence_length")
        model = load_model(model, **load_kwargs)
    n_times = _window_length(model, n_times)
    lead: tuple[int, ...] = ()                     # (L,) for a sequence model
    if isinstance(model, CSBrainForSequenceClassification):
        length = sequence_length if sequence_length is not None else saved_length
        if length is None:
            raise ValueError(f"{type(model).__name__} reads sequences of windows: pass "
                             f"sequence_length (windows per sequence; its folder records none)")
        lead = (check_int("sequence_length", length, min_value=1),)
    elif sequence_length is not None:
        raise ValueError(f"sequence_length={sequence_length} applies to sequence models; "
                         f"{type(model).__name__} reads single windows")
    wrapped = _prepared(model)
    n_chans = getattr(model, "backbone", model).n_chans
    gen = torch.Generator().manual_seed(seed)
    example = torch.randn(2, *lead, n_chans, n_times, generator=gen)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if format == "onnx":
        try:
            import onnxscript  # noqa: F401  (torch.onnx's exporter needs it)
        except ImportError as err:
            raise ImportError("ONNX export needs onnx and onnxscript: "
                              "pip install 'csbrain-eeg[export]'") from err
        _export_onnx(wrapped, example, out, opset)
    else:
        with torch.no_grad(), warnings.catch_warnings():
            # shape checks become constants of the trace: fine for a fixed montage and window
            # (the batch sizes of the check below confirm the batch stays dynamic)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            traced = torch.jit.trace(wrapped, example, check_trace=False)
        torch.jit.save(traced, str(out))
    diff = scale = None
    if check:
        run = _onnx_runner(out) if format == "onnx" else _torchscript_runner(out)
        diff = scale = 0.0
        for batch in CHECK_BATCHES:
            x = torch.randn(batch, *lead, n_chans, n_times, generator=gen)
            with torch.no_grad():
                ref = wrapped(x).numpy()
            got = run(x)
            if got.shape != ref.shape:
                raise ExportError(f"{out}: output shape {got.shape} at batch {batch}, eager "
                                  f"{ref.shape}")
            diff = max(diff, float(np.abs(got - ref).max()))
            scale = max(scale, float(np.abs(ref).max()))
        if diff > atol:
            raise ExportError(f"{out}: max |{format} - eager| = {diff:.3g} exceeds atol={atol:g}")
    logger.info("exported %s to %s (%s, max |diff| %s)", type(model).__name__, out, format, diff)
    return ExportResult(out, format, ("batch", *lead, n_chans, n_times), diff, scale)
