"""Contract tests over every registered accelerator."""

import json

import pytest
import torch

import accelerators
import search_spaces
from accelerators.base import Accelerator
from automl.train.events import Event
from automl.train.loop import TrainConfig, train
from tests.conftest import SMALLEST_MOBILE

NAMES = accelerators.names()
SHORT = TrainConfig(epochs=0.25, bn_samples=128)  # 5 steps of the 1,280-image slice
KILL_STEP = 1  # subset leaves 2 steps of the 5: step 1 is mid-epoch for every method


@pytest.mark.parametrize("name", NAMES)
def test_declares_an_honest_kind_a_summary_and_its_paper(name):
    cls = accelerators.get(name)
    assert cls.kind in accelerators.KINDS and cls.summary and cls.paper
    instance = cls()
    for key, option in cls.options.items():
        assert option.check(option.default), (name, key)
    assert accelerators.parse(instance.spec())[0].values == instance.values


@pytest.mark.parametrize("name", NAMES)
def test_declares_ddp_safety_with_a_reason_and_round_trips_its_state(name):
    cls = accelerators.get(name)
    assert isinstance(cls.ddp_safe, bool) and len(cls.ddp_note) > 20, name
    assert isinstance(cls.export_safe, bool) and (cls.export_safe or len(cls.export_note) > 20), name
    instance = cls()
    saved = json.loads(json.dumps(instance.state_dict()))  # plain values: no pickle needed
    fresh = cls()
    fresh.load_state_dict(saved)
    assert fresh.state_dict() == saved


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


class Killer(Accelerator):
    """Raises at BATCH of one step, after every other method's BATCH work: a candidate that
    dies mid-epoch with autocast entered, gradients switched off, hooks installed."""

    name = "killer"
    kind = "fidelity"
    order = 1000
    events = frozenset({Event.BATCH})

    def __init__(self, step: int) -> None:
        super().__init__()
        self.step = step

    def apply(self, event, state):
        if state.step == self.step:
            raise RuntimeError(f"killed at step {state.step}")


_ALONE: dict[str, object] = {}


def _alone(build, data):
    """A plain run of a fresh model, computed once: what the next candidate must reproduce."""
    if "result" not in _ALONE:
        _ALONE["result"] = train(build(), data, SHORT, seed=7)
    return _ALONE["result"]


def _assert_left_clean(model, reference):
    assert not torch.is_autocast_enabled("cpu") and torch.is_grad_enabled()
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks, module
        assert "forward" not in module.__dict__, module
    assert all(p.requires_grad for p in model.parameters())
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert shapes == {k: v.shape for k, v in reference.state_dict().items()}


@pytest.mark.parametrize("name", NAMES)
def test_a_candidate_killed_mid_epoch_leaves_nothing_for_the_next(name, small_mnist, tiny_model):
    """Kill a candidate inside a hook; its model is left as built (no hook, swapped forward,
    frozen flag, extra parameter) and the next candidate, trained plainly, reproduces a fresh
    run alone bit for bit (no autocast context or other global state left behind)."""
    alone = _alone(tiny_model, small_mnist)
    victim = tiny_model()
    with pytest.raises(RuntimeError, match=f"killed at step {KILL_STEP}"):
        train(victim, small_mnist, SHORT, seed=1, accelerators=[*accelerators.parse(name), Killer(KILL_STEP)])
    _assert_left_clean(victim, tiny_model())
    after = train(tiny_model(), small_mnist, SHORT, seed=7)
    assert after.accuracy == alone.accuracy and after.loss == alone.loss
    expected = alone.model.state_dict()
    assert all(torch.equal(value, expected[key]) for key, value in after.model.state_dict().items())
