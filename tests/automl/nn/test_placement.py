"""Layer placement: bytes per step of ring all-reduce, a parameter server and Park's placement."""

from __future__ import annotations

import pytest
from torch import nn

import search_spaces
from automl.nn.costmodel import step_cost, trace_step
from automl.nn.placement import (gradient_bytes, measure_units, parameter_server, placements, resource_aware,
                                 ring_allreduce)
from tests.conftest import SMALLEST_MOBILE


def test_ring_and_parameter_server_bytes_follow_their_formulas():
    ring = ring_allreduce(1000.0, workers=4, compute=0.5, bandwidth=100.0)
    assert ring.bytes_per_worker == pytest.approx(2 * 3 / 4 * 1000) and ring.step_seconds == pytest.approx(0.5 + 15)
    server = parameter_server(1000.0, workers=4, compute=0.5, bandwidth=100.0)
    assert server.bytes_per_worker == 2000 and server.bytes_busiest_link == 8000
    assert server.step_seconds == pytest.approx(0.5 + 80)


def _costed(model: nn.Module, shape: tuple[int, ...], batch: int, calibration):
    cost = step_cost(trace_step(model, shape, batch), calibration, "fp32", batch)
    return cost, measure_units(model, shape, batch, cost)


def test_units_account_for_every_parameter(cost_calibration):
    space = search_spaces.get("mobile")
    model = space.build(space.parse(SMALLEST_MOBILE), (1, 28, 28), 10)
    cost, units = _costed(model, (1, 28, 28), 8, cost_calibration)
    assert [u.name for u in units][:3] == ["stem.0", "stem.1", "stem.2"] and units[-1].name == "classifier"
    assert sum(u.params for u in units) == sum(p.numel() for p in model.parameters())
    assert 4 * sum(u.params for u in units) == gradient_bytes(model)
    assert units[-1].activation_elements == 8 * 10
    assert sum(u.forward_flops for u in units) > 0


def test_a_parameter_heavy_classifier_goes_to_the_server_and_convolutions_stay(cost_calibration):
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 16 * 16, 4096),
                          nn.ReLU(), nn.Linear(4096, 10))
    cost, units = _costed(model, (3, 16, 16), 4, cost_calibration)
    park = resource_aware(units, workers=4, overhead=0.0, bandwidth=1.25e9)
    assert park.detail["server_units"] and "0" not in park.detail["server_units"]  # the conv stays on the workers
    server = parameter_server(gradient_bytes(model), 4, cost.step_seconds, 1.25e9)
    assert park.bytes_busiest_link < server.bytes_busiest_link / 10


def test_a_mobile_net_gains_nothing_from_placement(cost_calibration):
    space = search_spaces.get("mobile")
    model = space.build(space.parse(SMALLEST_MOBILE), (1, 28, 28), 10)
    cost, units = _costed(model, (1, 28, 28), 64, cost_calibration)
    ring, server, park = placements(model, units, 4, 1.25e9, cost)
    assert ring.name.startswith("ring") and server.name == "parameter server"
    assert park.step_seconds <= server.step_seconds
    assert park.step_seconds > 0.9 * server.step_seconds  # tiny classifier: nothing worth moving
