"""One architecture trained on several processes with DistributedDataParallel.

Each process trains the same model on its share of every global batch; DDP averages the
gradients, so N processes take the steps one process takes with the whole global batch. The
user sets the GLOBAL batch (the study's ``batch_size``); each process trains on
``batch_size / N`` of it, so the step budget, learning rate and schedule are the study's own.

How the pieces fit the trainer (:func:`automl.train.loop.train`), which knows nothing of
processes:

- data: :class:`ShardedBatches`, the loop's batch source. Every process draws the order a
  one-process run draws (same generator, same seed) and takes DistributedSampler's layout of
  it - rank r every N-th index of each epoch (:class:`GlobalBatchSampler`) - so the union of
  the N per-process batches of step k is exactly the one-process run's batch k. (torch's own
  DistributedSampler draws its order from ``seed + epoch``: N processes would then train on
  other batches than one process does, and ``--nproc`` would change results by a seed's noise.)
- model: two event hooks. :class:`_Wrap` (run after every accelerator at INIT, when the
  optimizer exists and set-up methods have reshaped or wrapped the model) puts the model in
  DistributedDataParallel; :class:`_Unwrap` (run first at FIT_END) takes it out again, so
  accelerators' FIT_END, BatchNorm re-estimation and evaluation see the plain model. At
  EVAL_START the other ranks get an empty validation split: rank 0 alone measures accuracy.
- processes: under ``torchrun`` (RANK, WORLD_SIZE, LOCAL_RANK in the environment) this process
  is one rank and joins the group torchrun set up; otherwise :class:`DistributedTrainer` spawns
  N processes itself (torch.multiprocessing, a free local port) and hands rank 0's result back.
  gloo on CPUs, NCCL on GPUs (rank r on ``cuda:r``, or ``cuda:LOCAL_RANK`` under torchrun).
  Each CPU process gets total cores / N threads.

Who runs as which rank, and what is refused up front, is :mod:`automl.evaluate.launch`.
"""

from __future__ import annotations

import copy
import os
import pickle
import queue as queues
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import DataLoader, DistributedSampler

import accelerators
from automl.core.errors import AutomlError, CandidateFailed
from automl.data import Dataset, Split
from automl.evaluate.launch import (Launch, backend_for, check_batch, check_ddp_safe, plan, threads_per_process,
                                    torchrun_launch)
from automl.train.config import TrainConfig
from automl.train.events import Event, TrainState
from automl.train.loop import TrainResult, train

__all__ = ["DistributedTrainer", "GlobalBatchSampler", "Launch", "ShardedBatches", "check_batch", "check_ddp_safe",
           "distributed_trainer", "plan", "threads_per_process", "torchrun_launch", "train_rank"]

HOOK_NAMES = ("ddp", "ddp-unwrap")  # the hooks' entries in a result's accelerator reports, removed


# -- data -------------------------------------------------------------------------------------

