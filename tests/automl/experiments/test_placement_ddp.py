"""The placement model's bytes against what DistributedDataParallel all-reduces (2 gloo processes)."""

from __future__ import annotations

import search_spaces
from automl.experiments.placement import measure_ddp_bytes
from automl.nn.placement import gradient_bytes
from tests.conftest import SMALLEST_MOBILE


def test_predicted_gradient_bytes_match_the_comm_hooks_count_with_two_processes():
    space = search_spaces.get("mobile")
    model = space.build(space.parse(SMALLEST_MOBILE), (1, 28, 28), 10)
    counted = measure_ddp_bytes("mobile", SMALLEST_MOBILE, (1, 28, 28), 10, workers=2, batch_size=4, steps=2)
    assert len(counted["bytes_per_step"]) == 2 and counted["buckets"] >= 2
    assert abs(gradient_bytes(model) / counted["bytes_per_step_median"] - 1) <= 0.05
