"""Pareto fronts and hypervolume, for any objectives with declared directions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Objective:
    """An objective's name and whether it is minimised ("min") or maximised ("max")."""

    name: str
    direction: str

    def __post_init__(self) -> None:
        if self.direction not in ("min", "max"):
            from automl.core.errors import AutomlError

            raise AutomlError(f"objective {self.name!r}: direction must be 'min' or 'max', got {self.direction!r}")

    @property
    def optuna_direction(self) -> str:
        return "minimize" if self.direction == "min" else "maximize"

    def minimised(self, value: float) -> float:
        """The value in minimisation form (maximised objectives are negated)."""
        return value if self.direction == "min" else -value


DEFAULT_OBJECTIVES = (Objective("accuracy", "max"), Objective("flops", "min"))


def as_minimisation(values: Sequence[Sequence[float]], objectives: Sequence[Objective]) -> np.ndarray:
    """Rows of objective values -> array where every column is to be minimised."""
    array = np.asarray(values, dtype=float).reshape(-1, len(objectives))
    signs = np.array([1.0 if o.direction == "min" else -1.0 for o in objectives])
    return array * signs


def non_dominated(points: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated rows of a minimisation array (duplicates all kept)."""
    points = np.asarray(points, dtype=float)
    if len(points) == 0:
        return np.array([], dtype=int)
    keep = []
    for i, p in enumerate(points):
        dominated = np.any(np.all(points <= p, axis=1) & np.any(points < p, axis=1))
        if not dominated:
            keep.append(i)
    return np.array(keep, dtype=int)


def hypervolume(points: np.ndarray, reference: Sequence[float]) -> float:
    """Hypervolume dominated by minimisation ``points`` up to ``reference`` (pymoo's HV)."""
    from pymoo.indicators.hv import HV

    points = np.asarray(points, dtype=float)
    reference = np.asarray(reference, dtype=float)
    inside = points[np.all(points < reference, axis=1)] if len(points) else points
    if len(inside) == 0:
        return 0.0
    return float(HV(ref_point=reference)(inside))


def normalise(values: Sequence[Sequence[float]], objectives: Sequence[Objective],
              scales: Mapping[str, float] | None = None) -> np.ndarray:
    """Objective values in minimisation form scaled to about [0, 1], so hypervolumes of
    different runs, generations and studies compare: a maximised ``accuracy`` becomes
    ``1 - accuracy``; every other objective is divided by ``scales[name]`` where given, else by
    its largest absolute value among ``values``."""
    points = as_minimisation(values, objectives)
    for j, objective in enumerate(objectives):
        if objective.name == "accuracy" and objective.direction == "max":
            points[:, j] = 1.0 + points[:, j]  # -accuracy -> 1 - accuracy
            continue
        scale = (scales or {}).get(objective.name)
        if scale is None:
            scale = float(np.max(np.abs(points[:, j]))) if len(points) else 0.0
        points[:, j] = points[:, j] / scale if scale > 0 else points[:, j]
    return points


def normalised_hypervolume(values: Sequence[Sequence[float]], objectives: Sequence[Objective],
                           scales: Mapping[str, float] | None = None, reference: float = 1.0) -> float:
    """Hypervolume of :func:`normalise`-d ``values`` up to ``reference`` on every axis."""
    if len(values) == 0:
        return 0.0
    return hypervolume(normalise(values, objectives, scales), [reference] * len(objectives))


def crowding(points: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of points (n, m) in one front (boundaries infinite)."""
    points = np.asarray(points, dtype=float)
    n, m = points.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        order = np.argsort(points[:, j])
        span = points[order[-1], j] - points[order[0], j]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (points[order[2:], j] - points[order[:-2], j]) / span
    return distance


def nsga_order(points: np.ndarray) -> list[int]:
    """Indices of minimisation points (n, m) best first: by front, then by crowding distance
    (NSGA-II's survival order)."""
    points = np.asarray(points, dtype=float)
    remaining = np.arange(len(points))
    order: list[int] = []
    while len(remaining):
        front = remaining[non_dominated(points[remaining])]
        distance = crowding(points[front])
        order.extend(int(front[i]) for i in np.argsort(-distance, kind="stable"))
        remaining = np.setdiff1d(remaining, front)
    return order
