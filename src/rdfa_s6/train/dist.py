"""Devices and processes: one code path for 1 process and for ``torchrun`` (gloo on CPU, NCCL on CUDA)."""
from __future__ import annotations

import os
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, TypeVar

import torch
import torch.distributed as dist

from ..errors import DiskFullError, UserError
from ..runlock import hold_folder

T = TypeVar("T")


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def device_of(name: str) -> torch.device:
    """``auto`` -> CUDA if available, else CPU; anything else as torch spells it (checked: :mod:`rdfa_s6.device`)."""
    from ..device import resolve_device

    return resolve_device(name, int(os.environ.get("LOCAL_RANK", "0")))


def dist_info_from_env() -> DistInfo:
    """This process's place in a ``torchrun`` launch (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), read from the
    environment without joining anything; one process (rank 0 of 1) otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    return DistInfo(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


@contextmanager
def process_group(device: torch.device) -> Iterator[DistInfo]:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1; a no-op otherwise) for the
    duration of the block, and leave it on the way out, also when the block raises, if this call joined it (a
    group joined by an enclosing block is left by that block)."""
    expected = dist_info_from_env()
    if not expected.enabled:
        yield expected
        return
    if device.type == "cuda":  # object collectives (messages) under NCCL go through the current device
        torch.cuda.set_device(expected.local_rank)
    joined = not dist.is_initialized()
    if joined:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    try:
        yield DistInfo(dist.get_rank(), dist.get_world_size(), expected.local_rank)
    finally:
        if joined and dist.is_initialized():
            dist.destroy_process_group()


def all_reduce_sum(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum of ``value`` over all processes (returned as a new tensor)."""
    out = value.detach().clone()
    if info.enabled:
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def error_fields(error: Optional[UserError]) -> Optional[Dict[str, Any]]:
    """A ``UserError`` as plain fields that can travel between processes: its message, and for a
    :class:`DiskFullError` its ``path`` and ``reason`` (None: no error)."""
    if error is None:
        return None
    fields: Dict[str, Any] = {"message": str(error)}
    if isinstance(error, DiskFullError):
        fields.update(kind="disk_full", path=error.path, reason=error.reason)
    return fields


def error_from_fields(fields: Mapping[str, Any]) -> UserError:
    """The error :func:`error_fields` describes: a DiskFullError (with its path and reason) or a UserError."""
    if fields.get("kind") == "disk_full":
        return DiskFullError(fields["message"], fields.get("path"), fields.get("reason", ""))
    return UserError(fields["message"])


def broadcast_error(error: Optional[UserError], info: DistInfo) -> Optional[UserError]:
    """Rank 0's ``error`` on every process (None: no error), rebuilt from its fields; ``error`` itself on rank 0
    and with one process."""
    if not info.enabled:
        return error
    box = [error_fields(error)]
    device = torch.device("cuda", info.local_rank) if dist.get_backend() == "nccl" else None
    dist.broadcast_object_list(box, src=0, device=device)
    return error if info.is_main or box[0] is None else error_from_fields(box[0])


def raise_together(error: Optional[UserError], info: DistInfo) -> None:
    """Every process passes its own ``UserError`` (or None); if any is not None, every process raises the one of
    the lowest rank, so that all stop together with one message. For work that every rank writes itself (one
    shard of the output each); work of rank 0 alone goes through :func:`on_main`."""
    if not info.enabled:
        if error is not None:
            raise error
        return
    errors: list = [None] * info.world_size
    dist.all_gather_object(errors, error_fields(error))
    first = next((rank for rank, e in enumerate(errors) if e is not None), None)
    if first is None:
        return
    if first == info.rank and error is not None:
        raise error
    raise error_from_fields(errors[first])


def on_main(fn: Callable[[], T], info: DistInfo) -> Optional[T]:
    """``fn()`` on rank 0 (None elsewhere). A ``UserError`` it raises (a full disk, a held folder) is raised on
    every process, so that all of them stop together with the same one-line message (exit status 2)."""
    result, error = None, None
    if info.is_main:
        try:
            result = fn()
        except UserError as err:
            error = err
    shared = broadcast_error(error, info)
    if shared is not None:
        raise shared
    return result


@contextmanager
def hold_run_folder(folder: Path, info: DistInfo, command: Optional[str] = None) -> Iterator[Path]:
    """:func:`rdfa_s6.runlock.hold_folder` for a group of processes: rank 0 holds the folder, the others follow
    its verdict (when rank 0 is refused, every process raises its one-line ``FolderBusy`` message)."""
    with ExitStack() as stack:
        on_main(lambda: stack.enter_context(hold_folder(folder, command)), info)
        yield Path(folder)
