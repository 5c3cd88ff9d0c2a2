"""The NSGA-II strategy: the operators of this package behind the ask/tell protocol."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from automl.engine import surrogate
from automl.engine.candidates import FAILED_PENALTY, Candidate, Proposal
from automl.engine.nsga2.crossover import uniform_crossover
from automl.engine.nsga2.duplicates import Archive
from automl.engine.nsga2.mutation import mutate
from automl.engine.nsga2.recipe import NSGA2, Recipe
from automl.engine.nsga2.repair import repair_row, space_costs
from automl.engine.nsga2.sampling import SAMPLERS
from automl.engine.nsga2.selection import binary_tournament
from automl.engine.nsga2.survival import survivors
from automl.engine.strategy import Strategy

DEFAULT_PRESELECT = 8  # children proposed per child evaluated (1: no surrogate)
MAX_ROUNDS = 100  # mating rounds per ask before settling for fewer new children (a small space)


class NSGA2Strategy(Strategy):
    """Generational NSGA-II on integer-encoded genomes, with a :class:`Recipe`'s settings.

    State: the population (rows and minimised objective values), the archive of every row
    asked for (no genome is proposed twice), and every evaluated row with its values (what the
    surrogate learns from).
    """

    name = "nsga2"

    def __init__(self, space, objectives, *, recipe: Recipe = NSGA2, preselect: int = DEFAULT_PRESELECT,
                 **common: Any) -> None:
        super().__init__(space, objectives, **common)
        self.recipe = recipe
        self.preselect = recipe.preselect if recipe.preselect is not None else preselect
        self.costs = space_costs(space)
        self.mutation_prob = recipe.mutation_prob or min(0.5, 1.0 / len(self.n_choices))
        self.archive = Archive()
        width = len(self.n_choices)
        self.pop_x = np.zeros((0, width), dtype=int)
        self.pop_f = np.zeros((0, len(self.objectives)))
        self.seen_x: list[list[int]] = []
        self.seen_f: list[list[float]] = []

    # -- protocol -------------------------------------------------------------------------

    def ask(self, n: int) -> list[Proposal]:
        rng = self.rng()
        if len(self.pop_x) == 0:
            sample = SAMPLERS[self.recipe.sampling]
            rows = self._fill(n, rng, lambda k: [(x, ()) for x in sample(self.n_choices, k, rng)])
        else:
            pick = self.preselect > 1 and len(self.seen_x) >= 2
            rows = self._fill(n * (self.preselect if pick else 1), rng, lambda k: self._children(k, rng))
            if pick and len(rows) > n:
                rows = [rows[i] for i in self._preselected([x for x, _ in rows], n)]
        for x, _ in rows:
            self.archive.add(x)
        return [Proposal(self.space.decode(x), [self.space.decode(p).key() for p in parents], self.generation)
                for x, parents in rows]

    def tell(self, proposals: Sequence[Proposal], results: Sequence[Candidate]) -> None:
        self._survive(results)
        super().tell(proposals, results)

    def adopt(self, results: Sequence[Candidate]) -> None:
        for c in results:
            self.archive.add(self.space.encode(c.genome))
        self._survive(results)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "population": self.pop_x.tolist(), "fitness": self.pop_f.tolist(),
                "archive": self.archive.as_list(), "evaluated": self.seen_x, "evaluated_fitness": self.seen_f}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        width = len(self.n_choices)
        self.pop_x = np.asarray(state.get("population", []), dtype=int).reshape(-1, width)
        self.pop_f = np.asarray(state.get("fitness", []), dtype=float).reshape(-1, len(self.objectives))
        self.archive = Archive(state.get("archive", []))
        self.seen_x = [list(map(int, x)) for x in state.get("evaluated", [])]
        self.seen_f = [list(map(float, f)) for f in state.get("evaluated_fitness", [])]

    # -- operators ------------------------------------------------------------------------

    def _fill(self, n: int, rng: np.random.Generator, make) -> list[tuple[np.ndarray, tuple]]:
        """Up to ``n`` new rows (repaired, none known), drawing batches from ``make(k)``."""
        chosen: list[tuple[np.ndarray, tuple]] = []
        batch = Archive(self.archive.rows)
        for _ in range(MAX_ROUNDS):
            if len(chosen) >= n:
                break
            for x, parents in make(n - len(chosen)):
                x = self._repaired(x, rng)
                if batch.add(x) and len(chosen) < n:
                    chosen.append((x, parents))
        return chosen

    def _children(self, k: int, rng: np.random.Generator) -> list[tuple[np.ndarray, tuple]]:
        """``k`` (rounded up to even) children of tournament-selected parents."""
        matings = -(-k // 2)
        winners = binary_tournament(self.pop_f, 2 * matings, rng, self.recipe.tournament).reshape(matings, 2)
        children = []
        for a, b in winners:
            pa, pb = self.pop_x[a], self.pop_x[b]
            for child in uniform_crossover(pa, pb, rng, self.recipe.crossover_prob, self.recipe.swap_prob):
                children.append((mutate(child, self.n_choices, rng, self.mutation_prob), (pa, pb)))
        return children

    def _repaired(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.violation is None:
            return x
        return repair_row(x, self.n_choices, self.row_violation, rng, costs=self.costs)

    def _preselected(self, X: list[np.ndarray], n: int) -> np.ndarray:
        """Indices of the ``n`` children the surrogate ranks best (exact values where known)."""
        X = np.asarray(X, dtype=int)
        model = surrogate.OneHotRidge(self.n_choices).fit(np.array(self.seen_x), np.array(self.seen_f))
        predicted = model.predict(X)
        if self.known is not None:  # exact values for objectives that cost nothing to compute
            for i, x in enumerate(X):
                exact = self.known(self.space.decode(x))
                for j, objective in enumerate(self.objectives):
                    if objective.name in exact:
                        predicted[i, j] = objective.minimised(float(exact[objective.name]))
        return surrogate.preselect(predicted, n)

    def _survive(self, results: Sequence[Candidate]) -> None:
        """NSGA-II survival over the population and the new results (failed or infeasible
        ones rank last); the evaluated ones feed the surrogate."""
        if not results:
            return
        X = np.array([self.space.encode(c.genome) for c in results], dtype=int)
        F = np.array([self._fitness(c) for c in results], dtype=float)
        for x, f, c in zip(X, F, results):
            if c.values is not None:
                self.seen_x.append(x.tolist())
                self.seen_f.append(f.tolist())
        pool_x, pool_f = np.vstack([self.pop_x, X]), np.vstack([self.pop_f, F])
        keep = survivors(pool_f, self.population)
        self.pop_x, self.pop_f = pool_x[keep], pool_f[keep]

    def _fitness(self, candidate: Candidate) -> list[float]:
        if candidate.values is not None and self.violation is not None and self.violation(candidate.genome) > 0:
            return [FAILED_PENALTY] * len(self.objectives)
        return candidate.minimised(self.objectives)
