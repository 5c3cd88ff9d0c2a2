"""The dry run's stand-in trainer: predicts, trains nothing, and its accuracy follows FLOPs."""

from __future__ import annotations

import pytest
import torch

from automl.app.dryrun import PredictingTrainer, stand_in_accuracy
from automl.train.loop import TrainConfig
from tests.conftest import SMALLEST_MOBILE


def test_the_stand_in_trains_nothing_and_charges_fewer_steps_for_fewer_epochs(mnist5k, cost_calibration):
    import search_spaces

    space = search_spaces.get("mobile")
    model = space.build(space.parse(SMALLEST_MOBILE), mnist5k.input_shape, mnist5k.num_classes)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = PredictingTrainer(cost_calibration)
    full = trainer(model, mnist5k, TrainConfig(epochs=1.0), seed=3)
    short = trainer(model, mnist5k, TrainConfig(epochs=0.3), seed=3)
    assert all(torch.equal(before[k], v) for k, v in full.model.state_dict().items())
    assert 0 < short.seconds < full.seconds and full.eval_seconds == pytest.approx(short.eval_seconds)
    assert full.accuracy == short.accuracy and trainer.spent > 0  # same genome and seed, same stand-in accuracy
    assert PredictingTrainer(cost_calibration, fraction=0.5)(model, mnist5k, TrainConfig(), seed=3).seconds < full.seconds


def test_stand_in_accuracy_rises_with_flops_and_stays_a_probability():
    assert stand_in_accuracy(1e8, 0) > stand_in_accuracy(1e5, 0)
    assert all(0.0 <= stand_in_accuracy(f, s) <= 1.0 for f in (1.0, 1e3, 1e12) for s in range(20))
