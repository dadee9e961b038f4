"""Multi-process training with PyTorch's own engine: torchrun sets the environment, DDP syncs gradients."""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group that torchrun describes in the environment (WORLD_SIZE > 1).

    Backend: NCCL on CUDA, gloo otherwise. A single process returns DistInfo() and starts nothing.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        store = _attempt_store(world)
        if store is None:
            dist.init_process_group(backend=backend)
        else:
            dist.init_process_group(backend=backend, store=store, rank=int(os.environ["RANK"]), world_size=world)
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def _attempt_store(world: int):
    """The store of this torchrun attempt: the launcher's store under a prefix of its own per restart.

    torchrun keeps one store for all the attempts of a run (``--max-restarts``), and the process group's
    keys of a failed attempt stay in it: a restarted rank can read a dead peer's address and fail to
    connect (gloo's connectFullMesh, NCCL's unique id). ``TORCHELASTIC_RESTART_COUNT`` is the same on every
    worker of an attempt, so each attempt gets a clean key space. None outside torchrun's shared store.
    """
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True" or "MASTER_ADDR" not in os.environ:
        return None
    from datetime import timedelta

    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world, is_master=False,
                          timeout=timedelta(minutes=10))
    run_id = os.environ.get("TORCHELASTIC_RUN_ID", "none")
    return dist.PrefixStore(f"ganforge/{run_id}/attempt_{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)


def wrap_ddp(net: nn.Module, device: torch.device) -> nn.Module:
    """DDP wrapper for a network with trainable parameters.

    Buffers are not broadcast at every forward: :func:`sync_buffers` averages them once per step.
    """
    ids = [device.index] if device.type == "cuda" else None
    if "forward_sync_buffers" in _DDP_ARGS:  # newer torch: broadcast_buffers is deprecated (a FutureWarning)
        return nn.parallel.DistributedDataParallel(net, device_ids=ids, forward_sync_buffers=False)
    return nn.parallel.DistributedDataParallel(net, device_ids=ids, broadcast_buffers=False)


_DDP_ARGS = frozenset(inspect.signature(nn.parallel.DistributedDataParallel.__init__).parameters)


def convert_sync_bn(net: nn.Module) -> nn.Module:
    """``net`` with every BatchNorm replaced by PyTorch's SyncBatchNorm (``sync_bn=true``): batch statistics
    over the batches of every process, not each process's own. Parameters, buffers and state_dict keys stay
    as they were (checkpoints load either way). SyncBatchNorm runs on CUDA only; call it before DDP wraps
    the network."""
    return nn.SyncBatchNorm.convert_sync_batchnorm(net)


@torch.no_grad()
def sync_buffers(nets: dict[str, nn.Module], info: DistInfo) -> None:
    """Make every rank's buffers equal: floating ones (BN running mean/var) are averaged over ranks,
    so they reflect every process's data; integer ones (batch counters) are taken from rank 0."""
    if not info.enabled:
        return
    floats = [b for net in nets.values() for b in net.buffers() if b.is_floating_point()]
    others = [b for net in nets.values() for b in net.buffers() if not b.is_floating_point()]
    if floats:
        flat = torch.cat([b.reshape(-1).float() for b in floats])
        dist.all_reduce(flat)
        flat /= info.world_size
        offset = 0
        for b in floats:
            b.copy_(flat[offset:offset + b.numel()].view_as(b))
            offset += b.numel()
    for b in others:
        dist.broadcast(b, src=0)


def all_gather_object(obj, info: DistInfo) -> list:
    if not info.enabled:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
