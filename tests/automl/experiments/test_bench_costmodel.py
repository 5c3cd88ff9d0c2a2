"""bench costmodel: predicted vs measured training seconds (quick: 2 candidates, a sliver of an epoch)."""

from __future__ import annotations

import pytest

from automl.experiments import costmodel as bench
from automl.experiments.costmodel import relative_errors


def test_relative_errors_are_median_and_worst_of_absolute_errors():
    rows = [{"predicted_s": 1.1, "measured_s": 1.0}, {"predicted_s": 1.0, "measured_s": 2.0},
            {"predicted_s": 3.0, "measured_s": 3.0}]
    errors = relative_errors(rows)
    assert errors["median_abs_error"] == pytest.approx(0.1) and errors["worst_abs_error"] == pytest.approx(0.5)
    assert errors["mean_signed_error"] == pytest.approx((0.1 - 0.5 + 0) / 3)


def test_bench_predicts_then_trains_each_candidate(monkeypatch, tmp_path, cost_calibration):
    monkeypatch.setattr(bench, "calibration_for", lambda device, refresh=False, clock="wall": cost_calibration)
    result = bench.bench_costmodel(candidates=2, epochs=0.05, max_flops=5e6, formats=("fp32",))
    entry = result["formats"]["fp32"]
    assert len(entry["rows"]) == 2 and result["steps"] >= 1
    for row in entry["rows"]:
        assert row["predicted_s"] > 0 and row["measured_s"] > 0 and row["mflops"] <= 5
    assert entry["worst_abs_error"] >= entry["median_abs_error"] >= 0
    assert entry["meets_target"] == (entry["median_abs_error"] <= 0.15)
    assert bench.plot(result, tmp_path / "costmodel.png").stat().st_size > 0