class GlobalBatchSampler(DistributedSampler):
    """DistributedSampler's layout - rank r takes every N-th index, the tail dropped - over the
    order a one-process run of the trainer draws from ``generator`` (see the module docstring).

    The order is drawn when iteration starts (as a DataLoader's RandomSampler draws it), only
    the whole global batches are shared out, and chunks of ``global_batch / N`` of a rank's
    indices are then its shares of the global batches, in step order.
    """

    def __init__(self, split: Split, global_batch: int, generator: torch.Generator,
                 num_replicas: int, rank: int) -> None:
        super().__init__(split, num_replicas=num_replicas, rank=rank, shuffle=False, drop_last=True)
        self.generator = generator
        n = len(split)
        self.total_size = n - n % global_batch
        self.num_samples = self.total_size // num_replicas

    def __iter__(self) -> Iterator[int]:
        order = torch.randperm(len(self.dataset), generator=self.generator)
        return iter(order[:self.total_size][self.rank::self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.num_samples


class ShardedBatches:
    """The trainer's batch source on one rank: its share of every global batch."""

    def __init__(self, rank: int, world: int) -> None:
        self.rank, self.world = rank, world

    def __call__(self, split: Split, batch_size: int, generator: torch.Generator,
                 device: torch.device) -> Iterator[tuple[Tensor, Tensor]]:
        share = batch_size // self.world
        sampler = GlobalBatchSampler(split, batch_size, generator, self.world, self.rank)
        if split.x is not None:
            index = torch.tensor(list(sampler), dtype=torch.long, device=split.y.device)
            for start in range(0, len(index) - share + 1, share):
                chosen = index[start:start + share]
                yield split.x[chosen], split.y[chosen]
            return
        loader = DataLoader(split.stream, batch_size=share, sampler=sampler, drop_last=True,
                            num_workers=min(4, torch.get_num_threads()), generator=generator,
                            pin_memory=device.type == "cuda")
        for images, labels in loader:
            yield images.to(device, non_blocking=True), labels.to(device, non_blocking=True)


# -- the model --------------------------------------------------------------------------------

class _Wrap:
    """Puts the model into DistributedDataParallel at INIT (last hook: after every accelerator's
    set-up; the optimizer, built just before, holds the same parameters); empties the
    validation split of ranks other than 0 at EVAL_START."""

    name = "ddp"

    def __init__(self, rank: int, device: torch.device) -> None:
        self.rank, self.device = rank, device

    def match(self, event: Event, state: TrainState) -> bool:
        return event in (Event.INIT, Event.EVAL_START)

    def apply(self, event: Event, state: TrainState) -> None:
        if event == Event.INIT:
            ids = [self.device.index] if self.device.type == "cuda" else None
            state.model = torch.nn.parallel.DistributedDataParallel(state.model, device_ids=ids)
        elif self.rank != 0:
            state.val = _empty(state.val)

    def teardown(self, state: TrainState) -> None:
        _unwrap(state)

    def report(self) -> dict[str, Any]:
        return {}


class _Unwrap:
    """Takes the model out of DistributedDataParallel at FIT_END (first hook)."""

    name = "ddp-unwrap"

    def match(self, event: Event, state: TrainState) -> bool:
        return event == Event.FIT_END

    def apply(self, event: Event, state: TrainState) -> None:
        _unwrap(state)

    def report(self) -> dict[str, Any]:
        return {}


def _empty(split: Split) -> Split:
    if split.x is not None:
        return Split(y=split.y[:0], x=split.x[:0])
    return Split(y=split.y[:0], stream=torch.utils.data.Subset(split.stream, []))


def _unwrap(state: TrainState) -> None:
    if isinstance(state.model, torch.nn.parallel.DistributedDataParallel):
        state.model = state.model.module


# -- one rank ---------------------------------------------------------------------------------

def train_rank(model: torch.nn.Module, data: Dataset, config: TrainConfig, seed: int, accelerate: str,
               launch: Launch, device: torch.device, on_epoch: Callable[[int, int, float], None] | None,
               cache_dir: Path | None) -> TrainResult:
    """This rank's part of the training (the process group is up). The result counts the
    samples of all ranks; its loss history is rank 0's share of each batch."""
    chosen = accelerators.parse(accelerate)
    check_ddp_safe(chosen, launch.world)
    data.to(device, channels_last=config.channels_last)
    hooks = [_Unwrap(), *chosen, _Wrap(launch.rank, device)]
    result = train(model, data, config, seed=seed, accelerators=hooks, device=device, on_epoch=on_epoch,
                   cache_dir=cache_dir, batches=ShardedBatches(launch.rank, launch.world))
    reports = {k: v for k, v in result.accelerators.items() if k not in HOOK_NAMES}
    return replace(result, samples=result.samples * launch.world, samples_per_s=result.samples_per_s * launch.world,
                   accelerators=reports)


def rank_device(device: torch.device, local_rank: int) -> torch.device:
    return torch.device("cuda", local_rank) if device.type == "cuda" else torch.device("cpu")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class _Job:
    """What every spawned rank needs (pickled once per process by torch.multiprocessing)."""

    model: torch.nn.Module
    data: Dataset
    config: TrainConfig
    seed: int
    accelerate: str
    device: torch.device
    world: int
    port: int
    threads: int
    cache_dir: Path | None


def _spawned(rank: int, job: _Job, messages) -> None:
    """One spawned rank: join the group, train, send rank 0's result (and its epochs) home."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(job.port))
    torch.set_num_threads(job.threads)
    launch = Launch(job.world, rank, rank, job.world)
    device = rank_device(job.device, rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend_for(device), rank=rank, world_size=job.world)
    try:
        # the model arrived in shared memory: a copy of its own per rank, or all would train one
        model = copy.deepcopy(job.model)
        on_epoch = (lambda epoch, epochs, loss: messages.put(("epoch", epoch, epochs, loss))) if rank == 0 else None
        try:
            result = train_rank(model, job.data, job.config, job.seed, job.accelerate, launch, device,
                                on_epoch, job.cache_dir)
        except torch.OutOfMemoryError as error:
            messages.put(("error", "CandidateFailed", f"out of memory: {str(error).splitlines()[0]}"))
            raise
        except (AutomlError, CandidateFailed) as error:
            messages.put(("error", type(error).__name__, str(error)))
            raise
        if rank == 0:
            result.model = result.model.to("cpu")
            # our own rank 0's result, read back by the process that spawned it (never a user's file)
            messages.put(("result", pickle.dumps(result)))
        dist.barrier()  # every rank done before any leaves (rank 0 hosts the store gloo's peers use)
    finally:
        dist.destroy_process_group()


# -- the trainer the evaluator calls ----------------------------------------------------------

class DistributedTrainer:
    """Called like :func:`automl.train.loop.train`; trains on ``launch.world`` processes.

    Spawned (no torchrun): the N ranks are child processes and the call returns rank 0's
    result in this process. Under torchrun: this process is one rank; every rank returns a
    result, and only the one with :attr:`writes` True should record it.
    """

    def __init__(self, launch: Launch) -> None:
        self.launch = launch

    @property
    def writes(self) -> bool:
        return self.launch.rank == 0

    def describe(self, device: torch.device, global_batch: int) -> dict[str, Any]:
        """The trial attribute that says how the training was shared out."""
        return {"processes": self.launch.world, "backend": backend_for(device),
                "launcher": "torchrun" if self.launch.torchrun else "torch.multiprocessing",
                "global_batch": global_batch, "per_process_batch": global_batch // self.launch.world,
                "threads_per_process": threads_per_process(self.launch.local_world) if device.type == "cpu" else None}

    def __call__(self, model: torch.nn.Module, data: Dataset, config: TrainConfig, seed: int = 0,
                 accelerators: Sequence[Any] = (), device: torch.device | str = "cpu",
                 on_epoch: Callable[[int, int, float], None] | None = None,
                 cache_dir: Path | None = None, context: Any = None) -> TrainResult:
        device = torch.device(device)
        check_ddp_safe(accelerators, self.launch.world)
        check_batch(config, len(data.train), self.launch.world)
        spec = ",".join(a.spec() for a in accelerators)
        if self.launch.torchrun:
            return self._as_rank(model, data, config, seed, spec, device, on_epoch, cache_dir)
        data.to("cpu")  # sent to the ranks through shared memory; each moves it to its device
        job = _Job(model.to("cpu"), data, config, seed, spec, device, self.launch.world, _free_port(),
                   threads_per_process(self.launch.world), cache_dir)
        return _spawn(job, on_epoch)

    def _as_rank(self, model, data, config, seed, spec, device, on_epoch, cache_dir) -> TrainResult:
        device = rank_device(device, self.launch.local_rank)
        if not dist.is_initialized():
            torch.set_num_threads(threads_per_process(self.launch.local_world))
            if device.type == "cuda":
                torch.cuda.set_device(device)
            dist.init_process_group(backend_for(device))  # torchrun's rendezvous (env://)
        return train_rank(model, data, config, seed, spec, self.launch, device,
                          on_epoch if self.writes else None, cache_dir)

    def close(self) -> None:
        """Leave torchrun's process group (spawned ranks leave theirs themselves)."""
        if self.launch.torchrun and dist.is_initialized():
            dist.destroy_process_group()


def distributed_trainer(nproc: int, device: torch.device) -> DistributedTrainer | None:
    """The trainer for ``--nproc`` here (None: the plain one-process trainer)."""
    launch = plan(nproc, device)
    return DistributedTrainer(launch) if launch is not None else None


def _spawn(job: _Job, on_epoch: Callable[[int, int, float], None] | None) -> TrainResult:
    """Run the ranks as child processes; relay rank 0's epochs, return its result, and turn a
    rank's user-facing failure (divergence, a bad option) back into the same exception here."""
    import torch.multiprocessing as mp

    messages = mp.get_context("spawn").Queue()
    context = mp.start_processes(_spawned, args=(job, messages), nprocs=job.world, join=False,
                                 start_method="spawn")
    received: dict[str, Any] = {}

    def drain() -> None:
        while True:
            try:
                message = messages.get(timeout=0.05)
            except queues.Empty:
                return
            if message[0] == "epoch" and on_epoch is not None:
                on_epoch(*message[1:])
            elif message[0] in ("result", "error"):
                received.setdefault(message[0], message[1:])

    try:
        while True:
            drain()
            try:
                if context.join(timeout=0.2):
                    break
            except Exception as failure:  # a rank raised or died; the others were terminated
                drain()
                raise _failure(received.get("error"), failure) from None
        drain()
    finally:
        for process in context.processes:
            if process.is_alive():
                process.terminate()
    if "result" not in received:
        raise RuntimeError("the DDP ranks finished but rank 0 sent no result")
    return pickle.loads(received["result"][0])


def _failure(error: tuple[str, str] | None, failure: Exception) -> Exception:
    if error is None:
        return RuntimeError(f"a DDP process failed: {failure}")
    kind, message = error
    return CandidateFailed(message) if kind == "CandidateFailed" else AutomlError(message)
