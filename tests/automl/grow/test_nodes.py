"""The parts a Tree-CNN trains from: the root's features, computed once per sample and reused
by the likelihood matrix and every later output layer, and that output layer's closed-form fit."""

from __future__ import annotations

import numpy as np
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


def test_a_separable_problem_ends_at_a_finite_temperature():
    labels = torch.arange(300) % 3
    logits = torch.nn.functional.one_hot(labels, 3).to(torch.float64)  # every sample right, by a margin of 1
    temperature, steps = nodes.calibrate_temperature(logits, labels)
    # no finite optimum: it stops where the gradient vanishes (softmax a hard vote), within the limit
    assert 10 <= temperature <= nodes.MAX_TEMPERATURE and steps < 20


def _features_of_varied_scale(data, dimensions: int = 16) -> torch.Tensor:
    """Class means plus noise, each feature shifted and scaled differently (as real features are)."""
    generator = torch.Generator().manual_seed(0)
    means = torch.randn(data.num_classes, dimensions, generator=generator)
    noisy = means[data.train.y] + 1.5 * torch.randn(len(data.train), dimensions, generator=generator)
    return noisy * torch.linspace(0.3, 3.0, dimensions) + torch.linspace(-5.0, 5.0, dimensions)


def test_the_closed_form_layer_is_the_ridge_solution_in_raw_coordinates(small_mnist):
    """The fitted layer, its temperature divided out, gives the logits of an independent ridge
    solve on the standardised features; it costs one weight update per weight and sample (plus
    the temperature's, one per step)."""
    root = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 16), torch.nn.Linear(16, 2))
    features = _features_of_varied_scale(small_mnist)
    sources = [None] * small_mnist.num_classes
    fitted = nodes.fit_output_layer(root, small_mnist, sources, torch.device("cpu"), features=features)
    layer = nodes.output_layer(fitted.model)[2]
    x = features.double()
    z = torch.cat([(x - x.mean(0)) / x.std(0), torch.ones(len(x), 1, dtype=x.dtype)], dim=1).numpy()
    penalty = nodes.RIDGE * np.eye(z.shape[1])
    penalty[-1, -1] = 0.0
    targets = np.eye(small_mnist.num_classes)[small_mnist.train.y.numpy()]
    expected = z @ np.linalg.solve(z.T @ z + penalty, z.T @ targets)
    with torch.no_grad():
        logits = layer(features).double().numpy()
    ratio = logits.std() / expected.std()  # the temperature folded into the weights
    assert 0 < ratio <= nodes.MAX_TEMPERATURE
    assert np.abs(logits / ratio - expected).max() < 1e-4 * np.abs(expected).max()
    assert fitted.samples == len(small_mnist.train)
    weights = small_mnist.num_classes * (features.shape[1] + 1)
    assert weights < fitted.weights_updated <= weights + 20


def test_leave_one_out_predictions_are_those_of_a_fit_without_the_sample():
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(40, 5, generator=generator, dtype=torch.float64) * torch.tensor([1.0, 2, 3, 4, 5])
    targets = torch.nn.functional.one_hot(torch.randint(0, 3, (40,), generator=generator), 3).double()
    _, _, held_out = nodes.ridge_fit(x, targets)
    for i in (0, 17, 39):
        keep = torch.arange(40) != i
        # the standardisation is the full data's, as in the closed form: refit with it fixed
        mean, scale = x.mean(0), x.std(0)
        z = torch.cat([(x - mean) / scale, torch.ones(40, 1, dtype=x.dtype)], dim=1)
        penalty = nodes.RIDGE * torch.eye(6, dtype=x.dtype)
        penalty[-1, -1] = 0.0
        solution = torch.linalg.solve(z[keep].T @ z[keep] + penalty, z[keep].T @ targets[keep])
        assert torch.allclose(held_out[i], z[i] @ solution, atol=1e-8)
