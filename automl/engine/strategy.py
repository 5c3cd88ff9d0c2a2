"""The ask/tell strategy protocol every search strategy implements.

A strategy proposes genomes (:meth:`Strategy.ask`) and learns from their results
(:meth:`Strategy.tell`); it never trains, records or waits - the engine
(:mod:`automl.engine.search`) does. A generational strategy is deterministic given its state,
the seed and the results it was told, and its state is plain JSON (:meth:`state_dict`): the
engine stores it in the study, so any process that joins or resumes the search continues it
from there instead of replaying it from the seed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from automl.core.errors import UnknownNameError
from automl.core.genome import Genome
from automl.core.pareto import Objective
from automl.engine.candidates import Candidate, Proposal
from search_spaces.base import SearchSpace

STRATEGIES = ("nsga2", "random", "optuna-nsga2", "optuna-tpe")


class Strategy(ABC):
    """Proposes genomes of ``space`` for ``objectives``; see the module docstring."""

    name: str = ""
    generational = True  # batches and state live in the study; False: an Optuna sampler's own

    def __init__(self, space: SearchSpace, objectives: Sequence[Objective], *, seed: int, population: int,
                 violation: Callable[[Genome], float] | None = None,
                 known: Callable[[Genome], Mapping[str, float]] | None = None) -> None:
        self.space = space
        self.objectives = list(objectives)
        self.seed = seed
        self.population = population
        self.violation = violation
        self.known = known
        self.n_choices = np.array([len(c) for c in space.genes().values()], dtype=int)
        self.generation = 0

    @abstractmethod
    def ask(self, n: int) -> list[Proposal]:
        """Up to ``n`` new genomes to evaluate (fewer, or none, when the space runs out)."""

    def tell(self, proposals: Sequence[Proposal], results: Sequence[Candidate]) -> None:
        """The results of the last batch asked for, in the same order; the next ask is the next
        generation."""
        self.generation += 1

    def attach(self, store) -> None:
        """Strategies whose state Optuna keeps in the study (its samplers) get the store here."""

    def adopt(self, results: Sequence[Candidate]) -> None:
        """Learn from evaluations made before any state was stored (a study written by an
        earlier version): the next ask continues from them."""

    def state_dict(self) -> dict[str, Any]:
        """JSON the engine stores in the study after each ask."""
        return {"generation": self.generation}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.generation = int(state.get("generation", 0))

    def rng(self) -> np.random.Generator:
        """This generation's random numbers: fixed by (seed, generation), so every process that
        shares the study proposes the same batch."""
        return np.random.default_rng([self.seed, self.generation])

    def row_violation(self, x: np.ndarray) -> float:
        return 0.0 if self.violation is None else float(self.violation(self.space.decode(x)))


def make_strategy(name: str, space: SearchSpace, objectives: Sequence[Objective], **options: Any) -> Strategy:
    """The strategy called ``name`` (imports Optuna's samplers only when they are asked for)."""
    if name == "nsga2":
        from automl.engine.nsga2.strategy import NSGA2Strategy as chosen
    elif name == "random":
        from automl.engine.random_search import RandomStrategy as chosen
    elif name == "optuna-nsga2":
        from automl.engine.optuna_nsga2 import OptunaNSGA2Strategy as chosen
    elif name == "optuna-tpe":
        from automl.engine.optuna_tpe import OptunaTPEStrategy as chosen
    else:
        raise UnknownNameError(f"unknown strategy {name!r} (known: {', '.join(STRATEGIES)})")
    return chosen(space, objectives, **options)
