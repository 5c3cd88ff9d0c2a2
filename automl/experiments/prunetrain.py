"""``bench prunetrain``: what PruneTrain saves where training is long - the same architecture
trained E epochs plain and with PruneTrain, side by side in one process after an untimed
warm-up: the two runs take turns epoch by epoch (rounds alternate which goes first), so the
load of a shared machine falls on both alike.

Per epoch: the training FLOPs each run spent (3 x forward FLOPs x samples; PruneTrain's fall
as channels are removed), the seconds and PruneTrain's mini-batch. Over the run: total
training seconds of both and their ratio, validation and test accuracy of both, channels,
FLOPs and parameters kept. The kind label follows the measurement: ``wall-clock`` when the
measured saving over E epochs is at least :data:`WALL_CLOCK_SAVING`.
"""

from __future__ import annotations

import os
import statistics
import threading
from typing import Any

import torch

import accelerators
import search_spaces
from automl.core.errors import AutomlError
from automl.data import batches_per_epoch, load_dataset
from automl.nn.flops import count_flops, count_params, training_flops
from automl.train.loop import TrainConfig, TrainResult, evaluate, train

BENCH_GENOME = "stem16-ir_r1_k3_e1_c16-ir_r2_k3_e3_c24-ir_r2_k3_e3_c32-ir_r2_k3_e3_c48-ir_r1_k3_e3_c64-head256"  # 8.4 MFLOPs
WALL_CLOCK_SAVING = 0.10  # a measured saving of at least this much over E epochs earns "wall-clock"
PLAIN, PRUNED = "plain", "prunetrain"


def _accelerators(spec: str) -> list:
    chosen = accelerators.parse(spec)
    if "prunetrain" not in [a.name for a in chosen]:
        raise AutomlError(f"--accelerate {spec!r} does not name prunetrain")
    return chosen


def _run(space, genome, data, config: TrainConfig, seed: int, spec: str | None,
         on_epoch=None) -> tuple[TrainResult, float]:
    torch.manual_seed(seed)
    model = space.build(genome, data.input_shape, data.num_classes)
    result = train(model, data, config, seed=seed, accelerators=_accelerators(spec) if spec else [],
                   on_epoch=on_epoch)
    test = evaluate(result.model, data.test, config.eval_batch_size, "cpu", config.channels_last)
    return result, test


def _seconds(result: TrainResult) -> float:
    """Training seconds that count: the epochs' own (a run's turns exclude the other's epochs)."""
    return sum(h["seconds"] for h in result.history)


def _row(result: TrainResult, test: float) -> dict[str, Any]:
    return {"seconds": _seconds(result), "val_accuracy": result.accuracy, "test_accuracy": test,
            "epochs": result.epochs, "samples": result.samples,
            "epoch_seconds": [h["seconds"] for h in result.history]}


class _Turns:
    """Two runs take turns one epoch at a time, so a change in the machine's load (it is
    shared) falls on both alike; a run that finished leaves the other to go on alone."""

    def __init__(self, first: str) -> None:
        self.turn, self.done = first, set()
        self.cond = threading.Condition()

    def wait(self, me: str, other: str) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.turn == me or other in self.done)

    def hand_over(self, me: str, other: str, finished: bool = False) -> None:
        with self.cond:
            self.turn = other
            if finished:
                self.done.add(me)
            self.cond.notify_all()


