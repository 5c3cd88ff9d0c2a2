"""The settings of the NSGA-II strategy: our default and Dvolver's reference recipe.

``dvolver`` is the recipe of Dvolver's reference code (guillaume-michel/dvolver, server.py:
DEAP's selTournamentDCD, mate/mutate with indpb 0.1, cxpb 0.9, selNSGA2, population 32):
population 32, crossover with probability 0.9 swapping each gene with probability 0.1, each
gene mutated with probability 0.1 to a different value, binary tournament by Pareto dominance
then crowding distance, NSGA-II survival, a uniformly random first generation, no surrogate.
Two things follow from this engine rather than the recipe: a child identical to a genome
already asked for is replaced by a new one (Dvolver answers it from its cache and lets it take
a population slot), and under --max-flops/--max-params children are repaired (Dvolver has no
constraints).

``nsga2`` (the default) is Dvolver-inspired and deviates where `automl bench engine` showed
small budgets gain: the population follows the budget (a twentieth of it, 8 to 64, unless
``--population`` is given); crossover swaps each gene with probability 0.5; each gene mutates
with probability 1/n_genes; the tournament compares non-dominated rank before crowding; the
first generation spreads every gene's choices evenly; and a ridge surrogate picks 1 child in
``--preselect`` (8) proposed. Both never evaluate a genome twice (duplicates are dropped
against everything the study has asked for) and repair constraint violations before training.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from automl.core.errors import UnknownNameError


@dataclass(frozen=True)
class Recipe:
    """How NSGA-II proposes children; ``None`` means "follow the search's settings"."""

    name: str
    population: int | None
    crossover_prob: float
    swap_prob: float
    mutation_prob: float | None  # None: 1 / number of genes
    tournament: str  # "rank" (then crowding) or "dominance" (then crowding)
    sampling: str  # "balanced" or "uniform"
    preselect: int | None  # children proposed per child evaluated; None: the search's setting

    def as_dict(self) -> dict:
        return asdict(self)


NSGA2 = Recipe("nsga2", population=None, crossover_prob=0.9, swap_prob=0.5, mutation_prob=None,
               tournament="rank", sampling="balanced", preselect=None)
DVOLVER = Recipe("dvolver", population=32, crossover_prob=0.9, swap_prob=0.1, mutation_prob=0.1,
                 tournament="dominance", sampling="uniform", preselect=1)
RECIPES = {r.name: r for r in (NSGA2, DVOLVER)}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise UnknownNameError(f"unknown recipe {name!r} (known: {', '.join(RECIPES)})")
    return RECIPES[name]
