"""bench costmodel: predicted vs measured training seconds (quick: 2 candidates, a sliver of an epoch)."""

from __future__ import annotations

import pytest

from automl.core.errors import AutomlError
from automl.experiments import costmodel as bench
from automl.experiments.costmodel import relative_errors


def test_relative_errors_are_median_and_worst_of_absolute_errors():
    rows = [{"predicted_s": 1.1, "measured_s": 1.0}, {"predicted_s": 1.0, "measured_s": 2.0},
            {"predicted_s": 3.0, "measured_s": 3.0}]
    errors = relative_errors(rows)
    assert errors["median_abs_error"] == pytest.approx(0.1) and errors["worst_abs_error"] == pytest.approx(0.5)
    assert errors["mean_signed_error"] == pytest.approx((0.1 - 0.5 + 0) / 3)


def test_bench_predicts_then_trains_each_candidate(monkeypatch, tmp_path, cost_calibration):
    monkeypatch.setattr(bench, "calibration_for", lambda device, refresh=False, clock="wall", formats=(): cost_calibration)
    result = bench.bench_costmodel(candidates=2, epochs=0.05, max_flops=5e6, formats=("fp32",))
    entry = result["formats"]["fp32"]
    assert len(entry["rows"]) == 2 and result["steps"] >= 1
    for row in entry["rows"]:
        assert row["predicted_s"] > 0 and row["measured_s"] > 0 and row["mflops"] <= 5
    assert entry["worst_abs_error"] >= entry["median_abs_error"] >= 0
    assert entry["meets_target"] == (entry["median_abs_error"] <= 0.15)
    assert bench.plot(result, tmp_path / "costmodel.png").stat().st_size > 0


@pytest.mark.slow  # minutes: tracing and training NASNet cells op by op (the quick suite traces every space in nn)
@pytest.mark.parametrize("space_name", ["dvolver", "resnet"])
def test_bench_runs_on_the_cell_and_residual_spaces(monkeypatch, cost_calibration, space_name):
    import numpy as np

    monkeypatch.setattr(bench, "calibration_for", lambda device, refresh=False, clock="wall", formats=(): cost_calibration)
    # the two smallest genomes, not a stratified sample: FLOPs-capped sampling builds dozens of these models
    monkeypatch.setattr(bench, "stratified", lambda space, rng, count, limit, cost: [
        space.decode(np.zeros(len(space.genes()), dtype=int)),
        space.decode(np.minimum(1, np.array([len(c) - 1 for c in space.genes().values()])))])
    result = bench.bench_costmodel(candidates=2, epochs=0.02, formats=("fp32",), space_name=space_name)
    rows = result["formats"]["fp32"]["rows"]
    assert result["space"] == space_name and len(rows) == 2
    assert all(row["predicted_s"] > 0 and row["measured_s"] > 0 for row in rows)
    assert rows[0]["mflops"] < rows[1]["mflops"]


def test_bench_default_range_is_twenty_times_the_smallest_candidate():
    import search_spaces
    from automl.data import load_dataset
    from automl.experiments.candidates import FlopsCost

    space = search_spaces.get("dvolver")
    cost = FlopsCost(space, load_dataset())
    assert bench.flops_limit(space, cost, None) == pytest.approx(20 * _smallest_flops("dvolver"))
    with pytest.raises(AutomlError, match="smallest candidate has 21.4 MFLOPs"):
        bench.flops_limit(space, cost, 20e6)


def _smallest_flops(space_name: str) -> float:
    import numpy as np

    import search_spaces
    from automl.data import load_dataset
    from automl.experiments.candidates import FlopsCost

    space = search_spaces.get(space_name)
    return FlopsCost(space, load_dataset())(space.decode(np.zeros(len(space.genes()), dtype=int)))
