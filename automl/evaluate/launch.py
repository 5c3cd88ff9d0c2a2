"""Where the ranks of a DistributedDataParallel training come from, and what is refused up front.

``torchrun`` (or any launcher speaking its protocol: RANK, WORLD_SIZE, LOCAL_RANK in the
environment) makes this process one rank of its group; otherwise ``--nproc N`` asks
:mod:`automl.evaluate.distributed` to spawn N ranks itself. gloo on CPUs, NCCL on GPUs (one GPU
per rank). Only accelerators that declare ``ddp_safe`` may run, and the global batch must split
into equal per-process shares.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from automl.core.errors import AutomlError
from automl.train.config import TrainConfig


@dataclass(frozen=True)
class Launch:
    """Where this process stands: ``rank`` of ``world`` processes, ``local_rank`` on its machine
    (``torchrun`` is True when torchrun started it and set up the rendezvous)."""

    world: int
    rank: int = 0
    local_rank: int = 0
    local_world: int = 1
    torchrun: bool = False


def torchrun_launch() -> Launch | None:
    """This process's rank when ``torchrun`` (or another launcher speaking its protocol)
    started it: RANK, WORLD_SIZE and LOCAL_RANK in the environment; else None."""
    env = os.environ
    if not all(k in env for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK")):
        return None
    try:
        world, rank, local = int(env["WORLD_SIZE"]), int(env["RANK"]), int(env["LOCAL_RANK"])
        local_world = int(env.get("LOCAL_WORLD_SIZE", world))
    except ValueError:
        raise AutomlError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (as torchrun sets them)") from None
    return Launch(world, rank, local, local_world, torchrun=True)


def plan(nproc: int, device: torch.device) -> Launch | None:
    """The launch ``--nproc`` asks for here (None: train in this one process as always)."""
    launched = torchrun_launch()
    if launched is not None:
        if nproc not in (1, launched.world):
            raise AutomlError(f"--nproc {nproc} differs from torchrun's WORLD_SIZE {launched.world}; "
                              "under torchrun leave --nproc out")
        return launched if launched.world > 1 else None
    if nproc < 1:
        raise AutomlError(f"--nproc must be at least 1, got {nproc}")
    if nproc == 1:
        return None
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if device.index not in (None, 0):
            raise AutomlError(f"--nproc {nproc} trains on cuda:0 to cuda:{nproc - 1}; use --device cuda, "
                              f"not {device}")
        if nproc > count:
            raise AutomlError(f"--nproc {nproc} needs {nproc} GPUs (one per process); this machine has {count} "
                              "(--device cpu trains on gloo processes instead)")
    return Launch(nproc, local_world=nproc)


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def threads_per_process(processes: int) -> int:
    """CPU threads each of ``processes`` processes on this machine gets: total cores / N."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(processes, 1))


def check_ddp_safe(chosen: Sequence[Any], processes: int) -> None:
    """Refuse, in one line, an accelerator that has not declared itself safe under DDP."""
    for method in chosen:
        if not getattr(method, "ddp_safe", False):
            why = getattr(method, "ddp_note", "") or "it does not declare itself DDP-safe"
            raise AutomlError(f"accelerator {method.name!r} cannot train on {processes} processes "
                              f"(DistributedDataParallel): {why}")


def check_batch(config: TrainConfig, train_size: int, world: int) -> int:
    """The per-process batch of the global batch ``config.batch_size``, checked."""
    if config.batch_size % world:
        raise AutomlError(f"the batch size {config.batch_size} (the global batch) does not split into "
                          f"{world} equal per-process batches; choose --nproc dividing it")
    if train_size < config.batch_size:
        raise AutomlError(f"the training split ({train_size} images) is smaller than one global batch "
                          f"({config.batch_size}); nothing to share between {world} processes")
    return config.batch_size // world


