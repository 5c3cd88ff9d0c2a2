"""automl costmodel, automl placement and automl search --dry-run from the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import cli
from tests.conftest import SMALLEST_MOBILE


def run(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(list(args))
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_costmodel_predicts_every_format_per_layer(capsys, tmp_path):
    png = tmp_path / "cost.png"
    code, out, _ = run(capsys, "costmodel", "--genome", SMALLEST_MOBILE, "--json", "--png", str(png))
    assert code == 0 and png.stat().st_size > 0
    result = json.loads(out)
    assert set(result["formats"]) == {"fp32", "bf16", "fp16", "int8", "fx16"}
    fp32 = result["formats"]["fp32"]
    assert fp32["epoch_seconds"] == pytest.approx(result["steps"] * fp32["step_seconds"])
    assert {layer["kind"] for layer in fp32["layers"]} >= {"conv", "depthwise", "matmul", "elementwise"}


def test_calibrate_says_where_the_calibration_went_and_the_level_of_whole_networks(capsys, monkeypatch, tmp_path,
                                                                                     cost_calibration):
    import copy

    monkeypatch.setenv("AUTOML_CACHE_DIR", str(tmp_path))  # the shared test cache keeps its calibration
    from automl.nn import calibrate as calibration_module

    measured = copy.deepcopy(cost_calibration)
    measured.reference_ratios = {"fp32": {"inverted-residual-s": 0.9, "cells-s": 1.3}}
    measured.network_scale = {fmt: 1.08 for fmt in ("fp32", "bf16", "fp16", "int8", "fx16")}
    asked = []

    def calibrate(device, clock="wall", formats=()):
        asked.append(tuple(formats))
        return measured

    monkeypatch.setattr(calibration_module, "calibrate", calibrate)
    code, out, err = run(capsys, "costmodel", "--calibrate", "--formats", "fp32")
    assert asked == [("fp32", "bf16", "fp16")]  # --calibrate measures every native format, whatever --formats says
    assert code == 0 and "reference networks" in err
    assert str(tmp_path) in out and "fp32: whole networks run at 1.08x" in out and "cells-s 1.30" in out


def test_costmodel_table_marks_fx16_as_predicted(capsys):
    code, out, _ = run(capsys, "costmodel", "--genome", SMALLEST_MOBILE, "--formats", "fp32,fx16")
    assert code == 0 and "predicted, not measured" in out and "stem.0" in out


@pytest.mark.parametrize("args, message", [
    (["--formats", "fp64", "--genome", SMALLEST_MOBILE], "fp64"),
    ([], "--genome"),
    (["--genome", SMALLEST_MOBILE, "--study", "x"], "--genome"),
    (["--genome", "stem9-nonsense"], "stem"),
    (["--genome", SMALLEST_MOBILE, "--input-shape", "28by28"], "--input-shape"),
])
def test_costmodel_mistakes_are_one_line(capsys, args, message):
    code, _, err = run(capsys, "costmodel", *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_placement_reports_three_strategies(capsys):
    code, out, _ = run(capsys, "placement", "--genome", SMALLEST_MOBILE, "--workers", "4", "--bandwidth", "1Gbit",
                       "--json")
    assert code == 0
    result = json.loads(out)
    assert result["bandwidth_bytes_per_s"] == pytest.approx(1.25e8)
    names = [s["name"] for s in result["strategies"]]
    assert names == ["ring all-reduce", "parameter server", "resource-aware (Park)"]
    ring = result["strategies"][0]
    assert ring["bytes_per_worker"] == pytest.approx(2 * 3 / 4 * result["gradient_bytes"])
    code, _, err = run(capsys, "placement", "--genome", SMALLEST_MOBILE, "--bandwidth", "fast")
    assert code == 2 and "--bandwidth" in err


def test_search_dry_run_predicts_without_training_or_storing(capsys, in_tmp):
    code, out, _ = run(capsys, "search", "--dry-run", "--json", "--population", "2", "--budget", "4",
                       "--max-flops", "20M")
    assert code == 0
    prediction = json.loads(out)
    assert prediction["evaluations"] == 4 and len(prediction["trials"]) == 4
    assert prediction["predicted_seconds"] == pytest.approx(
        prediction["fixed_s"] + prediction["training_s"] + prediction["evaluation_s"])
    assert prediction["fixed_s"] > 0 and prediction["evaluation_s"] > 0
    assert prediction["warm_started"] + prediction["from_scratch"] == 4
    for trial in prediction["trials"]:  # the engine decided: warm-started children train 0.3 epochs
        assert trial["epochs"] == (0.3 if trial["warm_start"] else 1.0)
        assert trial["generation"] > 0 or not trial["warm_start"]
    assert not Path("studies").exists()
    code, out, _ = run(capsys, "search", "--dry-run", "--population", "2", "--budget", "2", "--max-flops", "20M",
                       "--accelerate", "subset:fraction=0.5,sparsegrad")
    assert code == 0 and "predicted wall-clock" in out and "sparsegrad" in out
    code, out, _ = run(capsys, "search", "--dry-run", "--population", "2", "--budget", "2", "--max-flops", "20M",
                       "--workers", "2")
    assert code == 0 and "--workers/--ray not modelled" in out


def test_costmodel_of_a_study_trial_uses_the_studys_data_and_batch_size(capsys, in_tmp):
    import search_spaces
    from automl.core.pareto import DEFAULT_OBJECTIVES
    from automl.store.study import StudyStore

    space = search_spaces.get("mobile")
    genome = space.parse(SMALLEST_MOBILE)
    store = StudyStore.create("costed", None, DEFAULT_OBJECTIVES, {
        "space": "mobile", "data": {"input_shape": [3, 32, 32], "num_classes": 10, "train": 320},
        "train": {"batch_size": 32, "epochs": 2.0, "bn_samples": 64}})
    trial = store.start(genome, space.genes(), {"key": genome.key()})
    store.complete(trial, {"accuracy": 0.5, "flops": 1e6}, {"genome": SMALLEST_MOBILE})
    code, out, _ = run(capsys, "costmodel", "--study", "costed", "--formats", "fp32", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["genome"] == SMALLEST_MOBILE and result["steps"] == 2 * 320 // 32
    assert result["formats"]["fp32"]["batch_size"] == 32
    code, _, err = run(capsys, "costmodel", "--study", "costed", "--trial", "7")
    assert code == 2 and "trial 7" in err


def test_bench_dryrun_refuses_an_unknown_clock_in_one_line(capsys):
    code, _, err = run(capsys, "bench", "dryrun", "--clock", "sundial")
    assert code == 2 and "--clock" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("fmt", ["int8", "fx16"])
def test_bench_costmodel_refuses_a_format_that_never_trains_before_calibrating(capsys, monkeypatch, fmt):
    import automl.nn.calibrate as calibrate

    monkeypatch.setattr(calibrate, "calibration_for", lambda *a, **k: pytest.fail("calibrated first"))
    code, _, err = run(capsys, "bench", "costmodel", "--formats", f"fp32,{fmt}")
    assert code == 2 and f"--formats {fmt}: no training kernels" in err and len(err.strip().splitlines()) == 1
