"""Benchmarks, run side by side in one process and reported as ratios.

``trainer``: our trainer against a bare PyTorch loop doing the same work - same model
initialisation, data, batch size, optimizer (SGD, Nesterov), one-cycle schedule, label
smoothing, channels_last and final BatchNorm re-estimation - alternating in one process.
The ratio of samples/s shows what our loop's events, checks and bookkeeping cost. Model FLOP
utilisation is 3 x forward FLOPs x samples/s over the float32 matmul throughput measured on
this machine at the same moment.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import search_spaces
from automl.data import load_dataset
from automl.evaluation import pick_device
from automl.flops import count_flops, count_params
from automl.training import TrainConfig, make_optimizer, make_scheduler, recalibrate_batchnorm, train

BENCH_GENOME = "stem16-ir_r1_k3_e1_c16-ir_r2_k3_e6_c24-ir_r2_k5_e6_c32-ir_r2_k3_e6_c64-ir_r1_k3_e6_c96-head256"


def matmul_flops_per_second(device: torch.device, n: int = 1024, repeats: int = 10) -> float:
    """Best-of float32 matmul throughput (2 n^3 FLOPs per product) on ``device``."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best


def bare_loop(model: torch.nn.Module, data, config: TrainConfig, seed: int, device: torch.device) -> float:
    """The same training written as plain PyTorch; returns samples per second."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = model.to(device=device, memory_format=torch.channels_last).train()
    x, y = data.train.x, data.train.y
    n = len(y) - len(y) % config.batch_size
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config, (n // config.batch_size) * config.epochs)
    samples = 0
    started = time.perf_counter()
    for _ in range(config.epochs):
        order = torch.randperm(len(y), generator=generator).to(y.device)
        for start in range(0, n, config.batch_size):
            index = order[start:start + config.batch_size]
            inputs = x[index].contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(model(inputs), y[index], label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            samples += len(index)
    recalibrate_batchnorm(model, data.train, config.batch_size, config.bn_samples, generator, device,
                          torch.channels_last)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return samples / (time.perf_counter() - started)


def bench_trainer(genome: str = BENCH_GENOME, epochs: int = 1, rounds: int = 5, batch_size: int = 64,
                  seed: int = 0, device: str = "auto", progress=None) -> dict[str, Any]:
    """Our trainer vs the bare loop, alternating ``rounds`` times after one untimed warm-up
    run of each; medians and their ratio."""
    space = search_spaces.get("mobile")
    parsed = space.parse(genome)
    dev = pick_device(device)
    data = load_dataset().to(dev, channels_last=True)
    config = TrainConfig(epochs=epochs, batch_size=batch_size)

    def fresh_model():
        torch.manual_seed(seed)
        return space.build(parsed, data.input_shape, data.num_classes)

    model = fresh_model()
    flops = count_flops(model, data.input_shape)
    ours: list[float] = []
    bare: list[float] = []
    accuracy: list[float] = []
    matmul: list[float] = []
    warmup = TrainConfig(epochs=1, batch_size=batch_size)  # untimed: first runs pay for allocation
    train(fresh_model(), data, warmup, seed=seed, device=dev)
    bare_loop(fresh_model(), data, warmup, seed, dev)
    for r in range(rounds):
        order = ("ours", "bare") if r % 2 == 0 else ("bare", "ours")
        for which in order:
            if which == "ours":
                result = train(fresh_model(), data, config, seed=seed, device=dev)
                ours.append(result.samples_per_s)
                accuracy.append(result.accuracy)
            else:
                bare.append(bare_loop(fresh_model(), data, config, seed, dev))
        matmul.append(matmul_flops_per_second(dev))
        if progress is not None:
            progress(r + 1, rounds)
    ours_median, bare_median = statistics.median(ours), statistics.median(bare)
    peak = statistics.median(matmul)
    return {
        "benchmark": "trainer",
        "genome": genome, "mflops": flops / 1e6, "params": count_params(model),
        "dataset": data.name, "train_samples": len(data.train), "epochs": epochs, "batch_size": batch_size,
        "rounds": rounds, "device": str(dev), "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "ours_samples_per_s": ours_median, "bare_samples_per_s": bare_median,
        "ratio": ours_median / bare_median,
        "ours_all": ours, "bare_all": bare,
        "matmul_gflops": peak / 1e9,
        "mfu_ours": 3 * flops * ours_median / peak, "mfu_bare": 3 * flops * bare_median / peak,
        "ours_val_accuracy": statistics.median(accuracy),
        "target_ratio": 0.95,
        "note": "ratio = median samples/s of automl.training.train over a bare PyTorch loop doing the "
                "same work; MFU = 3 x forward FLOPs x samples/s / measured fp32 matmul FLOP/s",
    }


# -- engine: search quality on categorical problems, no training ------------------------------

def _levels(genome: dict, n: int) -> "list[float]":
    return [genome[f"x{i}"] / 7 for i in range(n)]


def _zdt(genome: dict, n: int, shape: str) -> dict[str, float]:
    """ZDT1/ZDT2 on a grid of 8 levels per gene: f1 = x0, g from the rest."""
    import math as m

    x = _levels(genome, n)
    g = 1 + 9 * sum(x[1:]) / (n - 1)
    ratio = x[0] / g
    f2 = g * (1 - (m.sqrt(ratio) if shape == "convex" else ratio**2))
    return {"f1": x[0], "f2": f2}


def _nas_like(genome: dict) -> dict[str, float]:
    """A NAS-shaped problem: cost grows with depth x width x kernel per stage, error falls
    with capacity with diminishing returns and penalises bottlenecks between stages."""
    import math as m

    cost, capacity, prev, bottleneck = 0.0, 0.0, None, 0.0
    for s in range(5):
        depth, width, kernel = genome[f"d{s}"], genome[f"w{s}"], genome[f"k{s}"]
        stage = depth * width * (kernel / 3) ** 2 * (0.5 ** s)
        cost += stage
        capacity += m.log1p(depth * width * (1 + 0.15 * (kernel - 3)))
        if prev is not None and width < prev:
            bottleneck += (prev - width) / prev
        prev = width
    error = 1 / (1 + 0.35 * capacity) + 0.05 * bottleneck
    return {"error": error, "cost": cost}


def _nk_tables(genes: int = 12, k: int = 2, alleles: int = 4, seed: int = 12345):
    rng = np.random.default_rng(seed)
    return [rng.random((genes,) + (alleles,) * (k + 1)) for _ in range(2)]


_NK = _nk_tables()


def _nk(genome: dict, genes: int = 12, k: int = 2) -> dict[str, float]:
    """Two NK landscapes (Kauffman) on the same genes: each gene's contribution depends on
    its k neighbours too, so the problem is epistatic - hard for additive models."""
    x = [genome[f"x{i}"] for i in range(genes)]
    values = {}
    for o, table in enumerate(_NK):
        total = sum(table[i][(x[i], *[x[(i + 1 + j) % genes] for j in range(k)])] for i in range(genes))
        values[f"f{o}"] = -float(total / genes)
    return values


ENGINE_PROBLEMS = {
    "zdt1": ({f"x{i}": list(range(8)) for i in range(12)}, lambda g: _zdt(g, 12, "convex"),
             [("f1", "min"), ("f2", "min")], [1.1, 11.0]),
    "zdt2": ({f"x{i}": list(range(8)) for i in range(12)}, lambda g: _zdt(g, 12, "concave"),
             [("f1", "min"), ("f2", "min")], [1.1, 11.0]),
    "nas": ({**{f"d{s}": [1, 2, 3, 4] for s in range(5)}, **{f"w{s}": [8, 16, 24, 32, 48] for s in range(5)},
             **{f"k{s}": [3, 5, 7] for s in range(5)}}, _nas_like,
            [("error", "min"), ("cost", "min")], [1.0, 800.0]),
    "nk": ({f"x{i}": list(range(4)) for i in range(12)}, _nk, [("f0", "min"), ("f1", "min")], [0.0, 0.0]),
}
ENGINE_STRATEGIES = ("nsga2", "nsga2-plain", "random", "optuna-nsga2", "optuna-tpe")


def bench_engine(budget: int = 150, seeds: int = 10, strategies=None, problems=None) -> dict[str, Any]:
    """Hypervolume each strategy reaches at equal budget, mean over seeds, per problem.

    ``nsga2-plain`` is nsga2 without surrogate pre-selection (Dvolver's recipe alone).
    """
    from automl.engine import search
    from automl.pareto import Objective, as_minimisation, hypervolume

    strategies = list(strategies or ENGINE_STRATEGIES)
    problems = list(problems or ENGINE_PROBLEMS)
    table: dict[str, dict[str, Any]] = {}
    for name in problems:
        space, evaluate, objectives, reference = ENGINE_PROBLEMS[name]
        parsed = [Objective(*o) for o in objectives]
        table[name] = {}
        for strategy in strategies:
            volumes, seconds = [], []
            for seed in range(seeds):
                started = time.perf_counter()
                if strategy == "nsga2-plain":
                    result = search(space, evaluate, objectives, budget=budget, seed=seed, preselect=1)
                else:
                    result = search(space, evaluate, objectives, budget=budget, seed=seed, strategy=strategy)
                seconds.append(time.perf_counter() - started)
                points = as_minimisation([[c.values[o.name] for o in parsed] for c in result.candidates
                                          if c.values is not None], parsed)
                volumes.append(hypervolume(points, reference))
            table[name][strategy] = {"hypervolume_mean": statistics.mean(volumes),
                                     "hypervolume_std": statistics.pstdev(volumes),
                                     "hypervolumes": volumes, "seconds_mean": statistics.mean(seconds)}
    wins = {name: max(rows, key=lambda s: rows[s]["hypervolume_mean"]) for name, rows in table.items()}
    return {"benchmark": "engine", "budget": budget, "seeds": seeds, "problems": table, "best": wins,
            "note": "hypervolume of all evaluated points (minimisation form) up to each problem's "
                    "reference point; same budget and seeds for every strategy"}
