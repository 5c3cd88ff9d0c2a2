"""Class-incremental streams: a dataset's classes arriving in tasks, and class subsets.

Incremental mode (``automl grow``) sees a dataset as a sequence of tasks, each bringing
classes never seen before: ``0-4/5,6/7-9`` is three tasks (classes 0 to 4, then 5 and 6,
then 7 to 9). A token is a class index or a class name. Every node of a Tree-CNN trains on
a subset of the classes with labels of its own (a branch's children, the root's outputs):
:func:`relabel` cuts such a dataset out of the full one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from automl.core.errors import DataError
from automl.data.datasets import Dataset, Split


def _class_index(token: str, class_names: Sequence[str]) -> int:
    token = token.strip()
    if token in class_names:
        return list(class_names).index(token)
    if token.isdigit() and int(token) < len(class_names):
        return int(token)
    raise DataError(f"--tasks: unknown class {token!r} (the dataset has {len(class_names)} classes: "
                    f"indices 0-{len(class_names) - 1} or names such as {class_names[0]!r})")


def _task_classes(text: str, class_names: Sequence[str]) -> list[int]:
    classes: list[int] = []
    for part in text.split(","):
        if not part.strip():
            raise DataError(f"--tasks: empty class in task {text!r}")
        first, dash, last = part.partition("-")
        if dash and part.strip() not in class_names:
            lo, hi = _class_index(first, class_names), _class_index(last, class_names)
            if hi < lo:
                raise DataError(f"--tasks: range {part.strip()!r} runs backwards")
            classes.extend(range(lo, hi + 1))
        else:
            classes.append(_class_index(part, class_names))
    return classes


def parse_tasks(text: str, class_names: Sequence[str]) -> list[list[int]]:
    """``"0-4/5,6/7-9"`` -> [[0, 1, 2, 3, 4], [5, 6], [7, 8, 9]], checked: every task names
    known classes, no class appears twice, and there are at least two tasks."""
    if not text or not text.strip():
        raise DataError("--tasks is empty (e.g. 0-4/5,6/7-9)")
    tasks: list[list[int]] = []
    seen: dict[int, int] = {}
    for number, part in enumerate(text.split("/"), start=1):
        if not part.strip():
            raise DataError(f"--tasks {text!r}: task {number} is empty")
        classes = _task_classes(part, class_names)
        for cls in classes:
            if cls in seen:
                where = "twice in task" if seen[cls] == number else f"in task {seen[cls]} and task"
                raise DataError(f"--tasks {text!r}: class {class_names[cls]!r} appears {where} {number}")
            seen[cls] = number
        tasks.append(classes)
    if len(tasks) < 2:
        raise DataError(f"--tasks {text!r} has one task; incremental learning needs at least two (e.g. 0-4/5-9)")
    return tasks


def _subset(split: Split, mapping: Mapping[int, int]) -> Split:
    if split.x is None:
        raise DataError("incremental mode needs a dataset held in memory (this one is streamed from disk)")
    lookup = torch.full((int(split.y.max()) + 1 if len(split.y) else 1,), -1, dtype=torch.long)
    for old, new in mapping.items():
        if old < len(lookup):
            lookup[old] = new
    labels = lookup.to(split.y.device)[split.y]
    keep = labels >= 0
    return Split(x=split.x[keep], y=labels[keep])


def relabel(data: Dataset, mapping: Mapping[int, int], names: Sequence[str] | None = None) -> Dataset:
    """The samples of ``data`` whose class is a key of ``mapping``, labelled ``mapping[class]``.

    Several classes may map to one label (a Tree-CNN branch seen from the root), and labels
    may go unused (new classes only, at their places among all classes seen). ``names`` name
    the labels; by default the classes of each label joined with ``+``."""
    if names is None:
        names = ["+".join(data.class_names[c] for c in mapping if mapping[c] == label)
                 for label in range(max(mapping.values()) + 1)]
    if any(not 0 <= label < len(names) for label in mapping.values()):
        raise ValueError(f"labels must lie in 0..{len(names) - 1}, got {sorted(set(mapping.values()))}")
    return Dataset(data.name, _subset(data.train, mapping), _subset(data.val, mapping), _subset(data.test, mapping),
                   data.input_shape, list(names), data.mean, data.std, dict(data.info))


def class_subset(data: Dataset, classes: Sequence[int]) -> Dataset:
    """The samples of ``classes``, labelled by their position in ``classes``."""
    return relabel(data, {c: i for i, c in enumerate(classes)}, [data.class_names[c] for c in classes])
