"""bench prunetrain: the same architecture plain and with PruneTrain, epochs taking turns."""

import pytest

from automl.experiments.prunetrain import bench_prunetrain
from tests.conftest import SMALLEST_MOBILE


def test_prunetrain_benchmark_reports_flops_per_epoch_seconds_and_accuracy_of_both():
    ticks = []
    result = bench_prunetrain(SMALLEST_MOBILE, epochs=2, spec="prunetrain:step=prox,ratio=0.95",
                              progress=lambda which, done, total: ticks.append((which, done)))
    assert ticks == [("plain", 1), ("prunetrain", 1), ("plain", 2), ("prunetrain", 2)]  # epochs take turns
    rows = result["per_epoch"]
    assert [row["epoch"] for row in rows] == [1, 2]
    assert rows[0]["plain_gflops"] == rows[1]["plain_gflops"] > 0
    assert rows[1]["prunetrain_gflops"] < rows[0]["prunetrain_gflops"]  # pruned after epoch 1
    assert rows[1]["prunetrain_batch"] > rows[0]["prunetrain_batch"] == 64
    assert result["channels_after"] < result["channels_before"] and result["mflops_after"] < result["mflops_before"]
    assert 0 < result["training_flops_saving"] < 1
    assert result["plain_seconds"] > 0 and result["prunetrain_seconds"] > 0
    assert result["speedup"] == pytest.approx(result["plain_seconds"] / result["prunetrain_seconds"])
    assert result["kind_measured"] in ("wall-clock", "regularizer")
    assert 0 <= result["plain"][0]["val_accuracy"] <= 1 and 0 <= result["prunetrain"][0]["test_accuracy"] <= 1


def test_a_spec_without_prunetrain_is_refused_in_one_line(capsys):
    import cli

    with pytest.raises(SystemExit) as exit_:
        cli.main(["bench", "prunetrain", "--accelerate", "fx16"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "does not name prunetrain" in err and len(err.splitlines()) == 1
