"""bench warmstart: inherited children against scratch children, quick."""

from automl.experiments.warmstart import bench_warmstart


def test_warmstart_benchmark_runs_quick():
    result = bench_warmstart(pairs=2, epochs=0.2, max_flops=8e6, fractions=(0.5, 1.0), default_fraction=0.5)
    assert len(result["rows"]) == 2 and result["epochs_ratio_median"] > 0
    assert -1 <= result["kendall_tau_at_default_fraction"] <= 1
    assert result["met"]["epochs_ratio"] == (result["epochs_ratio_median"] <= result["targets"]["epochs_ratio_at_most"])
    gap = result["kendall_tau_scratch_vs_scratch"] - result["kendall_tau_at_full_budget"]
    assert result["met"]["tau_at_full_budget"] == (gap <= result["targets"]["tau_gap_at_most"])
    assert [row["genes_changed"] for row in result["rows"]] == [1, 2]
    for row in result["rows"]:
        assert row["parent"] != row["child"] and row["child_mflops"] <= 8
        assert set(row["warm"]) == {"0.5", "1.0"}
