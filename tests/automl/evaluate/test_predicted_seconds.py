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
