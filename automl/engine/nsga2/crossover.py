"""Uniform crossover: two parents give two children."""

from __future__ import annotations

import numpy as np


def uniform_crossover(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, prob: float,
                      swap: float) -> tuple[np.ndarray, np.ndarray]:
    """With probability ``prob`` the parents exchange each gene with probability ``swap``;
    otherwise the children are copies of the parents (mutation then changes them)."""
    a, b = np.array(a, dtype=int), np.array(b, dtype=int)
    if rng.random() >= prob:
        return a, b
    mask = rng.random(len(a)) < swap
    return np.where(mask, b, a), np.where(mask, a, b)
