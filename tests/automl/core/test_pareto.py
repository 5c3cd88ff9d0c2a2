import numpy as np
import pytest

from automl.core.pareto import Objective, as_minimisation, hypervolume, non_dominated


def test_non_dominated_finds_the_front():
    points = np.array([[1, 5], [2, 2], [3, 1], [3, 3], [5, 5]])
    assert sorted(non_dominated(points)) == [0, 1, 2]


def test_maximised_objectives_are_negated():
    objectives = [Objective("accuracy", "max"), Objective("flops", "min")]
    assert as_minimisation([[0.9, 10.0]], objectives).tolist() == [[-0.9, 10.0]]


def test_hypervolume_of_a_known_front():
    assert hypervolume(np.array([[1.0, 1.0]]), [2.0, 2.0]) == 1.0
    assert hypervolume(np.array([[0.0, 1.0], [1.0, 0.0]]), [2.0, 2.0]) == 3.0
    assert hypervolume(np.array([[3.0, 3.0]]), [2.0, 2.0]) == 0.0


def test_normalised_hypervolume_one_rule_for_reports_and_benchmarks():
    """1 - accuracy, other objectives over a given scale or their largest value; (1, 1) box."""
    from automl.core.pareto import DEFAULT_OBJECTIVES, normalise, normalised_hypervolume

    values = [[0.9, 2e6], [0.5, 1e6]]
    assert normalise(values, DEFAULT_OBJECTIVES) == pytest.approx(np.array([[0.1, 1.0], [0.5, 0.5]]))
    assert normalise(values, DEFAULT_OBJECTIVES, {"flops": 4e6}) == pytest.approx(
        np.array([[0.1, 0.5], [0.5, 0.25]]))
    # with flops / 4e6: rectangles (1 - 0.1) x (1 - 0.5) and (1 - 0.5) x (0.5 - 0.25) dominated
    assert normalised_hypervolume(values, DEFAULT_OBJECTIVES, {"flops": 4e6}) == pytest.approx(0.45 + 0.125)
    assert normalised_hypervolume([], DEFAULT_OBJECTIVES) == 0.0
