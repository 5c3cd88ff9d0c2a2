"""Search quality: nsga2 must beat random search and Optuna's samplers at equal budget."""

import numpy as np
import pytest

from automl.experiments.bench import bench_engine


def _assert_nsga2_wins(result):
    for problem, rows in result["problems"].items():
        ours = rows["nsga2"]["hypervolume_mean"]
        for strategy, row in rows.items():
            if strategy != "nsga2":
                assert ours > row["hypervolume_mean"], (problem, strategy, rows)


def test_nsga2_beats_the_baselines_quick():
    result = bench_engine(budget=100, seeds=3, problems=["zdt1", "nas"],
                          strategies=["nsga2", "random", "optuna-nsga2", "optuna-tpe"])
    _assert_nsga2_wins(result)


@pytest.mark.slow
def test_nsga2_beats_the_baselines_on_every_problem():
    _assert_nsga2_wins(bench_engine(budget=150, seeds=10))


def test_warmstart_benchmark_runs_quick():
    from automl.experiments.bench import bench_warmstart

    result = bench_warmstart(pairs=2, epochs=0.2, max_flops=8e6, fractions=(0.5, 1.0), default_fraction=0.5)
    assert len(result["rows"]) == 2 and result["epochs_ratio_median"] > 0
    assert -1 <= result["kendall_tau_at_default_fraction"] <= 1


def test_search_benchmark_runs_quick():
    from automl.experiments.bench import bench_search

    result = bench_search(time_budget=15, epochs=0.2, max_flops=8e6, population=4,
                          strategies=("nsga2-warm", "random"))
    assert set(result["summary"]) == {"nsga2-warm", "random"}
    assert result["summary"]["random"]["time_to_random_final"][0] is not None
    for row in result["runs"]["nsga2-warm"]:
        assert row["evaluations"] >= 1 and 0 <= row["final_hypervolume"] <= 1


def test_accelerator_benchmark_runs_quick():
    from automl.experiments.bench import bench_accelerators

    result = bench_accelerators(candidates=2, epochs=0.2, max_flops=8e6, names=["sparsegrad", "approx", "subset"])
    table = result["table"]
    assert set(table) == {"sparsegrad", "approx", "subset"}
    assert table["sparsegrad"]["reading"].startswith("emulated")
    assert table["approx"]["theoretical_training_flops_saved"] > 0
    # half the data: about half the FLOPs really skipped, and visibly fewer seconds
    assert 0.4 < table["subset"]["theoretical_training_flops_saved"] < 0.6
    assert all(r["epochs"] == pytest.approx(0.2, abs=0.02) for r in result["runs"]["none"])
    assert -1 <= result["seed_to_seed_kendall_tau"] <= 1
    assert len(result["reference_accuracy"]) == 2
    for row in [*table.values(), result["seed_noise"]]:
        assert -1 <= row["kendall_tau"] <= 1 and 0 <= row["front_recall"] <= 1


def test_accelerator_benchmark_takes_options_and_averages_over_seeds():
    """Specs with options are rows of their own; every row is the mean over the seeds, the
    ceiling comes from as many other plain seeds, single-seed tau from the first seeds."""
    import statistics

    from automl.experiments.bench import bench_accelerators
    from scipy.stats import kendalltau

    result = bench_accelerators(candidates=3, epochs=0.5, max_flops=4e6, seeds=3,
                                names=["subset:fraction=0.25", "subset:fraction=0.5,select=diverse"])
    table = result["table"]
    assert set(table) == {"subset:fraction=0.25", "subset:fraction=0.5,select=diverse"}
    saved = {spec: row["theoretical_training_flops_saved"] for spec, row in table.items()}
    assert saved["subset:fraction=0.25"] > saved["subset:fraction=0.5,select=diverse"] > 0.3
    assert result["runs"]["subset:fraction=0.5,select=diverse"][0]["report"]["select"] == "diverse"
    for spec, rows in result["runs"].items():
        for row in rows:
            assert len(row["accuracies"]) == 3 and row["accuracy"] == pytest.approx(statistics.mean(row["accuracies"]))
    assert result["reference_accuracy"] == [row["accuracy"] for row in result["runs"]["none"]]
    assert all(len(n) == 3 for n in result["noise_runs"])
    assert result["noise_accuracy"] == pytest.approx([statistics.mean(n) for n in result["noise_runs"]])
    quarter = [row["accuracies"][0] for row in result["runs"]["subset:fraction=0.25"]]
    plain = [row["accuracies"][0] for row in result["runs"]["none"]]
    assert table["subset:fraction=0.25"]["kendall_tau_single_seed"] == pytest.approx(
        kendalltau(quarter, plain).statistic, nan_ok=True)


def test_benchmark_candidates_spread_over_log_flops():
    """Candidates run from near the smallest genome to the limit, not all just under it."""
    import search_spaces
    from automl.experiments.bench import _stratified_parents
    from automl.nn.flops import count_flops

    space = search_spaces.get("mobile")

    def cost(genome):
        return count_flops(space.build(genome, (1, 28, 28), 10), (1, 28, 28))

    genomes = _stratified_parents(space, np.random.default_rng(0), 5, 20e6, cost)
    flops = [cost(g) for g in genomes]
    assert flops == sorted(flops) and flops[-1] <= 20e6
    assert flops[0] < 0.25 * 20e6 < flops[-2]
