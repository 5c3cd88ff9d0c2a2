"""Contract tests over every registered accelerator."""

import pytest
import torch

import accelerators
import search_spaces
from automl.train.loop import TrainConfig, train
from tests.conftest import SMALLEST_MOBILE

NAMES = accelerators.names()


@pytest.mark.parametrize("name", NAMES)
def test_declares_an_honest_kind_a_summary_and_its_paper(name):
    cls = accelerators.get(name)
    assert cls.kind in accelerators.KINDS and cls.summary and cls.paper
    instance = cls()
    for key, option in cls.options.items():
        assert option.check(option.default), (name, key)
    assert accelerators.parse(instance.spec())[0].values == instance.values


@pytest.mark.parametrize("name", NAMES)
def test_a_small_model_still_learns(name, small_mnist):
    space = search_spaces.get("mobile")
    torch.manual_seed(0)
    model = space.build(space.parse(SMALLEST_MOBILE), small_mnist.input_shape, small_mnist.num_classes)
    result = train(model, small_mnist, TrainConfig(epochs=2), seed=0, accelerators=accelerators.parse(name))
    assert result.history[-1]["loss"] < result.history[0]["loss"], result.history
    assert result.accuracy > 0.3, result.accuracy  # chance is 0.1
    assert name in result.accelerators
    assert all(not m._forward_hooks and "forward" not in m.__dict__ for m in result.model.modules())
