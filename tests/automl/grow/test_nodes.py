"""The parts a Tree-CNN trains from: the root's features, computed once per sample and reused
by the likelihood matrix and every later output layer, and that output layer's closed-form fit."""

from __future__ import annotations

import copy

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


def test_the_temperature_found_is_the_one_the_labels_were_drawn_with():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(20000, 4, generator=generator, dtype=torch.float64)
    labels = torch.multinomial(torch.softmax(2.5 * logits, dim=1), 1, generator=generator).squeeze(1)
    temperature, steps = nodes.calibrate_temperature(logits, labels)
    assert abs(temperature - 2.5) < 0.1 and steps < 20


def test_the_closed_form_output_layer_separates_the_classes_better_than_a_few_sgd_epochs(small_mnist):
    """On the same frozen features (an untrained root's: weak ones) the closed form fits the
    training samples at least as well as three SGD epochs, and costs one weight update per
    weight and sample (plus the temperature's per step)."""
    from automl.train.loop import TrainConfig

    root = _root(small_mnist)
    classes = small_mnist.train.y.unique().tolist()
    features = nodes.FeatureCache(small_mnist.train, torch.device("cpu")).of(root, classes)
    sources = list(range(small_mnist.num_classes))
    fitted = nodes.fit_output_layer(copy.deepcopy(root), small_mnist, sources, 0, torch.device("cpu"),
                                    features=features)
    trained = nodes.train_output_layer(copy.deepcopy(root), small_mnist, sources, TrainConfig(epochs=3, lr=0.3), 0,
                                       torch.device("cpu"), features=features)

    def fit_accuracy(model):
        layer = nodes.output_layer(model)[2]
        with torch.no_grad():
            return float((layer(features).argmax(dim=1) == small_mnist.train.y).float().mean())

    assert fit_accuracy(fitted.model) >= fit_accuracy(trained.model)
    layer_weights = small_mnist.num_classes * (features.shape[1] + 1)
    assert fitted.samples == len(small_mnist.train)
    assert layer_weights < fitted.weights_updated <= layer_weights + 20
