"""``bench search``: search strategies on the same budget, end to end on the embedded data.

Each strategy searches ``mobile`` for the same wall-clock budget (and/or the same number of
evaluations): the hypervolume each front reaches, and the time each needs to reach random
search's (and nsga2's) final hypervolume. ``nsga2-warm`` warm-starts children (Net2Net) for
0.3x the epochs; every other strategy trains each candidate from scratch.

With ``accelerate``, every strategy also runs with those accelerators under the same budget,
and both runs' final fronts are re-scored by training each member plain for the full budget
under fresh seeds: a cheap proxy's optimistic or pessimistic accuracies do not count as gain,
only the architectures it found do.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

import search_spaces
from automl.core.errors import AutomlError
from automl.core.pareto import DEFAULT_OBJECTIVES, normalised_hypervolume
from automl.data import load_dataset
from automl.experiments.candidates import warm_up
from automl.nn.calibrate import calibration_for
from automl.train.loop import TrainConfig, train

SEARCH_STRATEGIES = ("nsga2-warm", "nsga2", "random", "optuna-nsga2", "optuna-tpe")
WARM_FRACTION = 0.3


def front_hypervolume(points: list[tuple[float, float]], max_flops: float) -> float:
    """Hypervolume of (accuracy, FLOPs) points: (1 - accuracy, FLOPs / max_flops) up to (1, 1)."""
    return normalised_hypervolume(points, DEFAULT_OBJECTIVES, {"flops": max_flops}, reference=1.0)


def hypervolume_over_time(candidates, max_flops: float) -> list[tuple[float, float]]:
    """(elapsed seconds, hypervolume of everything finished by then) after each candidate,
    the same normalisation for every strategy."""
    points, curve = [], []
    for candidate in sorted(candidates, key=lambda c: c.elapsed):
        if candidate.values is not None:
            points.append((candidate.values["accuracy"], candidate.values["flops"]))
        curve.append((candidate.elapsed, front_hypervolume(points, max_flops)))
    return curve


def time_to_reach(curve: list[tuple[float, float]], target: float) -> float | None:
    return next((t for t, hv in curve if hv >= target - 1e-12), None)


def _one_search(space, data, strategy: str, seed: int, settings: dict[str, Any], accelerate: str | None,
                folder: Path):
    """One search run in its own SQLite study under ``folder``."""
    from automl.evaluate.cnn import CNNEvaluator
    from automl.engine.search import Search
    from automl.store.study import StudyStore

    warm = strategy == "nsga2-warm"
    name = f"bench-{strategy}-{seed}{'-accelerated' if accelerate else ''}"
    store = StudyStore.create(name, f"sqlite:///{folder}/{name}.db", DEFAULT_OBJECTIVES, {},
                              artifacts=folder / f"{name}-artifacts")
    epochs = settings["epochs"]
    evaluator = CNNEvaluator(space, data, TrainConfig(epochs=epochs), seed=seed, accelerate=accelerate,
                             warm_epochs=round(WARM_FRACTION * epochs, 4) if warm else None)
    search = Search(space, evaluator, store, budget=settings["evaluations"] or 10**6,
                    population=settings["population"], seed=seed,
                    strategy="nsga2" if strategy.startswith("nsga2") else strategy,
                    violation=evaluator.violation(settings["max_flops"], None),
                    known=lambda g, e=evaluator: {"flops": e.cost(g)[0]}, warm_start=warm,
                    time_budget=settings["time_budget"])
    return search.run()


RESCORE_SEEDS = 2  # fresh plain trainings per front member, averaged


def _rescored(space, data, front, epochs: float, seed: int, known: dict[str, float]) -> list[tuple[float, float]]:
    """(accuracy trained plain for ``epochs``, FLOPs) of each front member, the mean over
    ``RESCORE_SEEDS`` seeds no search trained it under. Under the search's own seed a plain run's
    front would score its own values again - members chosen partly for a lucky seed, which an
    accelerated run's members (chosen under other noise) cannot match: fresh seeds remove that
    winner's bias from both. ``known`` caches accuracies by genome, so a member on several fronts
    gets one number."""
    from automl.engine.search import candidate_seed

    points = []
    for candidate in front:
        key = space.format(candidate.genome)
        if key not in known:
            accuracies = []
            for repeat in range(1, RESCORE_SEEDS + 1):
                run_seed = candidate_seed(seed + 1000 * repeat, candidate.genome)
                torch.manual_seed(run_seed)
                model = space.build(candidate.genome, data.input_shape, data.num_classes)
                accuracies.append(train(model, data, TrainConfig(epochs=epochs), seed=run_seed).accuracy)
            known[key] = statistics.mean(accuracies)
        points.append((known[key], candidate.values["flops"]))
    return points


def bench_search(time_budget: float | None = 600.0, seeds: int = 1, epochs: float = 1.0, max_flops: float = 10e6,
                 population: int = 8, strategies=SEARCH_STRATEGIES, progress=None, evaluations: int | None = None,
                 accelerate: str | None = None) -> dict[str, Any]:
    """Strategies on the same budget (see the module docstring). ``time_budget`` in seconds and
    ``evaluations`` per run: a run stops at whichever comes first; at least one is needed."""
    if time_budget is None and evaluations is None:
        raise AutomlError("bench search needs a budget: a time (--minutes) or a number of --evaluations")
    space = search_spaces.get("mobile")
    data = load_dataset()
    settings = {"time_budget": time_budget, "evaluations": evaluations, "epochs": epochs,
                "max_flops": max_flops, "population": population}
    variants = [(s, None) for s in strategies] + ([(s, accelerate) for s in strategies] if accelerate else [])
    runs: dict[str, list[dict[str, Any]]] = {label(s, a): [] for s, a in variants}
    warm_up(space, data, space.decode(np.zeros(len(space.genes()), dtype=int)), min(epochs, 0.25))  # smallest genome
    # every trial records the cost model's prediction: on a machine not yet calibrated, the
    # one-off fp32 calibration (about half a minute on a 2-core CPU) would otherwise eat the first timed run's budget
    calibration_for("cpu", formats=("fp32",))
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(seeds):
            rescored: dict[str, float] = {}
            for strategy, spec in variants:
                result = _one_search(space, data, strategy, seed, settings, spec, Path(tmp))
                curve = hypervolume_over_time(result.candidates, max_flops)
                row = {"seed": seed, "evaluations": len(result.candidates),
                       "warm_started": sum(bool(c.attrs.get("warm_start")) for c in result.candidates),
                       "final_hypervolume": curve[-1][1] if curve else 0.0, "curve": curve,
                       "front": [space.format(c.genome) for c in result.front]}
                if accelerate:
                    row["rescored_hypervolume"] = front_hypervolume(
                        _rescored(space, data, result.front, epochs, seed, rescored), max_flops)
                runs[label(strategy, spec)].append(row)
                if progress is not None:
                    progress(label(strategy, spec), seed, row)
    result = {"benchmark": "search", "time_budget": time_budget, "evaluations": evaluations, "seeds": seeds,
              "epochs": epochs, "max_flops": max_flops, "population": population, "accelerate": accelerate,
              "summary": summarise_search(runs), "runs": runs,
              "target": {"nsga2-warm time ratio to random": 0.5}, "note": NOTE}
    if accelerate:
        result["accelerated"] = accelerated_summary(runs, strategies, accelerate)
    return result


def label(strategy: str, accelerate: str | None) -> str:
    """A run's name: the strategy, and the accelerators it trained with."""
    return strategy if not accelerate else f"{strategy} + {accelerate}"


