"""Mutation: a gene moves to a *different* legal value."""

from __future__ import annotations

import numpy as np


def mutate(x: np.ndarray, n_choices: np.ndarray, rng: np.random.Generator, prob: float) -> np.ndarray:
    """Each gene with more than one choice mutates with probability ``prob`` to another value,
    drawn uniformly among the others (never to the value it has)."""
    x = np.array(x, dtype=int, copy=True)
    mask = (rng.random(len(x)) < prob) & (np.asarray(n_choices) > 1)
    for j in np.flatnonzero(mask):
        other = int(rng.integers(n_choices[j] - 1))
        x[j] = other if other < x[j] else other + 1
    return x
