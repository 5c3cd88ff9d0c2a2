"""Bytes DistributedDataParallel actually all-reduces per step, counted by a communication
hook, with N gloo processes on this machine: the check of :mod:`automl.nn.placement`.

Why a hook: it sees every gradient bucket DDP hands to the network, so its count is what data
parallelism moves per step for this model - independent of the cost model's own accounting
(parameters counted from the module).
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _counting_allreduce(state: dict, bucket):
    """DDP's plain all-reduce (sum, then divide by the world size), counting the bucket's bytes."""
    buffer = bucket.buffer()
    state["bytes"] += buffer.numel() * buffer.element_size()
    state["buckets"] += 1
    work = dist.all_reduce(buffer.div_(dist.get_world_size()), async_op=True)
    return work.get_future().then(lambda fut: fut.value()[0])


def _worker(rank: int, workers: int, port: int, space: str, genome: str, input_shape: list[int],
            num_classes: int, batch_size: int, steps: int, out: str) -> None:
    import search_spaces

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=workers)
    try:
        chosen = search_spaces.get(space)
        torch.manual_seed(0)
        model = chosen.build(chosen.parse(genome), tuple(input_shape), num_classes)
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        state = {"bytes": 0, "buckets": 0}
        ddp.register_comm_hook(state, _counting_allreduce)
        optimizer = torch.optim.SGD(ddp.parameters(), lr=0.01, momentum=0.9)
        generator = torch.Generator().manual_seed(rank)
        per_step = []
        for _ in range(steps):
            before = state["bytes"]
            x = torch.randn((batch_size, *input_shape), generator=generator)
            y = torch.randint(0, num_classes, (batch_size,), generator=generator)
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(ddp(x), y).backward()
            optimizer.step()
            per_step.append(state["bytes"] - before)
        if rank == 0:
            Path(out).write_text(json.dumps({"bytes_per_step": per_step, "buckets": state["buckets"]}))
        # every rank done before any leaves: rank 0 hosts the store, and gloo's threads abort
        # (SIGABRT, seen once in CI) when a peer's group goes away under them
        dist.barrier()
        del ddp
    finally:
        dist.destroy_process_group()


def measure_ddp_bytes(space: str, genome: str, input_shape: tuple[int, ...], num_classes: int,
                      workers: int = 2, batch_size: int = 8, steps: int = 3) -> dict[str, Any]:
    """Gradient bytes each DDP worker all-reduces per step (rank 0's hook count), for ``workers``
    gloo processes spawned on this machine training the genome for ``steps`` steps."""
    with tempfile.TemporaryDirectory() as folder:
        out = str(Path(folder) / "count.json")
        mp.spawn(_worker, args=(workers, _free_port(), space, genome, list(input_shape), num_classes,
                                batch_size, steps, out), nprocs=workers, join=True)
        counted = json.loads(Path(out).read_text())
    per_step = counted["bytes_per_step"]
    return {"workers": workers, "steps": steps, "bytes_per_step": per_step,
            "bytes_per_step_median": sorted(per_step)[len(per_step) // 2], "buckets": counted["buckets"]}
