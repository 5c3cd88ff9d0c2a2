"""The Tree-CNN growth rule on hand-made likelihood matrices."""

from __future__ import annotations

import numpy as np
import pytest

from automl.core.errors import AutomlError
from automl.grow.placement import place


def column(*values: float) -> np.ndarray:
    return np.array(values, dtype=float).reshape(-1, 1)


def test_a_clear_favourite_is_joined():
    placed = place(column(0.7, 0.2, 0.1), [[0], [1], [2]], [5])
    assert placed.outputs == [[0, 5], [1], [2]]
    assert placed.sources == [0, 1, 2]
    assert placed.decisions[0]["action"] == "join" and placed.received([[0], [1], [2]]) == [0]


def test_two_close_favourites_merge_when_the_second_is_a_leaf():
    placed = place(column(0.45, 0.40, 0.15), [[0], [1], [2]], [5])
    assert placed.outputs == [[0, 1, 5], [2]]
    assert placed.sources == [0, 2]
    assert placed.decisions[0] == {"class": 5, "top": [[0, 0.45], [1, 0.4], [2, 0.15]], "action": "merge",
                                   "output": 0, "merged": 1}


def test_no_merge_of_a_branch_then_the_smaller_of_the_two_gets_the_class():
    placed = place(column(0.45, 0.40, 0.15), [[0], [1, 3], [2]], [5])
    assert placed.outputs == [[0, 5], [1, 3], [2]]
    assert placed.decisions[0]["action"] == "join"


def test_no_favourite_makes_a_new_leaf():
    placed = place(column(0.35, 0.33, 0.32), [[0], [1], [2]], [5])
    assert placed.outputs == [[0], [1], [2], [5]]
    assert placed.sources == [0, 1, 2, None]
    assert placed.decisions[0]["action"] == "leaf" and placed.decisions[0]["output"] == 3


def test_full_branches_take_no_more_classes_and_the_column_is_renormalised():
    # output 0 is full (2 of 2): its likelihood is dropped, so output 1 leads 0.67 to 0.33
    placed = place(column(0.7, 0.2, 0.1), [[0, 3], [1], [2]], [5], max_children=2)
    assert placed.outputs == [[0, 3], [1, 5], [2]]


def test_the_most_confident_class_is_placed_first_and_limits_apply_within_a_task():
    likelihood = np.array([[0.6, 0.9], [0.3, 0.05], [0.1, 0.05]])
    placed = place(likelihood, [[0], [1], [2]], [5, 6], max_children=2)
    assert [d["class"] for d in placed.decisions] == [6, 5]  # 6 is surer of output 0
    assert placed.outputs == [[0, 6], [1, 5], [2]]  # output 0 is then full: 5 goes to its next choice


def test_merged_outputs_renumber_the_later_decisions():
    likelihood = np.array([[0.45, 0.1], [0.40, 0.1], [0.15, 0.8]])
    placed = place(likelihood, [[0], [1], [2]], [5, 6])
    assert placed.outputs == [[0, 1, 5], [2, 6]]
    assert {d["class"]: d["output"] for d in placed.decisions} == {5: 0, 6: 1}


@pytest.mark.parametrize("alpha1, alpha2, limit", [(-0.1, 0.1, 5), (0.1, 1.5, 5), (0.1, 0.1, 1)])
def test_bad_thresholds_are_user_errors(alpha1, alpha2, limit):
    with pytest.raises(AutomlError):
        place(column(0.5, 0.5), [[0], [1]], [5], alpha1, alpha2, limit)
