"""Machine calibration: the micro-benchmarks and their per-device cache."""

from __future__ import annotations

import json

import pytest
import torch

from automl.core.errors import AutomlError
from automl.nn import calibrate as calibration_module
from automl.nn.calibrate import cache_path, calibration_for, device_key, load_calibration, save_calibration
from automl.nn.costmodel import FORMATS, KINDS


def test_calibration_measures_every_kind_and_labels_what_it_did_not_measure(monkeypatch):
    monkeypatch.setattr(calibration_module, "WINDOW_S", 0.01)
    monkeypatch.setattr(calibration_module, "NATIVE_CANDIDATES", ("fp32",))
    measured = calibration_module.calibrate("cpu")
    assert measured.bandwidth > 0 and measured.op_latency > 0 and measured.step_overhead >= 0
    for kind in KINDS:
        assert set(measured.throughput[kind]) == set(FORMATS)
        assert all(value > 0 for value in measured.throughput[kind].values())
        assert measured.source[kind]["fp32"] == "measured"
        assert measured.source[kind]["int8"] == "scaled" and measured.source[kind]["fx16"] == "modelled"
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
