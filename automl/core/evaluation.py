"""The evaluator contract: what an evaluator returns and what the engine tells it.

An evaluator is any callable ``genome -> Evaluation | {objective: value}``. One that sets
``accepts_context = True`` is called as ``evaluate(genome, context)`` and learns the
candidate's generation, parents and the trained trial it may warm-start from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Evaluation:
    """Objective values, side facts (trial user attributes) and optionally weights to store
    as an artifact. A plain dict of values is accepted from an evaluator too."""

    values: dict[str, float]
    attrs: dict[str, Any] = field(default_factory=dict)
    weights: Mapping[str, Any] | None = None
    pruned: bool = False  # stopped early (multi-fidelity): values are partial, the trial is PRUNED


@dataclass
class EvaluationContext:
    """What the engine knows about a candidate beyond its genome: its generation, its
    NSGA-II parents, the trained trial to warm-start from (Net2Net) and how to read that
    trial's weights, the study's folder for one-off artifacts, and the running trial.
    A context sent to a worker process carries no open study: ``weights_of`` then reads the
    artifact folder directly and ``storage``/``study_name``/``trial_number`` say where the
    running trial is."""

    generation: int
    parents: list[int]
    warm_parent: Any = None  # an optuna FrozenTrial
    weights_of: Callable[[Any], dict[str, Any]] | None = None
    cache_dir: Path | None = None
    trial: Any = None  # the candidate's running Optuna trial (early stopping records rungs on it)
    study: Any = None  # the optuna Study every worker shares (early stopping reads peers' rungs)
    # where the study lives, for a worker in another process (a Ray task): ``trial`` and
    # ``study`` do not travel, so the worker reopens them from these when it needs them
    storage: str | None = None
    study_name: str | None = None
    trial_number: int | None = None

    def load_weights(self) -> dict[str, Any]:
        if self.warm_parent is None or self.weights_of is None:
            raise ValueError("no warm-start parent")
        return self.weights_of(self.warm_parent)
