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
    lines = []
    result = bench_engine(budget=100, seeds=3, problems=["zdt1", "nas"],
                          strategies=["nsga2", "random", "optuna-nsga2", "optuna-tpe"], progress=lines.append)
    assert len(lines) == 2 * 4 * 3 and lines[0].startswith("zdt1 nsga2 seed 1/3: hypervolume ")
    _assert_nsga2_wins(result)
    met = result["targets"]["met"]
    assert met["ahead_of_optuna-nsga2"] and met["ahead_of_optuna-tpe"]
    gaps = [rows["nsga2"]["worst_gap"] for rows in result["problems"].values()]
    assert met["worst_gap"] == all(gap <= result["targets"]["worst_gap_at_most"] for gap in gaps)
    for rows in result["problems"].values():
        row = rows["nsga2"]
        assert row["worst_gap"] == pytest.approx(1 - row["hypervolume_worst"] / row["hypervolume_median"])


@pytest.mark.slow
def test_nsga2_beats_the_baselines_on_every_problem():
    _assert_nsga2_wins(bench_engine(budget=150, seeds=10))
