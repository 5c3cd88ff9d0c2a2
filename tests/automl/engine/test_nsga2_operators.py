"""NSGA-II operators and recipes, on their own."""

from __future__ import annotations

import numpy as np
import pytest

from automl import search
from automl.core.errors import AutomlError
from automl.engine.nsga2.crossover import uniform_crossover
from automl.engine.nsga2.duplicates import Archive
from automl.engine.nsga2.mutation import mutate
from automl.engine.nsga2.recipe import DVOLVER, get_recipe
from automl.engine.nsga2.repair import repair_row, space_costs
from automl.engine.nsga2.selection import binary_tournament
from search_spaces.base import NOMINAL, ORDINAL, DictSpace

OPS = ["identity", "sep7x7", "pool3x3", "sep3x3"]
OP_COST = {"identity": 0.0, "sep7x7": 49.0, "pool3x3": 1.0, "sep3x3": 9.0}


class OpSpace(DictSpace):
    """A width (ordinal) and an operation (nominal, listed out of cost order)."""

    def __init__(self) -> None:
        super().__init__({"width": [8, 16, 32], "op": OPS}, name="ops")

    def gene_kinds(self):
        return {"width": ORDINAL, "op": NOMINAL}

    def choice_costs(self, gene):
        if gene == "op":
            return [OP_COST[o] for o in OPS]
        return super().choice_costs(gene)


def cost(genome) -> float:
    return genome["width"] * (1 + OP_COST[genome["op"]])


def test_the_smallest_genome_takes_the_cheapest_nominal_choice():
    assert dict(OpSpace().smallest()) == {"width": 8, "op": "identity"}
    assert dict(DictSpace({"a": [3, 1, 2]}).smallest()) == {"a": 3}  # ordinal: the first choice


def test_repair_moves_nominal_genes_by_cost_not_by_position():
    space = OpSpace()
    n_choices = np.array([3, 4])
    limit = 8 * 10  # width 8 with sep3x3 (cost 9) fits; sep7x7 does not
    violation = lambda x: max(0.0, cost(space.decode(x)) - limit)  # noqa: E731
    costs = space_costs(space)
    reached = []
    for seed in range(30):
        x = repair_row(np.array([0, OPS.index("sep7x7")]), n_choices, violation, np.random.default_rng(seed),
                       costs=costs)
        assert violation(x) <= 0
        reached.append(OPS[x[1]])
    # by list position the only "smaller" choice of sep7x7 is identity (only the 1-in-5 arbitrary
    # moves reach another op, ~3 in 30); by cost every cheaper op is (~19 in 30 land off identity)
    assert sum(op != "identity" for op in reached) >= 12
    assert "sep7x7" not in reached


def test_repair_steps_ordinal_genes_down():
    space = OpSpace()
    costs = space_costs(space)
    x = np.array([2, OPS.index("pool3x3")])  # over the limit by width only
    violation = lambda row: max(0.0, space.decode(row)["width"] - 8)  # noqa: E731
    repaired = repair_row(x, np.array([3, 4]), violation, np.random.default_rng(1), costs=costs)
    assert space.decode(repaired)["width"] == 8


def test_crossover_swaps_genes_with_the_swap_probability():
    rng = np.random.default_rng(0)
    a, b = np.zeros(1000, dtype=int), np.ones(1000, dtype=int)
    child, other = uniform_crossover(a, b, rng, prob=1.0, swap=0.1)
    assert 0.05 < child.mean() < 0.15 and np.all(child + other == 1)
    same, _ = uniform_crossover(a, b, rng, prob=0.0, swap=0.5)
    assert np.array_equal(same, a)


def test_mutation_always_moves_to_a_different_value():
    rng = np.random.default_rng(0)
    x = np.full(2000, 1)
    mutated = mutate(x, np.full(2000, 3), rng, prob=0.1)
    changed = mutated != x
    assert 0.07 < changed.mean() < 0.13
    assert set(mutated[changed]) <= {0, 2}


def test_dominance_tournament_prefers_the_dominating_point():
    F = np.array([[0.0, 0.0], [1.0, 1.0]])
    winners = binary_tournament(F, 50, np.random.default_rng(0), rule="dominance")
    assert set(winners) == {0}


def test_archive_drops_known_and_repeated_rows():
    archive = Archive([[0, 1]])
    assert [archive.add(x) for x in np.array([[0, 1], [1, 1], [1, 1]])] == [False, True, False]
    assert np.array([1, 1]) in archive and archive.as_list() == [[0, 1], [1, 1]]


def test_dvolver_recipe_is_the_reference_one():
    assert (DVOLVER.population, DVOLVER.crossover_prob, DVOLVER.swap_prob, DVOLVER.mutation_prob,
            DVOLVER.tournament, DVOLVER.preselect) == (32, 0.9, 0.1, 0.1, "dominance", 1)
    with pytest.raises(AutomlError, match="unknown recipe"):
        get_recipe("nope")


def test_dvolver_recipe_searches_with_a_population_of_32():
    space = {f"x{i}": list(range(6)) for i in range(6)}
    result = search(space, lambda g: {"f1": g["x0"], "f2": 5 - g["x0"] + g["x1"]}, [("f1", "min"), ("f2", "min")],
                    budget=70, seed=0, recipe="dvolver")
    generations = [c.generation for c in result.candidates]
    assert generations.count(0) == 32 and generations.count(1) == 32 and generations.count(2) == 6
    assert len({c.genome for c in result.candidates}) == 70
    with pytest.raises(AutomlError, match="recipe of the nsga2 strategy"):
        search(space, lambda g: {"f1": 0, "f2": 0}, [("f1", "min"), ("f2", "min")], budget=4,
               strategy="random", recipe="dvolver")
