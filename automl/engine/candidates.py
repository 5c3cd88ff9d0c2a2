"""What strategies propose and what the engine hands back: proposals, candidates, results."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from automl.core.genome import Genome
from automl.core.pareto import Objective, as_minimisation, non_dominated

FAILED_PENALTY = 1e30  # objective value (minimisation form) of a failed candidate


@dataclass
class Proposal:
    """A genome a strategy asks to evaluate: its parents (genome keys) and generation, and for
    Optuna's samplers the trial they already opened for it."""

    genome: Genome
    parents: list[str] = field(default_factory=list)
    generation: int = 0
    trial: Any = None  # an optuna Trial when the study's sampler chose the genome


@dataclass
class Candidate:
    """One evaluated genome as the search saw it."""

    genome: Genome
    values: dict[str, float] | None
    trial: int | None
    generation: int
    parents: list[int] = field(default_factory=list)
    failed: str | None = None
    reused: bool = False  # evaluated earlier or by another process: not trained by this one
    attrs: dict[str, Any] = field(default_factory=dict)
    elapsed: float = 0.0  # seconds from the start of the search to this candidate's end
    pruned: bool = False  # stopped early: values are the partial ones at its last checkpoint

    def as_dict(self) -> dict[str, Any]:
        return {"trial": self.trial, "genome": dict(self.genome), "values": self.values,
                "generation": self.generation, "parents": self.parents, "failed": self.failed}

    def minimised(self, objectives: Sequence[Objective]) -> list[float]:
        """Objective values in minimisation form; a failed candidate gets the worst there is."""
        if self.values is None:
            return [FAILED_PENALTY] * len(objectives)
        return [o.minimised(self.values[o.name]) for o in objectives]


@dataclass
class SearchResult:
    """Every genome the search evaluated (in order) and the Pareto front among them."""

    candidates: list[Candidate]
    front: list[Candidate]
    objectives: list[Objective]
    store: Any = None  # the StudyStore, when the search recorded into one

    @property
    def study(self):
        return self.store.study if self.store is not None else None

    @classmethod
    def of(cls, candidates: list[Candidate], objectives: list[Objective], store: Any = None) -> SearchResult:
        done = [c for c in candidates if c.values is not None and not c.pruned]
        front: list[Candidate] = []
        if done:
            points = as_minimisation([[c.values[o.name] for o in objectives] for c in done], objectives)
            front = sorted((done[i] for i in non_dominated(points)), key=lambda c: c.values[objectives[-1].name])
        return cls(candidates, front, objectives, store)


def candidate_seed(seed: int, genome: Genome) -> int:
    """Training seed of a genome: fixed by (--seed, genome), independent of search order."""
    digest = hashlib.sha256(f"{seed}:{genome.key()}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def default_population(budget: int) -> int:
    """Population size for a budget: a twentieth of it, between 8 and 64 (small budgets do
    best with small populations and more generations; `automl bench engine` measures it)."""
    return int(min(64, max(8, budget // 20)))
