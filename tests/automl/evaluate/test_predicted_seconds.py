"""Every trial records the cost model's predicted training seconds beside the measured ones."""

from __future__ import annotations

import pytest

import search_spaces
from automl.data import batches_per_epoch
from automl.evaluate.cnn import CNNEvaluator
from automl.nn.costmodel import predict_training
from automl.train.loop import TrainConfig
from tests.conftest import SMALLEST_MOBILE


def test_an_evaluation_records_the_predicted_seconds_of_its_own_run(small_mnist, cost_calibration):
    space = search_spaces.get("mobile")
    genome = space.parse(SMALLEST_MOBILE)
    config = TrainConfig(epochs=0.5)
    evaluation = CNNEvaluator(space, small_mnist, config, seed=0)(genome)
    steps = round(0.5 * batches_per_epoch(small_mnist.train, config.batch_size))
    expected = predict_training(space.build(genome, small_mnist.input_shape, small_mnist.num_classes),
                                small_mnist.input_shape, config.batch_size, steps, cost_calibration, "fp32",
                                config.bn_samples)
    assert evaluation.attrs["predicted_seconds"] == pytest.approx(expected)
    assert evaluation.attrs["seconds"] > 0


def test_without_prediction_no_step_is_traced(small_mnist, monkeypatch):
    """Where candidates train for seconds (a Tree-CNN's branch searches) the trace would cost as
    much as the training: ``predict_seconds=False`` skips it and records no prediction."""
    import automl.evaluate.cnn as cnn

    def refuse(*args, **kwargs):
        raise AssertionError("the cost model was asked")

    monkeypatch.setattr(cnn, "predict_training", refuse)
    space = search_spaces.get("mobile")
    evaluation = CNNEvaluator(space, small_mnist, TrainConfig(epochs=0.2), predict_seconds=False)(
        space.parse(SMALLEST_MOBILE))
    assert evaluation.attrs["predicted_seconds"] is None and evaluation.attrs["seconds"] > 0


def test_a_machine_without_calibration_is_told_why_the_first_trial_waits(small_mnist, cost_calibration, monkeypatch):
    """The first run on a machine calibrates the cost model (minutes on a CPU): the progress
    says so once; with a cached calibration nothing is said and nothing is measured."""
    import automl.evaluate.cnn as cnn

    messages, measured = [], []

    class Progress(cnn.SilentProgress):
        def message(self, text: str) -> None:
            messages.append(text)

    def calibrate(device, formats):
        measured.append((device, formats))
        return cost_calibration

    space = search_spaces.get("mobile")
    genome = space.parse(SMALLEST_MOBILE)
    monkeypatch.setattr(cnn, "calibration_for", calibrate)
    CNNEvaluator(space, small_mnist, TrainConfig(epochs=0.1), progress=Progress())(genome)
    assert messages == [] and measured == []  # the cache holds one
    monkeypatch.setattr(cnn, "load_calibration", lambda device: None)
    evaluator = CNNEvaluator(space, small_mnist, TrainConfig(epochs=0.1), progress=Progress())
    evaluator(genome)
    evaluator(genome)  # a second trial of the same evaluator: calibrated already
    assert len(measured) == 1 and len(messages) == 2 and "calibrating the cost model" in messages[0]
    assert messages[1].startswith("calibrated in ")
    assert measured[0][1] == ("fp32",)  # trials predict fp32 training: a first search measures no other format
