"""Machine calibration: the micro-benchmarks and their per-device cache."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from automl.core.errors import AutomlError
from automl.nn import calibrate as calibration_module
from automl.nn.calibrate import cache_path, calibration_for, device_key, load_calibration, save_calibration
from automl.nn.costmodel import FORMATS, KINDS


def test_calibration_measures_every_kind_and_labels_what_it_did_not_measure(monkeypatch):
    monkeypatch.setattr(calibration_module, "WINDOW_S", 0.01)
    measured = calibration_module.calibrate("cpu", formats=("fp32",))
    assert measured.tried == ["fp32"]
    assert measured.bandwidth > 0 and measured.op_latency > 0 and measured.step_overhead >= 0
    for kind in KINDS:
        assert set(measured.throughput[kind]) == set(FORMATS)
        assert all(value > 0 for value in measured.throughput[kind].values())
        assert measured.source[kind]["fp32"] == "measured"
        assert measured.source[kind]["int8"] == "scaled" and measured.source[kind]["fx16"] == "modelled"
        assert measured.source[kind]["bf16"] == "scaled"  # not measured until a command asks for it
        assert measured.throughput[kind]["fx16"] == pytest.approx(2 * measured.throughput[kind]["fp32"])
    assert measured.machine == device_key(torch.device("cpu"))


def test_the_cache_is_keyed_by_device_and_threads(tmp_path, monkeypatch, cost_calibration):
    monkeypatch.setenv("AUTOML_CACHE_DIR", str(tmp_path))
    assert load_calibration("cpu") is None
    path = save_calibration(cost_calibration)
    assert path == cache_path() and path.parent == tmp_path and path.name.startswith("costmodel-")
    assert load_calibration("cpu") == cost_calibration
    assert calibration_for("cpu") == cost_calibration  # cached: nothing measured again
    stored = json.loads(path.read_text())
    assert list(stored) == [device_key(torch.device("cpu"))] and "threads" in list(stored)[0]


def test_a_damaged_cache_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOML_CACHE_DIR", str(tmp_path))
    cache_path().write_text("{not json")
    with pytest.raises(AutomlError, match="--calibrate"):
        load_calibration("cpu")


def test_a_calibration_cached_by_older_micro_benchmarks_is_measured_again(tmp_path, monkeypatch, cost_calibration):
    monkeypatch.setenv("AUTOML_CACHE_DIR", str(tmp_path))
    old = {**cost_calibration.to_json(), "version": 1}
    cache_path().write_text(json.dumps({cost_calibration.machine: old}))
    assert load_calibration("cpu") is None
    save_calibration(cost_calibration)
    assert load_calibration("cpu") == cost_calibration


def test_a_format_asked_for_later_is_added_to_the_cached_calibration(tmp_path, monkeypatch, cost_calibration):
    """A first search calibrates fp32 alone; `automl costmodel --formats bf16` later measures bf16
    into the same cached calibration, keeping what fp32 and the shared benchmarks measured."""
    monkeypatch.setenv("AUTOML_CACHE_DIR", str(tmp_path))
    partial = copy.deepcopy(cost_calibration)
    partial.tried = ["fp32"]
    for kind in KINDS:
        partial.source[kind]["bf16"] = "scaled"
    save_calibration(partial)
    for shared in ("_op_latency", "_bandwidth", "_step_overhead"):
        monkeypatch.setattr(calibration_module, shared, lambda *a, **k: pytest.fail("measured again"))
    asked = []

    def fake_format(fmt, device, latency, bandwidth):
        asked.append(fmt)
        rates = {key: 7.0 for key in partial.throughput}
        return rates, {key: [[8.0, 7.0]] for key in partial.by_width}

    monkeypatch.setattr(calibration_module, "_measure_format", fake_format)
    monkeypatch.setattr(calibration_module, "_reference_ratios", lambda calibration, fmt, device: {"net": 2.0})
    assert calibration_for("cpu", formats=("fp32",)) == partial  # what a search asks for: nothing measured
    grown = calibration_for("cpu", formats=("fp32", "bf16"))
    assert asked == ["bf16"] and grown.tried == ["fp32", "bf16"]
    assert all(grown.throughput[kind]["bf16"] == 7.0 and grown.source[kind]["bf16"] == "measured" for kind in KINDS)
    assert all(grown.throughput[kind]["fp32"] == partial.throughput[kind]["fp32"] for kind in KINDS)
    assert grown.network_scale["bf16"] == pytest.approx(2.0) and grown.op_latency == partial.op_latency
    assert load_calibration("cpu") == grown and calibration_for("cpu", formats=("bf16",)) == grown
    assert asked == ["bf16"]  # cached with bf16 now


def test_the_network_level_is_measured_over_predicted_operator_seconds_of_the_reference_networks(
        monkeypatch, cost_calibration):
    """Each reference network's ratio takes the per-step overhead off both sides; the level is
    their geometric mean; formats scaled or modelled from fp32 take fp32's level."""
    from automl.nn.costmodel import step_cost, trace_step
    from automl.nn.reference import INPUT_SHAPE, reference_networks, training_step

    calibration = copy.deepcopy(cost_calibration)
    for kind in KINDS:
        calibration.source[kind] = {**calibration.source[kind], "bf16": "measured", "fp16": "scaled"}
    predicted = {(name, fmt): step_cost(trace_step(model, INPUT_SHAPE, calibration_module.BATCH), calibration,
                                       fmt, calibration_module.BATCH)
                 for name, model in reference_networks().items() for fmt in ("fp32", "bf16")}
    factors = iter([0.5, 2.0] * 3 + [3.0] * 6)  # fp32: alternately half and twice; bf16: three times
    measured = {}

    def fake_timed(step, device):
        name, fmt = next(keys)
        cost = predicted[name, fmt]
        measured[name, fmt] = cost.overhead_seconds + next(factors) * (cost.step_seconds - cost.overhead_seconds)
        return measured[name, fmt]

    keys = iter([(name, fmt) for fmt in ("fp32", "bf16") for name in reference_networks()])
    monkeypatch.setattr(calibration_module, "timed", fake_timed)
    calibration_module._set_network_scale(calibration, torch.device("cpu"), ("fp32", "bf16"))
    assert list(calibration.reference_ratios["fp32"].values()) == pytest.approx([0.5, 2.0] * 3)
    assert calibration.network_scale["fp32"] == pytest.approx(1.0)
    assert calibration.network_scale["bf16"] == pytest.approx(3.0)
    assert calibration.network_scale["int8"] == calibration.network_scale["fx16"] == pytest.approx(1.0)
    assert calibration.network_scale["fp16"] == pytest.approx(1.0) and "fp16" not in calibration.reference_ratios


def test_every_reference_network_trains_and_holds_the_operators_the_spaces_use():
    from automl.nn.costmodel import trace_step
    from automl.nn.reference import INPUT_SHAPE, reference_networks, training_step

    variants, names = set(), set()
    for model in reference_networks().values():
        step = training_step(model, torch.float32, torch.device("cpu"))
        step()
        assert all(p.grad is not None for p in model.parameters())
        ops = trace_step(model, INPUT_SHAPE, 4)
        variants |= {(op.kind, op.variant) for op in ops if op.variant}
        names |= {op.name for op in ops}
    assert {("depthwise", f"k{k}s{s}") for k in (3, 5, 7) for s in (1, 2)} <= variants
    assert {("conv", "k1s1"), ("conv", "k3s1"), ("conv", "k3s2"), ("conv", "k1s2")} <= variants
    assert {"avg_pool2d", "max_pool2d_with_indices", "cat", "add", "hardtanh_", "relu_"} <= names
