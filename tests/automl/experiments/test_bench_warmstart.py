"""bench warmstart: inherited children against scratch children, quick."""

from automl.experiments.warmstart import bench_warmstart


def test_warmstart_benchmark_runs_quick():
    result = bench_warmstart(pairs=2, epochs=0.2, max_flops=8e6, fractions=(0.5, 1.0), default_fraction=0.5)
    assert len(result["rows"]) == 2 and result["epochs_ratio_median"] > 0
    assert -1 <= result["kendall_tau_at_default_fraction"] <= 1
    assert [row["genes_changed"] for row in result["rows"]] == [1, 2]
    for row in result["rows"]:
        assert row["parent"] != row["child"] and row["child_mflops"] <= 8
        assert set(row["warm"]) == {"0.5", "1.0"}
