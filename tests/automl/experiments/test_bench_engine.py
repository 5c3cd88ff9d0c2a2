"""Search quality: nsga2 must beat random search and Optuna's samplers at equal budget."""

import pytest

from automl.experiments.engine import bench_engine


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
