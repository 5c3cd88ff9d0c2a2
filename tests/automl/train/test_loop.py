import math

import pytest
import torch

import search_spaces
from automl.core.errors import AutomlError, CandidateFailed
from automl.train.events import Event
from automl.train.loop import TrainConfig, evaluate, train
from tests.conftest import SMALLEST_MOBILE


def _model(data, seed=0):
    space = search_spaces.get("mobile")
    torch.manual_seed(seed)
    return space.build(space.parse(SMALLEST_MOBILE), data.input_shape, data.num_classes)


def test_a_small_model_learns_the_embedded_data(small_mnist):
    result = train(_model(small_mnist), small_mnist, TrainConfig(epochs=2), seed=0)
    assert result.accuracy > 0.5  # chance is 0.1
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert result.epochs == 2 and result.samples == 2 * 1280
    assert result.seconds > 0 and result.samples_per_s > 0 and result.eval_seconds > 0


def test_same_seed_same_result(small_mnist):
    a = train(_model(small_mnist), small_mnist, TrainConfig(epochs=1), seed=3)
    b = train(_model(small_mnist), small_mnist, TrainConfig(epochs=1), seed=3)
    assert a.accuracy == b.accuracy and a.loss == b.loss


def test_evaluation_is_kept_out_of_training_time(small_mnist):
    result = train(_model(small_mnist), small_mnist, TrainConfig(epochs=1), seed=0)
    assert math.isclose(sum(h["seconds"] for h in result.history), result.seconds, rel_tol=0.5)
    assert result.accuracy == evaluate(result.model, small_mnist.val)


class Recorder:
    """A minimal hook that records the events it sees (TEARDOWN arrives at its teardown)."""

    name = "recorder"

    def __init__(self, fail_at=None):
        self.seen = []
        self.fail_at = fail_at  # (event, step): raise there, as a buggy or out-of-memory hook would

    def match(self, event, state):
        return True

    def apply(self, event, state):
        self.seen.append(event)
        if event is Event.LOSS:
            state.loss = state.loss * 1.0
        if (event, state.step) == self.fail_at:
            raise RuntimeError(f"hook failed at {event.name} of step {state.step}")

    def teardown(self, state):
        self.seen.append(Event.TEARDOWN)

    def report(self):
        return {"events": len(self.seen)}


def test_events_fire_in_loop_order(small_mnist):
    recorder = Recorder()
    result = train(_model(small_mnist), small_mnist, TrainConfig(epochs=1, batch_size=640), accelerators=[recorder])
    step = [Event.BATCH, Event.LOSS, Event.AFTER_BACKWARD, Event.BEFORE_STEP, Event.AFTER_STEP]
    assert recorder.seen == [Event.SETUP, Event.INIT, Event.EPOCH_START, *step, *step, Event.EPOCH_END,
                             Event.FIT_END, Event.EVAL_START, Event.EVAL_END, Event.TEARDOWN]
    assert result.accelerators == {"recorder": {"events": len(recorder.seen) - 1}}  # reported before TEARDOWN


def test_teardown_runs_when_a_hook_raises_mid_epoch_and_every_teardown_runs(small_mnist):
    class BrokenTeardown(Recorder):
        def teardown(self, state):
            super().teardown(state)
            raise ValueError("teardown failed")

    dying, broken, last = Recorder(fail_at=(Event.BEFORE_STEP, 3)), BrokenTeardown(), Recorder()
    with pytest.raises(RuntimeError, match="BEFORE_STEP of step 3") as raised:
        train(_model(small_mnist), small_mnist, TrainConfig(epochs=1), accelerators=[dying, broken, last])
    assert all(r.seen[-1] is Event.TEARDOWN for r in (dying, broken, last))
    assert dying.seen.count(Event.AFTER_STEP) == 3
    assert "teardown failed too: ValueError" in "".join(raised.value.__notes__)  # not lost either


def test_divergence_ends_with_candidate_failed_and_teardown(small_mnist):
    recorder = Recorder()
    with pytest.raises(CandidateFailed, match="^diverged"):
        train(_model(small_mnist), small_mnist, TrainConfig(epochs=2, lr=1e6), seed=0, accelerators=[recorder])
    assert recorder.seen[-1] is Event.TEARDOWN and Event.FIT_END not in recorder.seen


def test_bad_config_is_a_user_error():
    with pytest.raises(AutomlError):
        TrainConfig(epochs=0)
    with pytest.raises(AutomlError):
        TrainConfig(schedule="linear")


class HalveTheData:
    """Replaces the training split at SETUP, before the schedule is sized."""

    name = "halve"

    def match(self, event, state):
        return event is Event.SETUP

    def apply(self, event, state):
        from automl.data import Split
        half = len(state.train) // 2
        state.train = Split(x=state.train.x[:half], y=state.train.y[:half])

    def report(self):
        return {}


def test_setup_may_replace_the_training_split(small_mnist):
    plain = train(_model(small_mnist), small_mnist, TrainConfig(epochs=1, batch_size=64))
    halved = train(_model(small_mnist), small_mnist, TrainConfig(epochs=1, batch_size=64), accelerators=[HalveTheData()])
    assert halved.samples == plain.samples // 2 and halved.epochs == 1.0


class StopsWithMeasurement:
    """Stops after the second step with an accuracy it measured (as successive halving does)."""

    name = "stopper"
    events = frozenset({Event.AFTER_STEP})

    def match(self, event, state):
        return event in self.events

    def apply(self, event, state):
        if state.step == 2:
            state.stop, state.stop_accuracy = True, 0.123

    def report(self):
        return {}


class ActsAtFitEnd(StopsWithMeasurement):
    name = "fit-end"
    events = frozenset({Event.FIT_END})

    def apply(self, event, state):
        pass


def test_a_measurement_taken_at_the_stop_is_kept_when_nothing_acts_after_it(small_mnist):
    kept = train(_model(small_mnist), small_mnist, TrainConfig(epochs=1), seed=0,
                 accelerators=[StopsWithMeasurement()])
    assert kept.accuracy == 0.123 and kept.samples == 2 * 64  # stopped after two steps, not measured again


def test_a_method_acting_after_the_stop_gets_the_model_measured_again(small_mnist):
    measured = train(_model(small_mnist), small_mnist, TrainConfig(epochs=1), seed=0,
                     accelerators=[StopsWithMeasurement(), ActsAtFitEnd()])
    assert measured.accuracy != 0.123 and measured.accuracy == evaluate(measured.model, small_mnist.val)
