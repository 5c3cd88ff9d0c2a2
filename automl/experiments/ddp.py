"""DDP equivalence: the trainer on N gloo processes against the trainer in one process.

Both start from the same initial weights (one seed, one build) and take the same steps on the
same global batches: the one-process run trains on the whole batch, each of the N processes
on its share of it (:mod:`automl.evaluate.distributed`), and DDP averages their gradients. The
weights after the steps must then agree up to float rounding (the mean of N per-process means
is summed in another order than one mean); the target is a max abs difference <= 1e-4. The
genome has no normalisation (``mobile-norm``'s ``norm`` gene = ``none``): BatchNorm's
statistics are per process under DDP, so a network with BatchNorm legitimately differs.

Throughput is measured on the same runs: samples/s of the one process (all cores) and of the
N processes together (cores / N threads each), with the machine's load average beside them.
A part of ``automl bench scale`` (``--parts ddp``).
"""

from __future__ import annotations

import copy
import os
import statistics
from typing import Any

import torch

import search_spaces
from automl.data import Dataset, Split, load_dataset
from automl.evaluate.distributed import DistributedTrainer, Launch, threads_per_process
from automl.nn.flops import count_flops
from automl.train.loop import TrainConfig, train

SPACE = "mobile-norm"
GENOME = "stem8-ir_r1_k3_e1_c8-ir_r1_k3_e1_c16-ir_r1_k3_e1_c24-ir_r1_k3_e1_c32-ir_r1_k3_e1_c48-head128-nonorm"
TOLERANCE = 1e-4


def _slice(data: Dataset, images: int | None) -> Dataset:
    """The first ``images`` training images (all when None); validation kept whole."""
    if images is None or images >= len(data.train):
        return data
    train_split = Split(x=data.train.x[:images].clone(), y=data.train.y[:images].clone())
    return Dataset(data.name, train_split, data.val, data.test, data.input_shape, data.class_names,
                   data.mean, data.std, data.info)


def max_abs_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """The largest absolute difference between two state dicts with the same keys."""
    if a.keys() != b.keys():
        raise ValueError("the two models have different parameters")
    return max((float((a[k].float() - b[k].float()).abs().max()) for k in a if a[k].numel()), default=0.0)


def _one_process(initial: torch.nn.Module, data: Dataset, config: TrainConfig, seed: int):
    """The trainer in this process with all cores (the caller's thread count restored after)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(threads_per_process(1))
    try:
        return train(copy.deepcopy(initial), data, config, seed=seed)
    finally:
        torch.set_num_threads(threads)


def ddp_equivalence(processes: int = 2, steps: int = 20, global_batch: int = 64, seed: int = 0,
                    genome: str = GENOME, space: str = SPACE, data: Dataset | None = None,
                    images: int | None = None, lr: float = 0.1, rounds: int = 3) -> dict[str, Any]:
    """Train ``genome`` for ``steps`` steps of ``global_batch`` images in one process and on
    ``processes`` gloo processes from the same initial weights, alternating ``rounds`` times;
    the largest weight difference between any one-process and any DDP run, each run's
    samples/s (and their medians) and accuracy."""
    data = _slice(data if data is not None else load_dataset("mnist5k"), images)
    chosen = search_spaces.get(space)
    torch.manual_seed(seed)
    initial = chosen.build(chosen.parse(genome), data.input_shape, data.num_classes)
    config = TrainConfig(epochs=steps / (len(data.train) // global_batch), batch_size=global_batch, lr=lr)
    ddp = DistributedTrainer(Launch(processes, local_world=processes))
    ones, manys = [], []
    for _ in range(rounds):  # alternating, so a change in the machine's load hits both alike
        ones.append(_one_process(initial, data, config, seed))
        manys.append(ddp(copy.deepcopy(initial), data, config, seed=seed))
    one, many = ones[0], manys[0]
    difference = max(max_abs_difference(a.model.state_dict(), b.model.state_dict()) for a in ones for b in manys)
    one_rates, many_rates = [r.samples_per_s for r in ones], [r.samples_per_s for r in manys]
    return {
        "space": space, "genome": genome, "mflops": count_flops(initial, data.input_shape) / 1e6,
        "has_batchnorm": any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in initial.modules()),
        "dataset": data.name, "train_images": len(data.train), "processes": processes, "backend": "gloo",
        "steps": int(round(one.samples / global_batch)), "steps_ddp": int(round(many.samples / global_batch)),
        "global_batch": global_batch, "per_process_batch": global_batch // processes, "lr": lr, "seed": seed,
        "rounds": rounds, "threads_one_process": threads_per_process(1),
        "threads_per_process": threads_per_process(processes),
        "max_abs_weight_difference": difference,
        "max_abs_weight_change": max_abs_difference(initial.state_dict(), one.model.state_dict()),
        "tolerance": TOLERANCE, "equivalent": difference <= TOLERANCE,
        "accuracy_one_process": one.accuracy, "accuracy_ddp": many.accuracy,
        "samples_per_s_one_process": statistics.median(one_rates), "samples_per_s_ddp": statistics.median(many_rates),
        "ddp_speedup": statistics.median(many_rates) / statistics.median(one_rates),
        "samples_per_s_one_process_rounds": one_rates, "samples_per_s_ddp_rounds": many_rates,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "note": ("samples/s: medians over the rounds; the DDP run's counts all processes' samples over rank 0's "
                 "training time (spawning the processes and joining the group are outside it)"),
    }
