"""``automl bench costmodel``: the cost model's predicted seconds against the trainer's measured
ones, over candidates of one search space spread over its FLOPs range, per number format run
natively here.

Why: a prediction is worth what its error is. Each candidate is trained by the real trainer
(the seconds a trial records: the steps plus BatchNorm re-estimation, never evaluation) and
predicted from the same genome before it trains; fp32 as a search trains, bf16 as pure bf16
training (weights, activations and data in bf16) where torch has kernels for the device.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

import search_spaces
from automl.core.errors import AutomlError
from automl.data import Dataset, Split, batches_per_epoch, load_dataset
from automl.experiments.candidates import FlopsCost, stratified, warm_up
from automl.nn.calibrate import calibration_for
from automl.nn.costmodel import predict_training
from automl.nn.flops import count_flops
from automl.train.loop import TrainConfig, train

TARGET_MEDIAN_ERROR = 0.15
RANGE = 20  # default FLOPs range of the candidates: smallest to 20x smallest, as a search's front spans
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def in_format(data: Dataset, fmt: str) -> Dataset:
    """A copy of ``data`` whose images are stored in ``fmt`` (labels unchanged)."""
    def cast(split: Split) -> Split:
        return Split(x=split.x.to(_DTYPES[fmt]), y=split.y)

    return replace(data, train=cast(data.train), val=cast(data.val), test=cast(data.test))


def flops_limit(space, cost: Callable[[Any], float], max_flops: float | None) -> float:
    """The FLOPs limit of the candidates: ``max_flops``, or ``RANGE`` times the space's smallest
    genome (mobile: 1.1-23 MFLOPs); a limit with no room above the smallest is the user's mistake."""
    smallest = cost(space.decode(np.zeros(len(space.genes()), dtype=int)))
    if max_flops is None:
        return RANGE * smallest
    if max_flops < 2 * smallest:
        raise AutomlError(f"--max-flops {max_flops / 1e6:g}M leaves no range: {space.name}'s smallest candidate "
                          f"has {smallest / 1e6:.1f} MFLOPs (give at least twice that)")
    return max_flops


