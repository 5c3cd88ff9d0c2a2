"""``bench engine``: search quality at equal budget on categorical test problems (no
training) - the hypervolume each strategy reaches, mean over seeds, per problem."""

from __future__ import annotations

import statistics
import time
from typing import Any

from automl.core.pareto import Objective, as_minimisation, hypervolume
from automl.experiments.problems import PROBLEMS
from automl.engine.api import search

STRATEGIES = ("nsga2", "nsga2-plain", "dvolver", "random", "optuna-nsga2", "optuna-tpe")


def bench_engine(budget: int = 150, seeds: int = 10, strategies=None, problems=None) -> dict[str, Any]:
    """Hypervolume each strategy reaches at equal budget, mean over seeds, per problem.

    ``nsga2-plain`` is our nsga2 without surrogate pre-selection; ``dvolver`` is Dvolver's
    reference recipe (``--recipe dvolver``: population 32, its crossover and mutation rates).
    Besides mean and spread, each row keeps the median and the worst seed: a strategy good on
    average but bad on one seed is not good.
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
            table[name][strategy] = {"hypervolume_mean": statistics.mean(volumes),
                                     "hypervolume_std": statistics.pstdev(volumes),
                                     "hypervolume_median": statistics.median(volumes),
                                     "hypervolume_worst": min(volumes),
                                     "hypervolumes": volumes, "seconds_mean": statistics.mean(seconds)}
    wins = {name: max(rows, key=lambda s: rows[s]["hypervolume_mean"]) for name, rows in table.items()}
    return {"benchmark": "engine", "budget": budget, "seeds": seeds, "problems": table, "best": wins,
            "note": "hypervolume of all evaluated points (minimisation form) up to each problem's "
                    "reference point; same budget and seeds for every strategy"}
