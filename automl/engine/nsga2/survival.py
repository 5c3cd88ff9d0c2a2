"""NSGA-II survival: the best ``n`` by non-dominated rank, then crowding distance."""

from __future__ import annotations

import numpy as np

from automl.core.pareto import nsga_order


def survivors(F: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` rows of ``F`` (minimisation) NSGA-II keeps, best first."""
    return np.asarray(nsga_order(np.asarray(F, dtype=float))[:n], dtype=int)
