"""The grower trains each part of the tree with its own recipe: the root's output layer (a
linear layer on fixed features) in closed form or at its own learning rate, every network at
the shared one."""

from __future__ import annotations

import torch

from automl.grow import grower, nodes
from automl.grow.grower import Grower, GrowSettings
from tests.conftest import untrained_root


def test_the_root_output_layer_trains_at_its_own_learning_rate(small_mnist, monkeypatch):
    settings = GrowSettings(root_epochs=0.2, epochs=0.2, head_fit="sgd", head_epochs=0.5, head_lr=0.25, lr=0.05,
                            leaf_budget=1, leaf_epochs=0.2, leaf_warm_epochs=0.1)
    seen: dict[str, list[float]] = {"head": [], "whole": []}

    def spy(name, real):
        def call(*args, **kwargs):
            seen[name].append(args[3].lr if name == "head" else args[2].lr)
            return real(*args, **kwargs)
        return call

    monkeypatch.setattr(grower.nodes, "train_output_layer", spy("head", nodes.train_output_layer))
    monkeypatch.setattr(grower.nodes, "train_whole", spy("whole", nodes.train_whole))
    tree = Grower(small_mnist, [[0, 1], [2, 3]], untrained_root(small_mnist), settings, torch.device("cpu"))
    tree.run()
    assert seen["head"] == [0.25]  # task 2's root output layer
    assert seen["whole"] and set(seen["whole"]) == {0.05}  # the root on task 1 (and any branch retrained)


def test_the_root_output_layer_is_fitted_in_closed_form_by_default(small_mnist, monkeypatch):
    settings = GrowSettings(root_epochs=0.2, epochs=0.2, leaf_budget=1, leaf_epochs=0.2, leaf_warm_epochs=0.1)
    calls = {"ridge": 0, "sgd": 0}

    def count(name, real):
        def call(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)
        return call

    monkeypatch.setattr(grower.nodes, "fit_output_layer", count("ridge", nodes.fit_output_layer))
    monkeypatch.setattr(grower.nodes, "train_output_layer", count("sgd", nodes.train_output_layer))
    present = small_mnist.train.y.unique().tolist()
    stream = [present[:2], present[2:3], present[3:4]]  # the slice holds 4 classes
    tree = Grower(small_mnist, stream, untrained_root(small_mnist), settings, torch.device("cpu"))
    reports = tree.run()
    assert calls == {"ridge": 2, "sgd": 0}  # tasks 2 and 3
    head = [t for r in reports[1:] for t in r["trained"] if t["role"] == "root-output-layer"]
    assert len(head) == 2 and all(t["effort"] > 0 for t in head)
