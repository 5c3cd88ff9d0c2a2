"""Offspring pre-selection: NSGA-II proposes more children than it can afford to evaluate,
and a cheap surrogate picks which ones to evaluate.

Each generation the nsga2 strategy proposes ``preselect`` times the population of children
(the usual tournament, crossover and mutation), predicts their objectives with a ridge
regression on one-hot genes fitted to every genome evaluated so far, and keeps the
population's worth that NSGA-II's own survival (non-dominated rank, then crowding) ranks best
on the predictions. Objectives that are cheap to compute exactly (FLOPs of a built model)
replace their predictions. This is the pre-selection of surrogate-assisted evolutionary NAS
(e.g. NSGANetV2); ``automl bench engine`` measures what it buys at equal budget.
"""

from __future__ import annotations

import numpy as np

from automl.engine.nsga2.survival import survivors


class OneHotRidge:
    """Ridge regression of standardised objectives on one-hot encoded genes."""

    def __init__(self, n_choices: np.ndarray, alpha: float = 0.3) -> None:
        self.n_choices = np.asarray(n_choices, dtype=int)
        self.offsets = np.concatenate([[0], np.cumsum(self.n_choices)[:-1]])
        self.alpha = alpha
        self.weights: np.ndarray | None = None

    def encode(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=int)
        H = np.zeros((len(X), int(self.n_choices.sum()) + 1))
        H[:, -1] = 1.0  # intercept
        rows = np.arange(len(X))
        for j in range(X.shape[1]):
            H[rows, self.offsets[j] + X[:, j]] = 1.0
        return H

    def fit(self, X: np.ndarray, F: np.ndarray) -> OneHotRidge:
        F = np.asarray(F, dtype=float)
        self.mean, self.scale = F.mean(axis=0), F.std(axis=0) + 1e-12
        H = self.encode(X)
        self.weights = np.linalg.solve(H.T @ H + self.alpha * np.eye(H.shape[1]), H.T @ ((F - self.mean) / self.scale))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.weights is None:
            raise RuntimeError("fit the surrogate before predicting")
        return self.encode(X) @ self.weights * self.scale + self.mean


def preselect(predicted: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` rows NSGA-II's survival (rank, then crowding) prefers."""
    return survivors(np.asarray(predicted, dtype=float), n)
