"""``bench engine``: search quality at equal budget on categorical test problems (no
training) - the hypervolume each strategy reaches, mean over seeds, per problem."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from automl.core.pareto import Objective, as_minimisation, hypervolume
from automl.experiments.problems import PROBLEMS
from automl.engine.api import search

STRATEGIES = ("nsga2", "nsga2-plain", "dvolver", "random", "optuna-nsga2", "optuna-tpe")
DEFAULT = "nsga2"
RIVALS = ("optuna-nsga2", "optuna-tpe")
# The worst seed's hypervolume may fall at most this fraction below the median. Relative,
# because the problems' hypervolumes differ in scale by three orders of magnitude (nk ~0.6,
# nas ~700), so an absolute 0.01 would mean nothing on one problem and everything on another.
TARGET_WORST_GAP = 0.01


def bench_engine(budget: int = 150, seeds: int = 10, strategies=None, problems=None,
                 progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Hypervolume each strategy reaches at equal budget, mean over seeds, per problem.

    ``nsga2-plain`` is our nsga2 without surrogate pre-selection; ``dvolver`` is Dvolver's
    reference recipe (``--recipe dvolver``: population 32, its crossover and mutation rates).
    Besides mean and spread, each row keeps the median and the worst seed: a strategy good on
    average but bad on one seed is not good. ``progress`` receives a line per finished search.
    """
    strategies = list(strategies or STRATEGIES)
    problems = list(problems or PROBLEMS)
    table: dict[str, dict[str, Any]] = {}
    for name in problems:
        space, evaluate, objectives, reference = PROBLEMS[name]
        parsed = [Objective(*o) for o in objectives]
        table[name] = {}
        for strategy in strategies:
            volumes, seconds = [], []
            for seed in range(seeds):
                started = time.perf_counter()
                if strategy == "nsga2-plain":
                    result = search(space, evaluate, objectives, budget=budget, seed=seed, preselect=1)
                elif strategy == "dvolver":
                    result = search(space, evaluate, objectives, budget=budget, seed=seed, recipe="dvolver")
                else:
                    result = search(space, evaluate, objectives, budget=budget, seed=seed, strategy=strategy)
                seconds.append(time.perf_counter() - started)
                points = as_minimisation([[c.values[o.name] for o in parsed] for c in result.candidates
                                          if c.values is not None], parsed)
                volumes.append(hypervolume(points, reference))
                if progress:
                    progress(f"{name} {strategy} seed {seed + 1}/{seeds}: hypervolume {volumes[-1]:.4g} "
                             f"({seconds[-1]:.0f} s)")
            table[name][strategy] = {"hypervolume_mean": statistics.mean(volumes),
                                     "hypervolume_std": statistics.pstdev(volumes),
                                     "hypervolume_median": statistics.median(volumes),
                                     "hypervolume_worst": min(volumes),
                                     "worst_gap": _worst_gap(volumes),
                                     "hypervolumes": volumes, "seconds_mean": statistics.mean(seconds)}
    wins = {name: max(rows, key=lambda s: rows[s]["hypervolume_mean"]) for name, rows in table.items()}
    return {"benchmark": "engine", "budget": budget, "seeds": seeds, "problems": table, "best": wins,
            "targets": _targets(table),
            "note": "hypervolume of all evaluated points (minimisation form) up to each problem's "
                    "reference point; same budget and seeds for every strategy"}


def _worst_gap(volumes: list[float]) -> float:
    """How far the worst seed falls below the median, as a fraction of the median."""
    median = statistics.median(volumes)
    return (median - min(volumes)) / median if median else 0.0


def _targets(table: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Whether the default strategy's worst seed stays near its median on every problem and
    whether its mean hypervolume is ahead of each Optuna sampler measured, on every problem."""
    rows = [rows for rows in table.values() if DEFAULT in rows]
    if not rows:
        return {}
    met: dict[str, Any] = {"worst_gap": all(r[DEFAULT]["worst_gap"] <= TARGET_WORST_GAP for r in rows)}
    for rival in RIVALS:
        if all(rival in r for r in rows):
            met[f"ahead_of_{rival}"] = all(r[DEFAULT]["hypervolume_mean"] > r[rival]["hypervolume_mean"]
                                           for r in rows)
    return {"strategy": DEFAULT, "worst_gap_at_most": TARGET_WORST_GAP, "met": met}
