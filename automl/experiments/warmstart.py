"""``bench warmstart``: Net2Net warm starts against training from scratch.

For parent -> child pairs (parents spread over the FLOPs range, each child mutated in 1-4
genes as the engine's children are): train the parent for ``epochs``; train the child from
scratch for ``epochs`` twice (two seeds); train the child inherited from the parent for each
fraction of ``epochs``. Reported: the epochs (and seconds) the inherited child needs to reach
the scratch child's accuracy, and Kendall's tau between the children ranked by inherited and
by scratch accuracy - next to the tau of two scratch runs, the agreement seed noise allows.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np
import torch

import search_spaces
from automl.data import load_dataset
from automl.experiments.candidates import FlopsCost, mutate, stratified
from automl.experiments.ranking import kendall_tau
from automl.train.loop import TrainConfig, train

WARM_FRACTIONS = (0.1, 0.2, 0.25, 0.3, 0.5, 1.0)  # 0.25: the epochs target below lies on the grid
TARGET_EPOCHS_RATIO = 0.25  # inherited children reach the scratch accuracy in at most this share of its epochs
TARGET_TAU_GAP = 0.1  # inherited-vs-scratch tau at most this far below scratch-vs-scratch tau


def _pair(space, data, parent_genome, child_genome, epochs: float, fractions, seed: int) -> dict[str, Any]:
    """One parent -> child pair: parent, two scratch children and the inherited child per fraction."""

    def run(model, budget: float, run_seed: int):
        return train(model, data, TrainConfig(epochs=budget), seed=run_seed)

    def build(genome):
        return space.build(genome, data.input_shape, data.num_classes)

    torch.manual_seed(seed)
    parent = run(build(parent_genome), epochs, seed)
    scratch = []
    for repeat in range(2):
        torch.manual_seed(seed + 100 * (repeat + 1))
        scratch.append(run(build(child_genome), epochs, seed + 100 * (repeat + 1)))
    warm: dict[float, dict[str, float]] = {}
    moves: list[str] = []
    for fraction in fractions:
        child, moves = space.inherit(parent.model, parent_genome, child_genome, data.input_shape,
                                     data.num_classes, torch.Generator().manual_seed(seed))
        result = run(child, fraction * epochs, seed + 300)
        warm[fraction] = {"accuracy": result.accuracy, "seconds": result.seconds, "epochs": result.epochs}
    target = scratch[0].accuracy
    reached = [f for f in fractions if warm[f]["accuracy"] >= target]
    return {
        "parent": space.format(parent_genome), "child": space.format(child_genome), "moves": moves,
        "parent_accuracy": parent.accuracy, "scratch_accuracy": target,
        "scratch_accuracy_other_seed": scratch[1].accuracy, "scratch_seconds": scratch[0].seconds,
        "scratch_epochs": scratch[0].epochs, "warm": {str(f): v for f, v in warm.items()},
        "epochs_needed": warm[reached[0]]["epochs"] if reached else None,
        "seconds_needed": warm[reached[0]]["seconds"] if reached else None,
    }


def bench_warmstart(pairs: int = 10, epochs: float = 1.0, max_flops: float | None = 20e6, seed: int = 0,
                    fractions=WARM_FRACTIONS, default_fraction: float = 0.3, progress=None) -> dict[str, Any]:
    """Warm-started children against scratch children (see the module docstring)."""
    space = search_spaces.get("mobile")
    data = load_dataset()
    rng = np.random.default_rng(seed)
    cost = FlopsCost(space, data)
    rows = []
    for p, parent_genome in enumerate(stratified(space, rng, pairs, max_flops, cost)):
        child_genome = mutate(space, parent_genome, 1 + p % 4, rng, max_flops, cost)
        row = _pair(space, data, parent_genome, child_genome, epochs, fractions, seed + p)
        rows.append({**row, "child_mflops": cost(child_genome) / 1e6, "genes_changed": 1 + p % 4})
        if progress is not None:
            progress(p + 1, pairs)
    return _summary(rows, pairs, epochs, max_flops, seed, fractions, default_fraction)


def _summary(rows, pairs, epochs, max_flops, seed, fractions, default_fraction) -> dict[str, Any]:
    needed = [r["epochs_needed"] / r["scratch_epochs"] if r["epochs_needed"] is not None else float("inf")
              for r in rows]
    seconds = [r["seconds_needed"] / r["scratch_seconds"] if r["seconds_needed"] is not None else float("inf")
               for r in rows]
    scratch_acc = [r["scratch_accuracy"] for r in rows]
    epochs_ratio = statistics.median(needed)
    tau_default = kendall_tau([r["warm"][str(default_fraction)]["accuracy"] for r in rows], scratch_acc)
    tau_full = kendall_tau([r["warm"][str(fractions[-1])]["accuracy"] for r in rows], scratch_acc)
    tau_ceiling = kendall_tau([r["scratch_accuracy_other_seed"] for r in rows], scratch_acc)
    return {
        "benchmark": "warmstart", "pairs": pairs, "epochs": epochs, "max_flops": max_flops, "seed": seed,
        "fractions": list(fractions),
        "epochs_ratio_median": epochs_ratio, "seconds_ratio_median": statistics.median(seconds),
        "reached": sum(r["epochs_needed"] is not None for r in rows),
        "default_fraction": default_fraction,
        "kendall_tau_at_default_fraction": tau_default,
        "kendall_tau_at_full_budget": tau_full,
        "kendall_tau_scratch_vs_scratch": tau_ceiling,
        "targets": {"epochs_ratio_at_most": TARGET_EPOCHS_RATIO, "tau_gap_at_most": TARGET_TAU_GAP},
        "met": {"epochs_ratio": epochs_ratio <= TARGET_EPOCHS_RATIO,
                "tau_at_default_fraction": tau_ceiling - tau_default <= TARGET_TAU_GAP,
                "tau_at_full_budget": tau_ceiling - tau_full <= TARGET_TAU_GAP},
        "rows": rows,
        "note": "epochs_ratio = epochs the inherited child needs to reach the scratch child's accuracy "
                "(smallest tried fraction that does) / scratch epochs, median over pairs; tau = Kendall tau "
                "between children ranked by inherited accuracy and by scratch accuracy; "
                "scratch_vs_scratch = the same for a second scratch seed (the noise ceiling)",
    }
