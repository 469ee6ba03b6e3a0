"""Streaming inference over long recordings: chunks prepared in a background thread while the
model runs on the previous one, outputs written incrementally to a temporary file that is
renamed only when every recording is done (an interrupted run leaves no half-written output).

Memory is bounded by the chunk size (:mod:`csbrain.data.streaming`), not by the duration.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from csbrain._io import file_mode
from csbrain.data.streaming import WindowChunk, open_stream, stream_windows

logger = logging.getLogger(__name__)

__all__ = ["bf16_support", "autocast", "prefetch_chunks", "forward_chunks", "TempOutput"]

_END = object()


def bf16_support(device: torch.device | str) -> str | None:
    """None when ``device`` runs bfloat16 natively, else why not (one line).

    CPUs need AVX-512 BF16 or AMX (without them PyTorch emulates bf16 and runs *slower* than
    fp32, so ``--bf16`` is refused rather than silently slow); CUDA devices need
    ``torch.cuda.is_bf16_supported()``.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return None if torch.cuda.is_bf16_supported() else "this GPU has no bfloat16 support"
    if device.type == "cpu":
        if torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported():
            return None
        return (f"this CPU has no native bfloat16 (capability "
                f"{torch.backends.cpu.get_cpu_capability()}; needs AVX512_BF16 or AMX)")
    return f"bfloat16 is not supported on device {device.type!r}"


def autocast(device: torch.device | str, bf16: bool):
    """bfloat16 autocast context on ``device`` when ``bf16``, else a no-op context."""
    device = torch.device(device)
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def prefetch_chunks(path: str | Path, prep, *, chunk_s: float,
                    depth: int = 2) -> tuple[object, Iterator[WindowChunk]]:
    """Open ``path`` for streaming and prepare its chunks in a background thread.

    Returns
    -------
    info : StreamInfo
        Raises :class:`~csbrain.data.streaming.NotStreamable` before any thread starts.
    chunks : iterator of WindowChunk
        At most ``depth`` chunks wait in memory; errors of the thread are raised here.
    """
    info = open_stream(path, prep)
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for chunk in stream_windows(info, prep, chunk_s=chunk_s):
                while not stop.is_set():
                    try:
                        q.put(chunk, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_END)
        except BaseException as err:  # handed to the consumer, which raises it
            q.put(err)

    thread = threading.Thread(target=work, name=f"csbrain-stream-{Path(path).name}",
                              daemon=True)
    thread.start()

    def chunks() -> Iterator[WindowChunk]:
        try:
            while True:
                item = q.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            thread.join(timeout=5)

    return info, chunks()


def forward_chunks(fn: Callable[..., torch.Tensor], chunks: Iterator[WindowChunk], *,
                   batch_size: int, device: torch.device | str, bf16: bool = False,
                   per_chunk: bool = False) -> Iterator[tuple[WindowChunk, np.ndarray]]:
    """Run ``fn`` over each chunk's windows in batches; yield ``(chunk, outputs float32)``.

    ``per_chunk``: call ``fn(x, start)`` once with all the chunk's windows and their starts
    (a sequence model, :func:`csbrain.engine.sequences.sequence_forward`, batches itself).
    """
    for chunk in chunks:
        outs = []
        with torch.no_grad(), autocast(device, bf16):
            if per_chunk:
                if len(chunk.x):
                    x = torch.from_numpy(chunk.x).to(device)
                    outs.append(fn(x, np.asarray(chunk.start)).float().cpu().numpy())
            else:
                for i in range(0, len(chunk.x), batch_size):
                    xb = torch.from_numpy(chunk.x[i:i + batch_size]).to(device)
                    outs.append(fn(xb).float().cpu().numpy())
        yield chunk, (np.concatenate(outs) if outs else np.zeros((0,), np.float32))


class TempOutput:
    """A temporary file next to ``out``, renamed onto it by :meth:`commit`, removed on failure.

    Use as a context manager: leaving the block by an exception (or an interrupt) deletes the
    temporary file, so ``out`` is either the previous file or the complete new one.
    """

    def __init__(self, out: str | Path, mode: str = "w", *, suffix: str = ".part") -> None:
        self.out = Path(out)
        self.tmp = self.out.with_name(f".{self.out.name}.{os.getpid()}{suffix}")
        self.file = open(self.tmp, mode, newline="" if "b" not in mode else None)

    def __enter__(self) -> TempOutput:
        return self

    def commit(self, path: Path | None = None) -> None:
        """Flush, fsync and rename ``path`` (default: the temporary file) onto ``out``."""
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        src = path or self.tmp
        os.chmod(src, file_mode())
        os.replace(src, self.out)

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.file.closed:
            self.file.close()
        if self.tmp.exists():
            self.tmp.unlink()
