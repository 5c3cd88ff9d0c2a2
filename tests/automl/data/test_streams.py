"""Class-incremental streams: --tasks parsing and class subsets."""

from __future__ import annotations

import pytest
import torch

from automl.core.errors import DataError
from automl.data import Dataset, Split
from automl.data.streams import class_subset, parse_tasks, relabel

DIGITS = [str(d) for d in range(10)]


def test_tasks_are_ranges_lists_and_names():
    assert parse_tasks("0-4/5,6/7-9", DIGITS) == [[0, 1, 2, 3, 4], [5, 6], [7, 8, 9]]
    assert parse_tasks("cat/dog,t-shirt", ["dog", "cat", "t-shirt"]) == [[1], [0, 2]]


@pytest.mark.parametrize("text, words", [
    ("0-4/4-6", "appears in task 1 and task 2"),
    ("0,0/1", "appears twice in task 1"),
    ("0-4/12", "unknown class '12'"),
    ("0-4/bird", "unknown class 'bird'"),
    ("0-4", "one task"),
    ("0-4//5", "task 2 is empty"),
    ("4-0/5", "runs backwards"),
    ("", "empty"),
])
def test_bad_streams_are_one_line_user_errors(text, words):
    with pytest.raises(DataError, match=words) as error:
        parse_tasks(text, DIGITS)
    assert "\n" not in str(error.value)


def _tiny() -> Dataset:
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    split = Split(x=torch.arange(8, dtype=torch.float32).view(8, 1, 1, 1), y=y)
    return Dataset("tiny", split, split, split, (1, 1, 1), ["a", "b", "c", "d"], (0.0,), (1.0,))


def test_subsets_keep_only_their_classes_with_new_labels():
    part = class_subset(_tiny(), [3, 1])
    assert part.class_names == ["d", "b"]
    assert part.train.y.tolist() == [1, 0, 1, 0]
    assert part.train.x.flatten().tolist() == [1.0, 3.0, 5.0, 7.0]


def test_relabel_groups_classes_and_allows_unused_labels():
    grouped = relabel(_tiny(), {0: 0, 2: 0, 3: 1})
    assert grouped.class_names == ["a+c", "d"] and grouped.train.y.tolist() == [0, 0, 1, 0, 0, 1]
    sparse = relabel(_tiny(), {3: 2}, ["a", "b", "d"])
    assert sparse.num_classes == 3 and sparse.train.y.tolist() == [2, 2]
