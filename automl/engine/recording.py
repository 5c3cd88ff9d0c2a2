"""Reading trials back as candidates, and choosing the trained trial a child inherits from."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from optuna.trial import FrozenTrial, TrialState

from automl.core import attrs
from automl.core.genome import Genome
from automl.core.pareto import Objective
from automl.engine.candidates import Candidate
from search_spaces.base import SearchSpace


def candidate_from_trial(genome: Genome, trial: FrozenTrial, objectives: Sequence[Objective],
                         generation: int, reused: bool = True) -> Candidate:
    """The candidate a finished trial records (values of a PRUNED trial are its partial ones)."""
    values = None
    if trial.state == TrialState.COMPLETE:
        values = {o.name: float(v) for o, v in zip(objectives, trial.values)}
    elif trial.state == TrialState.PRUNED:
        values = {o.name: float(trial.user_attrs[attrs.PARTIAL_VALUES][o.name]) for o in objectives}
    return Candidate(genome, values, trial.number, generation, list(trial.user_attrs.get(attrs.PARENTS, [])),
                     failed=trial.user_attrs.get(attrs.FAIL_REASON) if trial.state == TrialState.FAIL else None,
                     reused=reused, attrs=dict(trial.user_attrs), pruned=trial.state == TrialState.PRUNED)


def genome_of(space: SearchSpace, trial: FrozenTrial) -> Genome | None:
    """The trial's genome from its params (None when they are not a genome of the space)."""
    genes = space.genes()
    if not all(g in trial.params for g in genes):
        return None
    try:
        return space.make({g: trial.params[g] for g in genes})
    except Exception:  # a param outside today's choices: the trial cannot be reused
        return None


def warm_parent(space: SearchSpace, genome: Genome, parents: list[int],
                finished: Sequence[FrozenTrial]) -> FrozenTrial | None:
    """The trained trial a child inherits from: the closer of its NSGA-II parents, else the
    nearest trained genome (fewest genes changed, then L1 distance between choice indices,
    then lower trial). None when even that one differs in more than a quarter of the genes:
    so distant a parent helps less than training from scratch."""
    trained = [t for t in finished if t.state == TrialState.COMPLETE and t.user_attrs.get(attrs.WEIGHTS_ARTIFACT)]
    x = space.encode(genome)
    genes = list(space.genes())

    def distance(trial: FrozenTrial) -> tuple[int, int, int]:
        other = space.encode(Genome(space.name, tuple((g, trial.params[g]) for g in genes)))
        return int((x != other).sum()), int(np.abs(x - other).sum()), trial.number

    limit = max(2, len(genes) // 4)
    near = [t for t in trained if distance(t)[0] <= limit]
    own = [t for t in near if t.number in set(parents)]
    pool = own or near
    return min(pool, key=distance) if pool else None
