"""The parts a Tree-CNN trains from: the root's features, computed once per sample and reused
by the likelihood matrix and every later output layer."""

from __future__ import annotations

import torch

import search_spaces
from automl.grow import nodes
from tests.conftest import GROW_ROOT


def _root(data):
    space = search_spaces.get("mobile")
    torch.manual_seed(0)
    return space.build(space.parse(GROW_ROOT), data.input_shape, data.num_classes).eval()


def _counting_forwards(model):
    calls = {"samples": 0}
    model.register_forward_pre_hook(lambda _, args: calls.__setitem__("samples", calls["samples"] + len(args[0])))
    return calls


def test_the_feature_cache_computes_each_sample_once_and_matches_a_fresh_forward_pass(small_mnist):
    root = _root(small_mnist)
    calls = _counting_forwards(root)
    cache = nodes.FeatureCache(small_mnist.train, torch.device("cpu"))
    y = small_mnist.train.y
    first = cache.of(root, [0, 1])
    assert calls["samples"] == int(torch.isin(y, torch.tensor([0, 1])).sum())
    both = cache.of(root, [1, 0, 2])  # a later task: only class 2's samples are new
    assert calls["samples"] == int(torch.isin(y, torch.tensor([0, 1, 2])).sum())
    cache.of(root, [2])
    assert calls["samples"] == int(torch.isin(y, torch.tensor([0, 1, 2])).sum())

    _, _, layer = nodes.output_layer(root)
    keep = torch.isin(y, torch.tensor([0, 1, 2]))
    fresh = nodes._features(root, layer, type(small_mnist.train)(x=small_mnist.train.x[keep], y=y[keep]),
                            torch.device("cpu"))
    assert torch.allclose(both, fresh, atol=1e-5)  # in the split's order, as relabel keeps it
    assert torch.equal(first, both[torch.isin(y[keep], torch.tensor([0, 1]))])


def test_the_likelihood_matrix_is_the_mean_softmax_of_each_new_class(small_mnist):
    root = _root(small_mnist)
    cache = nodes.FeatureCache(small_mnist.train, torch.device("cpu"))
    present = small_mnist.train.y.unique().tolist()
    matrix = nodes.likelihood(root, cache, present[:2], per_class=50)
    assert matrix.shape == (small_mnist.num_classes, 2)
    with torch.no_grad():
        x = small_mnist.train.x[small_mnist.train.y == present[1]][:50]
        expected = torch.softmax(root(x), dim=1).mean(dim=0).numpy()
    assert abs(matrix[:, 1] - expected).max() < 1e-5
    assert abs(matrix.sum(axis=0) - 1).max() < 1e-5