def accelerated_summary(runs: dict[str, list[dict[str, Any]]], strategies, accelerate: str) -> dict[str, Any]:
    """Per strategy, plain against accelerated: evaluations, the search's own final
    hypervolume, and the hypervolume of the final front re-scored by plain training."""
    table = {}
    for strategy in strategies:
        plain, fast = runs[strategy], runs[label(strategy, accelerate)]
        table[strategy] = {
            "evaluations": [[p["evaluations"], f["evaluations"]] for p, f in zip(plain, fast)],
            "search_hypervolume": [[p["final_hypervolume"], f["final_hypervolume"]] for p, f in zip(plain, fast)],
            "rescored_hypervolume": [[p["rescored_hypervolume"], f["rescored_hypervolume"]]
                                     for p, f in zip(plain, fast)],
            "rescored_gain_mean": statistics.mean(f["rescored_hypervolume"] - p["rescored_hypervolume"]
                                                  for p, f in zip(plain, fast)),
        }
    return table


def summarise_search(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per run label: mean final hypervolume and evaluations, the time each run needs to reach
    random search's final hypervolume (and its ratio to random's own time), and, where
    ``nsga2`` ran, the time to reach the final hypervolume of nsga2 without warm starts: the
    comparison that isolates what warm starts add to the search itself."""
    references = [r for r in ("random", "nsga2") if r in runs]
    for reference in references:
        targets = {r["seed"]: r["final_hypervolume"] for r in runs[reference]}
        for rows in runs.values():
            for row in rows:
                row[f"time_to_{reference}_final"] = time_to_reach(row["curve"], targets[row["seed"]])
    summary: dict[str, Any] = {}
    for name, rows in runs.items():
        summary[name] = {"final_hypervolume_mean": statistics.mean(r["final_hypervolume"] for r in rows),
                         "evaluations_mean": statistics.mean(r["evaluations"] for r in rows)}
        if all("rescored_hypervolume" in r for r in rows):
            summary[name]["rescored_hypervolume_mean"] = statistics.mean(r["rescored_hypervolume"] for r in rows)
        for reference in references:
            times = [r[f"time_to_{reference}_final"] for r in rows]
            own = [r[f"time_to_{reference}_final"] for r in runs[reference]]
            summary[name][f"time_to_{reference}_final"] = times
            summary[name][f"time_ratio_to_{reference}"] = [t / o if t is not None and o else None
                                                           for t, o in zip(times, own)]
    return summary


NOTE = ("hypervolume of (1 - validation accuracy, FLOPs / max_flops) up to (1, 1); time = wall-clock seconds "
        "from the search's start until its hypervolume first reaches random search's final one (None: never "
        "within the budget); time_to_nsga2_final: the same for the final hypervolume of nsga2 without warm "
        "starts; rescored_hypervolume (with accelerate): the run's final front with each member trained plain "
        f"for the full epochs, mean over {RESCORE_SEEDS} seeds neither search used, so plain and accelerated fronts are "
        "scored alike (under the search's own seed a plain front would re-score to its own lucky values)")
