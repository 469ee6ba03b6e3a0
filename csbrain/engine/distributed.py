"""Data-parallel set-up for runs launched by ``torchrun`` (or a cluster launcher that sets the
same environment): detection, process group (gloo on CPU, NCCL on CUDA), DDP wrapping, a
resumable :class:`~torch.utils.data.DistributedSampler`, rank-0 helpers.

A plain ``python`` / ``csbrain`` process is world size 1 and uses the same code path (the
sampler included), so one process and N processes see the same global batches.
"""

from __future__ import annotations

import atexit
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

logger = logging.getLogger(__name__)

_OWNED_GROUP = False  # True when setup() initialised the process group (cleanup() destroys it)

__all__ = ["DistInfo", "env_world", "resolve_device", "setup", "cleanup", "wrap_ddp", "unwrap",
           "ResumableSampler", "all_reduce_sum", "barrier", "broadcast_object"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: ``rank`` of ``world_size``, its ``device``."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """True on rank 0 (the only rank that writes files and shows progress)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def env_world() -> tuple[int, int, int]:
    """``(rank, local_rank, world_size)`` from the torchrun environment (0, 0, 1 without)."""
    def get(name: str, default: int) -> int:
        value = os.environ.get(name)
        try:
            return default if value in (None, "") else int(value)
        except ValueError:
            raise ValueError(f"environment variable {name}={value!r} is not an integer "
                             "(set by torchrun)") from None

    return get("RANK", 0), get("LOCAL_RANK", 0), get("WORLD_SIZE", 1)


def resolve_device(spec: str, local_rank: int = 0) -> torch.device:
    """``"auto"`` -> ``cuda:local_rank`` if CUDA is available, else CPU; others as given."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device={spec!r} but CUDA is not available; use device=cpu or auto")
        if spec == "cuda":
            spec = f"cuda:{local_rank}"
    if spec == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device='mps' but MPS is not available; use device=cpu or auto")
    return torch.device(spec)


def setup(device: str = "auto") -> DistInfo:
    """Detect torchrun, initialise the process group if needed, choose the device.

    The group is created once per process and destroyed at exit, so several runs in one
    ``torchrun`` process share it (re-creating a group on torchrun's store is not reliable).

    Parameters
    ----------
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` (``cuda:LOCAL_RANK`` under torchrun), ``"cuda:N"``.

    Returns
    -------
    DistInfo
    """
    rank, local_rank, world = env_world()
    dev = resolve_device(device, local_rank)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend=backend)
        global _OWNED_GROUP
        _OWNED_GROUP = True
        atexit.register(cleanup)  # one group per process, reused by later runs in it
        logger.info("process group %s: rank %d of %d on %s", backend, rank, world, dev)
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world, device=dev)


def cleanup() -> None:
    """Destroy the process group if :func:`setup` initialised it (not one made by the caller).

    Called at interpreter exit; call it earlier only when no further run follows.
    """
    global _OWNED_GROUP
    if _OWNED_GROUP and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _OWNED_GROUP = False


def wrap_ddp(model: torch.nn.Module, info: DistInfo) -> torch.nn.Module:
    """Wrap ``model`` (already on ``info.device``) in DDP when the world has several ranks."""
    if not info.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [info.device.index] if info.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DDP wrapper (or ``model`` itself)."""
    return getattr(model, "module", model)


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of ``t`` over ranks (a copy; ``t`` itself without a process group)."""
    if dist.is_available() and dist.is_initialized():
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier() -> None:
    """Wait for every rank (no-op without a process group)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def broadcast_object(obj, src: int = 0):
    """Rank ``src``'s ``obj`` on every rank (``obj`` itself without a process group)."""
    if dist.is_available() and dist.is_initialized():
        box = [obj]
        dist.broadcast_object_list(box, src=src)
        return box[0]
    return obj


class ResumableSampler(DistributedSampler):
    """:class:`DistributedSampler` that can start an epoch part-way (``set_start``).

    The epoch's permutation is drawn from ``seed + epoch`` exactly as in
    :class:`DistributedSampler`; rank ``r`` takes every ``world_size``-th index. With
    ``num_replicas=1`` it is a seeded shuffle, and a global batch of ``B`` over ``N`` ranks holds
    the same windows as batch ``B`` of one process.
    """

    def __init__(self, dataset, *, num_replicas: int = 1, rank: int = 0, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle,
                         seed=seed, drop_last=drop_last)
        self.start = 0

    def set_start(self, n_samples: int) -> None:
        """Skip the first ``n_samples`` of this rank's share of the current epoch."""
        self.start = int(n_samples)

    def __iter__(self):
        indices = list(super().__iter__())
        return iter(indices[self.start:])

    def __len__(self) -> int:
        return max(self.num_samples - self.start, 0)
