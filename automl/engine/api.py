"""The Python API: search any space with any evaluator.

Over a plain dict space with a plain Python evaluator nothing here imports torch: spaces
are looked up in the registry only when named, and the CNN machinery lives elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from automl.core.errors import AutomlError
from automl.core.pareto import Objective
from automl.engine.candidates import SearchResult
from automl.engine.search import Search
from automl.engine.nsga2.strategy import DEFAULT_PRESELECT
from automl.store.study import StudyStore
from search_spaces.base import DictSpace, SearchSpace

__all__ = ["SearchResult", "search"]


def search(space: str | SearchSpace | Mapping[str, Sequence[Any]],
           evaluate: Callable[[dict[str, Any]], Mapping[str, float]],
           objectives: Sequence[tuple[str, str] | Objective],
           budget: int, seed: int = 0, strategy: str = "nsga2", population: int | None = None,
           preselect: int = DEFAULT_PRESELECT, storage: str | None = None, study: str = "api",
           recipe: str = "nsga2", workers: int | None = None, ray: str | None = None,
           cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0) -> SearchResult:
    """Search any space with any evaluator; no torch training involved unless ``evaluate`` trains.

    ``space`` is a registered space name, a SearchSpace, or a mapping gene -> choices.
    ``evaluate`` maps a genome (a dict gene -> value) to a dict objective -> value.
    ``objectives`` lists (name, "min"|"max"). ``budget`` counts evaluations. ``preselect``
    is how many children nsga2 proposes per child it evaluates (1: no surrogate); ``recipe``
    "dvolver" runs Dvolver's reference NSGA-II recipe instead of ours (:mod:`automl.engine.nsga2.recipe`).
    Trials are recorded in an in-memory Optuna study unless ``storage`` names one.
    ``workers`` evaluates that many genomes at once as Ray tasks on a local Ray instance
    (started and stopped here; one already started in this process is used as it is), ``ray``
    an address of a Ray cluster to send them to (``"auto"``); each task asks for
    ``cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs. ``evaluate`` then runs in Ray's
    worker processes: it must pickle (cloudpickle: closures and lambdas do).
    Returns every evaluated genome with its values, and the Pareto front.
    """
    import search_spaces

    executor = None
    if workers is not None or ray is not None:
        from automl.engine.ray_executor import RayExecutor, require_ray

        executor = RayExecutor(workers, ray, cpus_per_trial, gpus_per_trial)
        require_ray()
    if isinstance(space, str):
        chosen = search_spaces.get(space)
    elif isinstance(space, SearchSpace):
        chosen = space
    else:
        chosen = DictSpace(space)
    parsed = [o if isinstance(o, Objective) else Objective(*o) for o in objectives]
    if not parsed:
        raise AutomlError("at least one objective is needed")
    store = StudyStore.create(study, storage or "memory", parsed,
                              {"space": chosen.name, "strategy": strategy, "recipe": recipe, "seed": seed,
                               "preselect": preselect, "api": True})
    runner = Search(chosen, _PlainGenomes(evaluate), store, budget=budget, strategy=strategy,
                    population=population, seed=seed, preselect=preselect, recipe=recipe, executor=executor)
    return runner.run()


class _PlainGenomes:
    """The user's evaluator, called with a plain dict gene -> value (picklable for workers)."""

    def __init__(self, evaluate: Callable[[dict[str, Any]], Mapping[str, float]]) -> None:
        self.evaluate = evaluate

    def __call__(self, genome) -> Mapping[str, float]:
        return self.evaluate(dict(genome))
