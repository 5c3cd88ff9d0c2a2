"""Optuna's own samplers as strategies, for side-by-side comparison with ours.

The study's sampler chooses each genome inside ``study.ask()`` and keeps its state in the
study itself, so these strategies are not generational: they ask one genome at a time and
Optuna handles processes that share the study. What they propose and we need not train -
a genome evaluated already, or one that breaks the constraints - is answered from the study
at once, and counts against a waste allowance rather than the budget.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from automl.core import attrs
from automl.engine.candidates import Candidate, Proposal
from automl.engine.nsga2.repair import repair_row, space_costs
from automl.engine.strategy import Strategy


class OptunaStrategy(Strategy):
    """A strategy whose genomes an Optuna sampler on the study proposes."""

    generational = False

    def __init__(self, space, objectives, **common: Any) -> None:
        super().__init__(space, objectives, **common)
        self.store = None
        self.seen: set[str] = set()
        self.asked = 0
        self.repair_rng = np.random.default_rng(self.seed)
        self.costs = space_costs(space)

    @abstractmethod
    def sampler(self):
        """The Optuna sampler this strategy puts on the study."""

    def attach(self, store) -> None:
        self.store = store
        store.study.sampler = self.sampler()

    def adopt(self, results: Sequence[Candidate]) -> None:
        self.seen.update(c.genome.key() for c in results)
        self.asked += len(results)
        self.generation = self.asked // self.population

    def ask(self, n: int) -> list[Proposal]:
        """One genome from the sampler, or none when its proposal needed no training."""
        trial, genome = self.store.ask(self.space.genes(), self.space.name)
        key = genome.key()
        if key in self.seen:
            stored = self.store.finished_by_key().get(key)
            if stored is not None:
                self.store.answer_duplicate(trial, stored)
            else:
                self.store.fail(trial, "proposed again before its evaluation finished",
                                extra={attrs.KEY: key, attrs.DUPLICATE_OF: -1}, retry=False)
            return []
        violation = 0.0 if self.violation is None else float(self.violation(genome))
        if violation > 0:
            self.store.answer_infeasible(trial, key, violation)
            self._enqueue_repaired(genome)
            return []
        self.seen.add(key)
        return [Proposal(genome, [], self.generation, trial=trial)]

    def tell(self, proposals: Sequence[Proposal], results: Sequence[Candidate]) -> None:
        self.asked += len(results)
        self.generation = self.asked // self.population

    def _enqueue_repaired(self, genome) -> None:
        """Queue the repaired form of an infeasible proposal as the sampler's next trial.

        Optuna's samplers never see why a trial failed, so under a FLOPs limit they keep
        proposing genomes that break it (TPE spent a whole benchmark budget so). Our own
        strategies repair such genomes; this gives Optuna's the same repaired genome, which
        they then learn from like any trial of theirs."""
        x0 = self.space.encode(genome)
        for _ in range(10):
            x = repair_row(x0, self.n_choices, self.row_violation, self.repair_rng, costs=self.costs)
            repaired = self.space.decode(x)
            if self.row_violation(x) <= 0 and repaired.key() not in self.seen:
                self.store.study.enqueue_trial(dict(repaired))
                return
