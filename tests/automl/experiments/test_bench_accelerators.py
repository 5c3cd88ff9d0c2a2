"""bench accelerators: each entry (a method, options, or a+b) against plain training on the
same candidates and seeds."""

import statistics

import numpy as np
import pytest

from automl.experiments.accelerators import bench_accelerators, reading


def test_accelerator_benchmark_runs_quick():
    result = bench_accelerators(candidates=2, epochs=0.2, max_flops=8e6, names=["sparsegrad", "approx", "subset"])
    table = result["table"]
    assert set(table) == {"sparsegrad", "approx", "subset"}
    assert table["sparsegrad"]["reading"].startswith("emulated")
    assert table["approx"]["theoretical_training_flops_saved"] > 0
    # half the data: about half the FLOPs really skipped
    assert 0.4 < table["subset"]["theoretical_training_flops_saved"] < 0.6
    assert all(r["epochs"] == pytest.approx(0.2, abs=0.02) for r in result["runs"]["none"])
    assert -1 <= result["seed_to_seed_kendall_tau"] <= 1
    assert len(result["reference_accuracy"]) == 2
    for row in [*table.values(), result["seed_noise"]]:
        assert -1 <= row["kendall_tau"] <= 1 and 0 <= row["front_recall"] <= 1


def test_accelerator_benchmark_takes_options_combinations_and_averages_over_seeds():
    """Specs with options and a+b entries are rows of their own; every row is the mean over
    the seeds, the ceiling comes from as many other plain seeds, single-seed tau from the
    first seeds; a combination's FLOPs saved add up its methods' savings."""
    import accelerators
    from scipy.stats import kendalltau

    quarter, diverse = "subset:fraction=0.25", "subset:fraction=0.5,select=diverse"
    pair = diverse + "+approx"
    result = bench_accelerators(candidates=3, epochs=0.25, max_flops=4e6, seeds=2, names=[quarter, diverse, pair])
    table = result["table"]
    assert set(table) == {quarter, diverse, pair}
    saved = {spec: row["theoretical_training_flops_saved"] for spec, row in table.items()}
    assert saved[quarter] > saved[diverse] > 0.3
    assert saved[pair] > saved[diverse]  # the same half of the data skipped, and approx's sampling on top
    assert table[pair]["kind"] == f"{accelerators.get('subset').kind}+{accelerators.get('approx').kind}"
    assert result["runs"][diverse][0]["reports"]["subset"]["select"] == "diverse"
    assert set(result["runs"][pair][0]["reports"]) == {"subset", "approx"}
    for rows in result["runs"].values():
        for row in rows:
            assert len(row["accuracies"]) == 2 and row["accuracy"] == pytest.approx(statistics.mean(row["accuracies"]))
    assert result["reference_accuracy"] == [row["accuracy"] for row in result["runs"]["none"]]
    assert all(len(n) == 2 for n in result["noise_runs"])
    assert result["noise_accuracy"] == pytest.approx([statistics.mean(n) for n in result["noise_runs"]])
    first = [row["accuracies"][0] for row in result["runs"][quarter]]
    plain = [row["accuracies"][0] for row in result["runs"]["none"]]
    assert table[quarter]["kendall_tau_single_seed"] == pytest.approx(kendalltau(first, plain).statistic, nan_ok=True)


def test_readings_never_call_an_emulated_saving_measured():
    assert reading("emulated", 2.0).startswith("emulated: costs 2.00x")
    assert reading("emulated+fidelity", 0.5) == ("measured 2.00x speed-up; the emulated part's saving is "
                                                 "theoretical only")
    assert reading("wall-clock", 1.25) == "no saving on this machine: 1.25x the time"
    assert reading("fidelity", 0.5) == "fidelity: 0.50x the time"


def test_benchmark_candidates_spread_over_log_flops():
    """Candidates run from near the smallest genome to the limit, not all just under it."""
    import search_spaces
    from automl.experiments.candidates import stratified
    from automl.nn.flops import count_flops

    space = search_spaces.get("mobile")

    def cost(genome):
        return count_flops(space.build(genome, (1, 28, 28), 10), (1, 28, 28))

    genomes = stratified(space, np.random.default_rng(0), 5, 20e6, cost)
    flops = [cost(g) for g in genomes]
    assert flops == sorted(flops) and flops[-1] <= 20e6
    assert flops[0] < 0.25 * 20e6 < flops[-2]
