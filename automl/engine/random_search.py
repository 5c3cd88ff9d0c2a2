"""Random search: uniform genomes, never one asked for before (the baseline to beat)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from automl.engine.candidates import Candidate, Proposal
from automl.engine.nsga2.duplicates import Archive
from automl.engine.nsga2.repair import repair_row, space_costs
from automl.engine.strategy import Strategy

MAX_DRAWS = 20  # draws per genome asked before the space counts as exhausted


class RandomStrategy(Strategy):
    """Uniform sampling without repeats; constraint violations are repaired like nsga2's."""

    name = "random"

    def __init__(self, space, objectives, **common: Any) -> None:
        super().__init__(space, objectives, **common)
        self.archive = Archive()
        self.costs = space_costs(space)

    def ask(self, n: int) -> list[Proposal]:
        rng = self.rng()
        proposals: list[Proposal] = []
        for _ in range(MAX_DRAWS * n):
            if len(proposals) == n:
                break
            x = rng.integers(self.n_choices)
            if self.violation is not None:
                x = repair_row(x, self.n_choices, self.row_violation, rng, costs=self.costs)
            if self.archive.add(x):
                proposals.append(Proposal(self.space.decode(x), [], self.generation))
        return proposals

    def adopt(self, results: Sequence[Candidate]) -> None:
        for c in results:
            self.archive.add(self.space.encode(c.genome))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "archive": self.archive.as_list()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.archive = Archive(state.get("archive", []))
