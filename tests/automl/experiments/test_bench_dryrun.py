"""bench dryrun: predicted against measured wall-clock and their parts (stand-ins, no training)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from automl.experiments.dryrun import LoadSampler, bench_dryrun


def _candidate(seconds: float, warm: bool):
    attrs = {"seconds": seconds, "eval_seconds": 0.1, "warm_start": warm, "predicted_seconds": seconds * 1.1,
             "genome": "g", "epochs": 0.3 if warm else 1.0}
    return SimpleNamespace(values={"accuracy": 0.5}, attrs=attrs, generation=1 if warm else 0,
                           genome=SimpleNamespace(key=lambda: "mobile:g"))


def test_bench_compares_prediction_and_search_part_by_part():
    calibration = SimpleNamespace(to_json=lambda: {"machine": "test"})
    prediction = {"predicted_seconds": 5.0, "dry_run_s": 0.1}
    search = SimpleNamespace(candidates=[_candidate(1.0, False), _candidate(0.5, True)])
    result = bench_dryrun(lambda: prediction, lambda: search, lambda: calibration, {"budget": 2})
    measured = result["measured"]
    assert measured["evaluations"] == 2 and measured["warm_started"] == 1
    assert measured["training_s"] == pytest.approx(1.5) and measured["evaluation_s"] == pytest.approx(0.2)
    assert measured["fixed_s"] == pytest.approx(measured["seconds"] - 1.7)
    assert measured["per_trial_training_median_abs_error"] == pytest.approx(0.1)
    assert result["ratio_predicted_to_measured"] == pytest.approx(5.0 / measured["seconds"])
    assert result["meets_target"] == (abs(result["ratio_predicted_to_measured"] - 1) <= 0.25)
    assert result["load_average_1min"]["samples"] >= 2


def test_load_sampler_records_at_least_start_and_end():
    with LoadSampler(every=60) as load:
        pass
    summary = load.summary()
    assert summary["samples"] == 2 and summary["min"] <= summary["median"] <= summary["max"]


def test_an_unreachable_flops_limit_is_refused_before_the_calibration(capsys, monkeypatch):
    """What `automl search` refuses at once is refused at once here too, not after minutes
    of calibrating the cost model."""
    import cli
    import automl.nn.calibrate as calibrate

    monkeypatch.setattr(calibrate, "calibration_for", lambda *a, **k: pytest.fail("calibrated first"))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bench", "dryrun", "--max-flops", "1"])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1 and "--max-flops 1 cannot be met" in err
