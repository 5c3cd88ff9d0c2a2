import numpy as np

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
