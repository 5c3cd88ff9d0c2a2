"""A mini-batch changed between epochs (state.batch_size, state.lr_scale): the next epoch draws
batches of the new size, the budget stays in samples, the schedule keeps its shape in samples
at the scaled learning rate, and the optimizer's momentum is carried into the rebuilt one."""

import pytest
import torch

import search_spaces
from automl.train.events import Event
from automl.train.loop import TrainConfig, train
from tests.conftest import SMALLEST_MOBILE


def _model(data):
    space = search_spaces.get("mobile")
    torch.manual_seed(0)
    return space.build(space.parse(SMALLEST_MOBILE), data.input_shape, data.num_classes)


class Grow:
    """Sets the mini-batch (and lr scale) at the end of the first epoch; records every step."""

    name = "grow"

    def __init__(self, batch=None, scale=1.0):
        self.batch, self.scale = batch, scale
        self.steps = []  # (epoch, batch length, lr of this step, schedule position before it)
        self.momentum = {}
        self.end = None

    def match(self, event, state):
        return event in (Event.LOSS, Event.EPOCH_END, Event.EPOCH_START, Event.FIT_END)

    def apply(self, event, state):
        first = next(state.model.parameters())
        if event is Event.LOSS:
            self.steps.append((state.epoch, len(state.targets), state.optimizer.param_groups[0]["lr"],
                               state.schedule_position))
        elif event is Event.EPOCH_END and state.epoch == 0:
            self.momentum["before"] = state.optimizer.state[first]["momentum_buffer"].clone()
            if self.batch is not None:
                state.batch_size, state.lr_scale = self.batch, self.scale
        elif event is Event.EPOCH_START and state.epoch == 1:
            self.momentum["after"] = state.optimizer.state[first]["momentum_buffer"].clone()
        elif event is Event.FIT_END:
            self.end = (state.step, state.total_steps, state.schedule_position, state.schedule_steps)

    def teardown(self, state):
        pass

    def report(self):
        return {}


def test_a_larger_batch_trains_the_same_samples_on_the_same_schedule_at_a_scaled_lr(small_mnist):
    config = TrainConfig(epochs=3)  # 1,280 images: 20 steps of 64 per epoch
    plain, grown = Grow(), Grow(batch=128, scale=2.0)
    reference = train(_model(small_mnist), small_mnist, config, seed=0, accelerators=[plain])
    result = train(_model(small_mnist), small_mnist, config, seed=0, accelerators=[grown])
    assert [n for e, n, _, _ in grown.steps] == [64] * 20 + [128] * 20
    assert result.samples == reference.samples == 3 * 1280 and result.epochs == reference.epochs == 3
    assert grown.end == (40, 40, 60.0, 60) and plain.end == (60, 60, 60.0, 60)
    plain_lr = [lr for _, _, lr, _ in plain.steps]
    for epoch, _, lr, position in grown.steps:
        assert lr == pytest.approx((2.0 if epoch else 1.0) * plain_lr[int(position)], rel=1e-6)
    assert torch.equal(grown.momentum["before"], grown.momentum["after"])  # carried, not reset


def test_a_batch_that_does_not_divide_the_schedule_still_ends_it_exactly(small_mnist):
    grown = Grow(batch=96, scale=1.5)  # 13 steps of 96 per epoch, 1.5 schedule steps each
    result = train(_model(small_mnist), small_mnist, TrainConfig(epochs=3), seed=0, accelerators=[grown])
    assert {n for e, n, _, _ in grown.steps if e > 0} == {96}
    step, total, position, schedule = grown.end
    assert total == 20 + 27 and schedule == 60  # 40 schedule steps left: ceil(40 / 1.5) = 27 planned
    assert step == 20 + 2 * 13 and position == 59.0  # two passes of 13 whole batches (the rest dropped)
    assert result.epochs == pytest.approx(59 / 20)
