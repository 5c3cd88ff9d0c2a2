"""Constraint repair: move a genome over --max-flops/--max-params into the feasible region.

Gene kinds decide what "smaller" means. An ordinal gene's choices run small to large, so a
cheaper choice is an earlier one; a nominal gene (operation types) has no order, so a cheaper
choice is one whose cost (:meth:`SearchSpace.choice_costs`) is lower, wherever it sits in the
list. Both are one rule here: per gene, a cost per choice (an ordinal gene's cost is its
position).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Costs = Sequence[np.ndarray]  # per gene: the cost of each choice


def position_costs(n_choices: np.ndarray) -> list[np.ndarray]:
    """The costs of a space whose genes are all ordinal."""
    return [np.arange(int(k), dtype=float) for k in n_choices]


def space_costs(space) -> list[np.ndarray]:
    """Per gene of a :class:`SearchSpace`, the cost of each choice (positions for ordinal genes)."""
    return [np.asarray(space.choice_costs(gene), dtype=float) for gene in space.genes()]


def smallest_row(costs: Costs) -> np.ndarray:
    """The cheapest genome: every gene at its cheapest choice (the first, for ordinal genes)."""
    return np.array([int(np.argmin(c)) for c in costs], dtype=int)


def _cheaper(costs: Costs, x: np.ndarray, j: int) -> np.ndarray:
    return np.flatnonzero(costs[j] < costs[j][x[j]])


def repair_row(x: np.ndarray, n_choices: np.ndarray, violation: Callable[[np.ndarray], float],
               rng: np.random.Generator, steps: int = 200, costs: Costs | None = None) -> np.ndarray:
    """Greedy descent on the violation by single-gene moves, kept when not worse.

    Most moves (4 in 5) take one gene to a cheaper choice - the direction that helps FLOPs and
    parameter limits; the rest are arbitrary, for constraints of other shapes. Falls back to
    fresh samples, then to the cheapest genome.
    """
    costs = position_costs(n_choices) if costs is None else costs
    x = np.array(x, dtype=int, copy=True)
    current = violation(x)
    for _ in range(steps):
        if current <= 0:
            return x
        trial = x.copy()
        shrinkable = [j for j in range(len(x)) if len(_cheaper(costs, x, j))]
        if shrinkable and rng.random() < 0.8:
            j = int(rng.choice(shrinkable))
            trial[j] = int(rng.choice(_cheaper(costs, x, j)))
        else:
            j = int(rng.integers(len(x)))
            trial[j] = int(rng.integers(n_choices[j]))
        value = violation(trial)
        if value <= current:
            x, current = trial, value
    for _ in range(steps):
        if current <= 0:
            return x
        x = rng.integers(n_choices)
        current = violation(x)
    smallest = smallest_row(costs)
    return smallest if violation(smallest) <= current else x
