"""The tree as a module: hard routing, path probabilities, and its structure's checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from automl.grow.model import FLOOR, TreeModel
from automl.grow.structure import Node, Output, Tree, TreeError


class Fixed(nn.Module):
    """Logits read off the input's first features (so tests choose the routes)."""

    def __init__(self, outputs: int) -> None:
        super().__init__()
        self.outputs = outputs
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return self.scale * x.flatten(1)[:, :self.outputs]


def tree() -> Tree:
    nodes = {"root": Node({}), "n1": Node({}, classes=[4, 1])}
    return Tree("mobile", "d", [1, 1, 3], [str(c) for c in range(5)], nodes,
                [Output([0]), Output([4, 1], "n1"), Output([2])])


def model() -> TreeModel:
    return TreeModel(tree(), Fixed(3), {"n1": Fixed(2)}).eval()


def test_each_input_takes_one_path_and_scores_its_path_probability():
    x = torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, -1.0], [0.0, 0.0, 5.0]]).view(3, 1, 1, 3)
    scores = model()(x)
    assert tree().classes == [0, 4, 1, 2]
    assert scores.argmax(dim=1).tolist() == [0, 2, 3]  # class 0; the branch, which picks class 1; class 2
    root = torch.log_softmax(x.flatten(1), dim=1)
    branch = torch.log_softmax(x.flatten(1)[1, :2], dim=0)
    assert torch.allclose(scores[1, 1:3], root[1, 1] + branch)
    assert scores[1, 0] == FLOOR and scores[1, 3] == FLOOR and scores[0, 1:].eq(FLOOR).all()
    assert (scores.exp().sum(dim=1) <= 1 + 1e-6).all()


def test_traced_routing_is_a_mask_with_the_same_outputs(monkeypatch):
    x = torch.randn(16, 1, 1, 3, generator=torch.Generator().manual_seed(0))
    eager = model()(x)
    monkeypatch.setattr(torch.jit, "is_tracing", lambda: True)
    assert torch.equal(model()(x), eager)


def test_damaged_trees_are_refused_in_one_line():
    good = tree().as_dict()
    assert Tree.from_dict(good, "here").classes == [0, 4, 1, 2]
    for damage in (lambda d: d["outputs"].append({"classes": [0], "node": None}),
                   lambda d: d["outputs"][1].update(node="n9"),
                   lambda d: d["outputs"][0].update(classes=[7]),
                   lambda d: d.pop("nodes"),
                   lambda d: d.update(format="other")):
        data = tree().as_dict()
        damage(data)
        with pytest.raises(TreeError) as error:
            Tree.from_dict(data, "here")
        assert "\n" not in str(error.value)
