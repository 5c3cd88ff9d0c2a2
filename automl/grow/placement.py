"""Where new classes go in a Tree-CNN: the paper's growth rule on the likelihood matrix.

Roy, Panda & Roy (2018/2020), "Tree-CNN: A Hierarchical Deep Convolutional Neural Network
for Incremental Learning", Algorithm 1, as its official code applies it. The root's outputs
are the tree's children: a *leaf* (one class) or a *branch* (a node CNN over several classes).
The likelihood matrix holds, per root output and new class, the root's average softmax over
that class's samples. New classes are placed one at a time, the one with the highest
likelihood first; with o1 >= o2 >= o3 its three highest likelihoods (by output):

- o1 - o2 > alpha1: the class joins the output it resembles most;
- else o2 - o3 > alpha2: it resembles two outputs; if the second is a leaf and the two fit
  under the child limit together, they merge into one branch with the class, otherwise the
  class joins the one of the two with fewer children;
- else: it resembles none, and becomes a new leaf of the root.

Outputs that hold ``max_children`` classes take no more (their likelihoods are zeroed and the
column renormalised, as the official code does). Pure Python and numpy: no torch here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from automl.core.errors import AutomlError

ALPHA1 = 0.1  # the paper's thresholds (official code: 0.1 and 0.1)
ALPHA2 = 0.1
MAX_CHILDREN = 5  # classes under one branch (the official code's code_max_5; the paper also runs 10 and 20)


@dataclass
class Placement:
    """The root's outputs after a task: each output's classes, which old output it continues
    (None: a new leaf), and how each new class was placed."""

    outputs: list[list[int]]
    sources: list[int | None]
    decisions: list[dict[str, Any]] = field(default_factory=list)

    def received(self, old_outputs: Sequence[Sequence[int]]) -> list[int]:
        """Indices of the outputs whose classes changed (they hold a new or merged class)."""
        return [i for i, (classes, source) in enumerate(zip(self.outputs, self.sources))
                if source is None or list(classes) != list(old_outputs[source])]


def check_thresholds(alpha1: float, alpha2: float, max_children: int) -> None:
    for name, value in (("--alpha1", alpha1), ("--alpha2", alpha2)):
        if not 0 <= value <= 1:
            raise AutomlError(f"{name} must be between 0 and 1 (a difference of likelihoods), got {value}")
    if max_children < 2:
        raise AutomlError(f"--max-children must be at least 2, got {max_children}")


def _usable(likelihood: np.ndarray, outputs: Sequence[Sequence[int]], max_children: int) -> np.ndarray:
    """The likelihood matrix with full outputs zeroed and each column renormalised."""
    usable = np.array(likelihood, dtype=float, copy=True)
    for j, classes in enumerate(outputs):
        if len(classes) >= max_children:
            usable[j, :] = 0.0
    sums = usable.sum(axis=0, keepdims=True)
    return np.divide(usable, sums, out=np.zeros_like(usable), where=sums > 0)


def place(likelihood: np.ndarray, outputs: Sequence[Sequence[int]], new_classes: Sequence[int],
          alpha1: float = ALPHA1, alpha2: float = ALPHA2, max_children: int = MAX_CHILDREN) -> Placement:
    """Place ``new_classes`` (columns of ``likelihood``) under the root's ``outputs`` (rows)."""
    check_thresholds(alpha1, alpha2, max_children)
    if likelihood.shape != (len(outputs), len(new_classes)):
        raise ValueError(f"likelihood is {likelihood.shape}, expected {(len(outputs), len(new_classes))}")
    groups: list[list[int] | None] = [list(c) for c in outputs]
    owner = list(range(len(outputs)))  # old output -> the group that now holds it (merges)
    usable = _usable(likelihood, outputs, max_children)
    pending = list(range(len(new_classes)))
    leaves: list[list[int]] = []
    decisions: list[dict[str, Any]] = []
    while pending:
        column = max(pending, key=lambda m: (usable[:, m].max(initial=0.0), -m))
        pending.remove(column)
        cls = new_classes[column]
        score: dict[int, float] = {}
        for j, value in enumerate(usable[:, column]):
            g = owner[j]
            if groups[g] is not None and len(groups[g]) < max_children:
                score[g] = score.get(g, 0.0) + float(value)
        ranked = sorted(score.items(), key=lambda item: (-item[1], item[0]))[:3]
        ranked += [(-1, 0.0)] * (3 - len(ranked))
        (g1, o1), (g2, o2), (_, o3) = ranked
        decision = {"class": cls, "top": [[g, round(o, 4)] for g, o in ranked if g >= 0]}
        if g1 >= 0 and o1 - o2 > alpha1:
            groups[g1].append(cls)
            decision.update(action="join", output=g1)
        elif g2 >= 0 and o2 - o3 > alpha2:
            if len(outputs[g2]) == 1 and len(groups[g1]) + len(groups[g2]) + 1 <= max_children:
                groups[g1].extend([*groups[g2], cls])
                groups[g2] = None
                owner = [g1 if g == g2 else g for g in owner]
                decision.update(action="merge", output=g1, merged=g2)
            else:
                target = g1 if len(groups[g1]) <= len(groups[g2]) else g2
                groups[target].append(cls)
                decision.update(action="join", output=target)
        else:
            leaves.append([cls])
            decision.update(action="leaf")
        decisions.append(decision)
    return _renumber(groups, owner, leaves, decisions)


def _renumber(groups: list[list[int] | None], owner: list[int], leaves: list[list[int]],
              decisions: list[dict[str, Any]]) -> Placement:
    """Drop merged-away outputs and append the new leaves; decisions name the new output
    indices (``merged`` keeps the old index of the output merged away)."""
    new_index: dict[int, int] = {}
    outputs: list[list[int]] = []
    sources: list[int | None] = []
    for old, classes in enumerate(groups):
        if classes is not None:
            new_index[old] = len(outputs)
            outputs.append(classes)
            sources.append(old)
    for decision in decisions:
        if decision["action"] == "leaf":
            decision["output"] = len(outputs)
            outputs.append(leaves.pop(0))
            sources.append(None)
        else:
            decision["output"] = new_index[owner[decision["output"]]]
    return Placement(outputs, sources, decisions)
