"""Mating selection: binary tournaments among the population."""

from __future__ import annotations

import numpy as np

from automl.core.pareto import crowding, non_dominated


def ranks_and_crowding(F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-dominated rank (0 = first front) and crowding distance within its front, per row."""
    F = np.asarray(F, dtype=float)
    rank = np.zeros(len(F), dtype=int)
    crowd = np.zeros(len(F))
    remaining = np.arange(len(F))
    level = 0
    while len(remaining):
        front = remaining[non_dominated(F[remaining])]
        rank[front] = level
        crowd[front] = crowding(F[front])
        remaining = np.setdiff1d(remaining, front)
        level += 1
    return rank, crowd


def _dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(a <= b) and np.any(a < b))


def binary_tournament(F: np.ndarray, n: int, rng: np.random.Generator, rule: str = "rank") -> np.ndarray:
    """Indices of ``n`` winners of binary tournaments among the rows of ``F`` (minimisation).

    ``rule="rank"``: the lower non-dominated rank wins; ``rule="dominance"`` (Dvolver): the
    dominating one wins. Either way a tie goes to the larger crowding distance, then to chance.
    Competitors are drawn as in pymoo: concatenated random permutations of the population.
    """
    F = np.asarray(F, dtype=float)
    rank, crowd = ranks_and_crowding(F)
    draws = np.concatenate([rng.permutation(len(F)) for _ in range(-(-2 * n // len(F)))])[:2 * n]
    winners = np.empty(n, dtype=int)
    for i, (a, b) in enumerate(draws.reshape(n, 2)):
        if rule == "rank" and rank[a] != rank[b]:
            winners[i] = a if rank[a] < rank[b] else b
        elif rule == "dominance" and (_dominates(F[a], F[b]) or _dominates(F[b], F[a])):
            winners[i] = a if _dominates(F[a], F[b]) else b
        elif crowd[a] != crowd[b]:
            winners[i] = a if crowd[a] > crowd[b] else b
        else:
            winners[i] = a if rng.random() < 0.5 else b
    return winners
