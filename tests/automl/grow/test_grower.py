"""The grower trains each part of the tree with its own recipe: the root's output layer (a
linear layer on fixed features) at its own learning rate, every network at the shared one."""

from __future__ import annotations

import torch

from automl.grow import grower, nodes
from automl.grow.grower import Grower, GrowSettings, RootSource

ROOT = "stem8-ir_r1_k3_e1_c8-ir_r1_k3_e1_c16-ir_r1_k3_e1_c24-ir_r1_k3_e3_c32-ir_r1_k3_e3_c48-head128"


def test_the_root_output_layer_trains_at_its_own_learning_rate(small_mnist, monkeypatch):
    import search_spaces

    space = search_spaces.get("mobile")
    genome = space.parse(ROOT)
    torch.manual_seed(0)
    model = space.build(genome, small_mnist.input_shape, small_mnist.num_classes)
    source = RootSource(space, genome, model.state_dict(), list(small_mnist.class_names),
                        small_mnist.input_shape, "random init")
    settings = GrowSettings(root_epochs=0.2, epochs=0.2, head_epochs=0.5, head_lr=0.25, lr=0.05, leaf_budget=1,
                            leaf_epochs=0.2, leaf_warm_epochs=0.1)
    seen: dict[str, list[float]] = {"head": [], "whole": []}

    def spy(name, real):
        def call(*args, **kwargs):
            seen[name].append(args[3].lr if name == "head" else args[2].lr)
            return real(*args, **kwargs)
        return call

    monkeypatch.setattr(grower.nodes, "train_output_layer", spy("head", nodes.train_output_layer))
    monkeypatch.setattr(grower.nodes, "train_whole", spy("whole", nodes.train_whole))
    tree = Grower(small_mnist, [[0, 1], [2, 3]], source, settings, torch.device("cpu"))
    tree.run()
    assert seen["head"] == [0.25]  # task 2's root output layer
    assert seen["whole"] and set(seen["whole"]) == {0.05}  # the root on task 1 (and any branch retrained)