def _side_by_side(order: tuple[str, str], train_one, progress=None) -> dict[str, tuple[TrainResult, float]]:
    """Run ``train_one(which, on_epoch)`` for both entries in threads that alternate epochs;
    ``progress(which, epoch, epochs)`` after each epoch."""
    turns, results, errors = _Turns(order[0]), {}, []

    def body(me: str, other: str) -> None:
        def on_epoch(done: int, total: int, loss: float) -> None:
            if progress is not None:
                progress(me, done, total)
            if done < total:  # after the last epoch the run finishes (BN statistics, evaluation) first
                turns.hand_over(me, other)
                turns.wait(me, other)
        turns.wait(me, other)
        try:
            results[me] = train_one(me, on_epoch)
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(error)
        finally:
            turns.hand_over(me, other, finished=True)

    threads = [threading.Thread(target=body, args=(a, b)) for a, b in (order, order[::-1])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def bench_prunetrain(genome: str = BENCH_GENOME, epochs: int = 10, spec: str = "prunetrain", rounds: int = 1,
                     seed: int = 0, progress=None) -> dict[str, Any]:
    """Train ``genome`` for ``epochs`` plain and with ``spec`` (PruneTrain, options allowed),
    side by side epoch by epoch, ``rounds`` times, alternating which goes first; medians of
    the training seconds (the epochs' own). ``progress(which, epoch, epochs)`` after each epoch."""
    _accelerators(spec)  # refused before anything trains
    space = search_spaces.get("mobile")
    parsed = space.parse(genome)
    data = load_dataset()
    config = TrainConfig(epochs=epochs)
    _run(space, parsed, data, TrainConfig(epochs=0.25), seed, spec)  # untimed warm-up: allocation, first calls

    def train_one(which: str, on_epoch) -> tuple[TrainResult, float]:
        return _run(space, parsed, data, config, seed, spec if which == PRUNED else None, on_epoch)

    runs: dict[str, list[tuple[TrainResult, float]]] = {PLAIN: [], PRUNED: []}
    for r in range(rounds):
        done = _side_by_side((PLAIN, PRUNED) if r % 2 == 0 else (PRUNED, PLAIN), train_one, progress)
        for which in (PLAIN, PRUNED):
            runs[which].append(done[which])
    return summarise(genome, space, parsed, data, config, spec, runs)


def summarise(genome: str, space, parsed, data, config: TrainConfig, spec: str,
              runs: dict[str, list[tuple[TrainResult, float]]]) -> dict[str, Any]:
    """The result: per-epoch FLOPs and seconds, totals, accuracies, what was pruned."""
    model = space.build(parsed, data.input_shape, data.num_classes)
    flops = count_flops(model, data.input_shape)
    epoch_samples = batches_per_epoch(data.train, config.batch_size) * config.batch_size
    plain, pruned = runs[PLAIN][0][0], runs[PRUNED][0][0]
    report = pruned.accelerators["prunetrain"]
    per_epoch = []
    for e, row in enumerate(report["epochs"]):
        per_epoch.append({
            "epoch": row["epoch"], "plain_gflops": training_flops(flops, epoch_samples) / 1e9,
            "prunetrain_gflops": row["training_flops"] / 1e9, "prunetrain_mflops": row["mflops"],
            "prunetrain_batch": row["batch_size"],
            "plain_seconds": plain.history[e]["seconds"] if e < len(plain.history) else None,
            "prunetrain_seconds": pruned.history[e]["seconds"] if e < len(pruned.history) else None})
    seconds = {k: statistics.median(_seconds(r) for r, _ in v) for k, v in runs.items()}
    plain_flops = training_flops(flops, plain.samples)
    pruned_flops = sum(row["training_flops"] for row in report["epochs"])
    saving = 1 - seconds[PRUNED] / seconds[PLAIN]
    return {
        "benchmark": "prunetrain", "genome": genome, "spec": accelerators.parse(spec)[0].spec(),
        "dataset": data.name, "train_samples": len(data.train), "epochs": config.epochs,
        "batch_size": config.batch_size, "lr": config.lr, "schedule": config.schedule,
        "rounds": len(runs[PLAIN]), "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "mflops_before": flops / 1e6, "mflops_after": report["flops_after"] / 1e6,
        "params_before": count_params(model), "params_after": report["params_after"],
        "channels_before": report["channels_before"], "channels_after": report["channels_after"],
        "architecture_after": report["architecture_string"], "pruned_channels": report["pruned_channels"],
        "lambda": report["lambda"], "reconfigurations": report["history"], "batch_sizes": report["batch_sizes"],
        "per_epoch": per_epoch,
        "plain": [_row(r, t) for r, t in runs[PLAIN]], "prunetrain": [_row(r, t) for r, t in runs[PRUNED]],
        "plain_seconds": seconds[PLAIN], "prunetrain_seconds": seconds[PRUNED],
        "speedup": seconds[PLAIN] / seconds[PRUNED], "wall_clock_saving": saving,
        "plain_training_gflops": plain_flops / 1e9, "prunetrain_training_gflops": pruned_flops / 1e9,
        "training_flops_saving": 1 - pruned_flops / plain_flops,
        "val_accuracy_delta": statistics.mean(r.accuracy for r, _ in runs[PRUNED])
        - statistics.mean(r.accuracy for r, _ in runs[PLAIN]),
        "test_accuracy_delta": statistics.mean(t for _, t in runs[PRUNED]) - statistics.mean(t for _, t in runs[PLAIN]),
        "kind_measured": "wall-clock" if saving >= WALL_CLOCK_SAVING else "regularizer",
        "note": "seconds: the epochs' own (the two runs alternate epochs in one process; setup, BatchNorm "
                "re-estimation and evaluation off the clock), median over rounds; training FLOPs: "
                "3 x forward FLOPs x samples, per epoch as PruneTrain's model shrank; speedup = plain / "
                "prunetrain seconds; kind_measured: wall-clock when the saving >= 10%",
    }
