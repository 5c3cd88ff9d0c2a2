"""The shape of a Tree-CNN as data: what a study's ``tree`` attribute and an exported tree
card hold, and the checks that turn a damaged one into one clear line.

A tree is a root CNN whose outputs are the tree's children, each a *leaf* (one class, no
CNN of its own) or a *branch* (a node CNN over its classes). Nodes are named (``root``,
``n1``, ``n2``...) so a node keeps its name while outputs are added or merged around it.
No torch here: the study and the CLI read trees without building them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from automl.core.errors import AutomlError

TREE_FORMAT = "automl-tree"
TREE_VERSION = 1
TREE_ATTR = "tree"  # the study user attribute that holds the current tree
ROOT = "root"


class TreeError(AutomlError):
    """A tree (in a study or an exported folder) is missing, damaged or does not fit the data."""


@dataclass
class Node:
    """One node CNN: its architecture (genes of the tree's space), the trial holding its
    weights, its forward FLOPs, and (for a branch) its classes in output order."""

    genes: dict[str, Any]
    trial: int | None = None
    flops: int = 0
    classes: list[int] = field(default_factory=list)


@dataclass
class Output:
    """One output of the root: its classes and, for a branch, the name of its node."""

    classes: list[int]
    node: str | None = None


@dataclass
class Tree:
    space: str
    dataset: str
    input_shape: list[int]
    class_names: list[str]  # every class of the dataset; outputs name them by index
    nodes: dict[str, Node]
    outputs: list[Output]
    tasks: list[list[int]] = field(default_factory=list)
    thresholds: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def classes(self) -> list[int]:
        """The classes the tree predicts, in the order of its model's outputs."""
        return [c for output in self.outputs for c in output.classes]

    def branches(self) -> list[tuple[int, str]]:
        """(output index, node name) of every branch."""
        return [(j, o.node) for j, o in enumerate(self.outputs) if o.node is not None]

    def new_node_name(self) -> str:
        used = {int(n[1:]) for n in self.nodes if n.startswith("n") and n[1:].isdigit()}
        return f"n{max(used, default=0) + 1}"

    def as_dict(self) -> dict[str, Any]:
        return {"format": TREE_FORMAT, "version": TREE_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Tree:
        """A tree read from JSON, checked: a damaged one raises one TreeError line."""
        if not isinstance(data, dict) or data.get("format") != TREE_FORMAT:
            raise TreeError(f"{where} holds no automl tree")
        try:
            tree = cls(space=str(data["space"]), dataset=str(data["dataset"]),
                       input_shape=[int(v) for v in data["input_shape"]],
                       class_names=[str(n) for n in data["class_names"]],
                       nodes={str(k): Node(**v) for k, v in data["nodes"].items()},
                       outputs=[Output(**o) for o in data["outputs"]],
                       tasks=[[int(c) for c in t] for t in data.get("tasks", [])],
                       thresholds=dict(data.get("thresholds", {})), history=list(data.get("history", [])))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise TreeError(f"{where}: the tree is damaged ({type(error).__name__}: {error})") from None
        tree.check(where)
        return tree

    def check(self, where: str) -> None:
        """Every class once and known, every branch's node present with its classes."""
        classes = self.classes
        if ROOT not in self.nodes or not self.outputs:
            raise TreeError(f"{where}: the tree has no root or no outputs")
        if len(set(classes)) != len(classes) or any(not 0 <= c < len(self.class_names) for c in classes):
            raise TreeError(f"{where}: the tree's classes are repeated or unknown")
        for j, output in enumerate(self.outputs):
            if not output.classes:
                raise TreeError(f"{where}: output {j} of the root has no class")
            if (output.node is None) != (len(output.classes) == 1):
                raise TreeError(f"{where}: output {j} must be a leaf (one class) or a branch with a node")
            if output.node is not None and (output.node not in self.nodes
                                            or self.nodes[output.node].classes != output.classes):
                raise TreeError(f"{where}: branch node {output.node!r} is missing or holds other classes")