def relative_errors(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Median and worst absolute relative error of predicted against measured seconds."""
    errors = [abs(r["predicted_s"] - r["measured_s"]) / r["measured_s"] for r in rows]
    signed = [(r["predicted_s"] - r["measured_s"]) / r["measured_s"] for r in rows]
    return {"median_abs_error": statistics.median(errors), "worst_abs_error": max(errors),
            "mean_signed_error": statistics.fmean(signed)}


def bench_costmodel(candidates: int = 16, epochs: float = 1.0, max_flops: float | None = None, seed: int = 0,
                    formats: tuple[str, ...] = ("fp32", "bf16"), device: str = "cpu", threads: int | None = None,
                    clock: str = "wall", space_name: str = "mobile",
                    progress: Callable[[str, int, int, dict], None] | None = None,
                    stage: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """Predict, then train, each candidate in each format; errors per format. ``stage`` hears
    a line before each of the minutes-long steps that precede the first candidate's row.

    ``clock="cpu"`` (one torch thread) compares process CPU time of the training steps with a
    calibration timed the same way: on a machine other work shares, the wall-clock of a run
    is mostly time spent waiting for a core, which no cost model of the run can predict.
    ``max_flops`` defaults to ``RANGE`` times the space's smallest candidate.
    """
    device_ = torch.device(device)
    if clock == "cpu":
        threads = 1  # process CPU time counts every thread: one thread keeps it equal to the run's time
    if threads is not None:
        torch.set_num_threads(threads)
    space = search_spaces.get(space_name)
    data = load_dataset()
    cost = FlopsCost(space, data)
    max_flops = flops_limit(space, cost, max_flops)
    stage(f"calibrating the cost model on {device_} ({clock} clock)")
    calibration = calibration_for(device_, refresh=True, clock=clock, formats=formats)  # measured under the same load as the runs
    rng = np.random.default_rng(seed)
    stage(f"sampling {candidates} {space_name} candidates up to {max_flops / 1e6:.0f} MFLOPs")
    genomes = stratified(space, rng, candidates, max_flops, cost)
    config = TrainConfig(epochs=epochs)
    steps = max(1, round(epochs * batches_per_epoch(data.train, config.batch_size)))
    stage("warm-up run (untimed)")
    warm_up(space, data, genomes[0], min(epochs, 0.25), seed)
    result: dict[str, Any] = {"space": space_name, "candidates": candidates, "epochs": epochs, "steps": steps,
                              "max_flops": max_flops, "device": str(device_), "threads": torch.get_num_threads(),
                              "clock": clock, "calibration": calibration.to_json(), "formats": {}}
    for fmt in formats:
        rows = _run_format(space, genomes, data, config, steps, calibration, fmt, device_, seed, progress, clock)
        result["formats"][fmt] = {"rows": rows, **(relative_errors(rows) if rows else {})}
        if rows:
            result["formats"][fmt]["meets_target"] = result["formats"][fmt]["median_abs_error"] <= TARGET_MEDIAN_ERROR
    result["target_median_abs_error"] = TARGET_MEDIAN_ERROR
    return result


def _run_format(space, genomes, data: Dataset, config: TrainConfig, steps: int, calibration, fmt: str,
                device: torch.device, seed: int, progress, clock: str = "wall") -> list[dict[str, Any]]:
    """Rows of (genome, MFLOPs, predicted and measured seconds) for one format; none where torch
    cannot train in ``fmt`` on this device. Wall-clock: the trainer's seconds (steps and
    BatchNorm re-estimation); CPU time: the steps alone, up to the last epoch's end."""
    dtype = _DTYPES.get(fmt)
    if dtype is None:
        return []
    local = in_format(data, fmt) if fmt != "fp32" else data
    local.to(device, channels_last=True)
    rows: list[dict[str, Any]] = []
    for i, genome in enumerate(genomes):
        model = space.build(genome, data.input_shape, data.num_classes)
        flops = count_flops(model, data.input_shape)
        predicted = predict_training(model, data.input_shape, config.batch_size, steps, calibration, fmt,
                                     config.bn_samples if clock == "wall" else 0)
        marks: list[float] = []
        started = time.process_time()
        try:
            run = train(model.to(dtype), local, config, seed=seed, device=device,
                        on_epoch=lambda *_: marks.append(time.process_time()))
        except (RuntimeError, NotImplementedError) as error:  # no kernels for this format here
            return [{"format": fmt, "skipped": str(error).splitlines()[0]}] if not rows else rows
        measured = run.seconds if clock == "wall" else marks[-1] - started
        row = {"genome": space.format(genome), "mflops": flops / 1e6, "predicted_s": predicted,
               "measured_s": measured, "wall_s": run.seconds, "epochs": run.epochs}
        rows.append(row)
        if progress is not None:
            progress(fmt, i + 1, len(genomes), row)
    return rows


def plot(result: dict[str, Any], path: str | Path) -> Path:
    """Predicted against measured seconds, one colour per format, the y = x line and the target band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    everything: list[float] = []
    for fmt, entry in result["formats"].items():
        rows = [r for r in entry["rows"] if "measured_s" in r]
        if not rows:
            continue
        measured, predicted = [r["measured_s"] for r in rows], [r["predicted_s"] for r in rows]
        everything += measured + predicted
        ax.scatter(measured, predicted, label=f"{fmt} (median error {entry['median_abs_error']:.0%})", s=18)
    if everything:
        low, high = min(everything) * 0.8, max(everything) * 1.25
        line = np.geomspace(low, high, 50)
        ax.plot(line, line, "k-", lw=0.8)
        ax.fill_between(line, line * (1 - TARGET_MEDIAN_ERROR), line * (1 + TARGET_MEDIAN_ERROR), color="0.9",
                        label=f"within {TARGET_MEDIAN_ERROR:.0%}")
        ax.set_xscale("log")
        ax.set_yscale("log")
    clock = "CPU" if result.get("clock") == "cpu" else "wall-clock"
    ax.set_xlabel(f"measured training seconds ({clock})")
    ax.set_ylabel(f"predicted training seconds ({clock})")
    ax.set_title(f"cost model, {result['candidates']} {result.get('space', 'mobile')} candidates, {result['epochs']:g} epoch(s)")
    ax.legend(fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
