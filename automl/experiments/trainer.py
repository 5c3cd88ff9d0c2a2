"""``bench trainer``: our trainer against a bare PyTorch loop doing the same work - same model
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

import torch
import torch.nn.functional as F

import search_spaces
from automl.data import load_dataset
from automl.evaluate.devices import pick_device
from automl.nn.flops import count_flops, count_params, training_flops
from automl.train.loop import TrainConfig, make_optimizer, make_scheduler, recalibrate_batchnorm, train

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
        "mfu_ours": training_flops(flops, ours_median) / peak, "mfu_bare": training_flops(flops, bare_median) / peak,
        "ours_val_accuracy": statistics.median(accuracy),
        "target_ratio": 0.95,
        "note": "ratio = median samples/s of automl.train.loop.train over a bare PyTorch loop doing the "
                "same work; MFU = 3 x forward FLOPs x samples/s / measured fp32 matmul FLOP/s",
    }
