"""bench search on an evaluation budget: no wall-clock budget, so a loaded machine cannot
make it fail; with --accelerate, fronts are re-scored by plain training."""

import pytest

from automl.core.errors import AutomlError
from automl.experiments.search import bench_search


def test_search_benchmark_runs_quick():
    result = bench_search(time_budget=None, evaluations=5, epochs=0.2, max_flops=8e6, population=4,
                          strategies=("nsga2-warm", "random"))
    assert set(result["summary"]) == {"nsga2-warm", "random"}
    assert result["summary"]["random"]["time_to_random_final"][0] is not None
    for rows in result["runs"].values():
        for row in rows:
            assert row["evaluations"] == 5 and 0 < row["final_hypervolume"] <= 1
            assert len(row["curve"]) == 5 and row["front"]
            assert "rescored_hypervolume" not in row  # re-scoring only with accelerate


def test_search_benchmark_needs_a_budget():
    with pytest.raises(AutomlError, match="needs a budget"):
        bench_search(time_budget=None, evaluations=None)


def test_accelerated_search_is_rescored_by_plain_training():
    """Both runs' fronts are re-scored by plain training and paired per seed."""
    result = bench_search(time_budget=None, evaluations=3, epochs=0.2, max_flops=6e6, population=3,
                          strategies=("random",), accelerate="subset")
    plain, fast = result["runs"]["random"][0], result["runs"]["random + subset"][0]
    assert fast["evaluations"] == 3 and 0 < fast["rescored_hypervolume"] <= 1 and 0 < plain["rescored_hypervolume"] <= 1
    row = result["accelerated"]["random"]
    assert row["rescored_hypervolume"] == [[plain["rescored_hypervolume"], fast["rescored_hypervolume"]]]
    assert row["rescored_gain_mean"] == pytest.approx(fast["rescored_hypervolume"] - plain["rescored_hypervolume"])


def test_rescoring_uses_fresh_seeds_and_averages_them(monkeypatch):
    """A front member is re-trained under seeds the search did not use (under its own seed a
    plain front would score its own lucky values again), the accuracies averaged, and a genome
    on two fronts is trained once."""
    from types import SimpleNamespace

    import numpy as np

    import automl.experiments.search as module
    from automl.data import load_dataset
    from automl.engine.search import candidate_seed

    space = module.search_spaces.get("mobile")
    genome = space.decode(np.zeros(len(space.genes()), dtype=int))
    seeds = []

    def fake_train(model, data, config, seed):
        seeds.append(seed)
        return SimpleNamespace(accuracy=0.5 + 0.1 * len(seeds))

    monkeypatch.setattr(module, "train", fake_train)
    member = SimpleNamespace(genome=genome, values={"accuracy": 0.99, "flops": 3e6})
    known: dict[str, float] = {}
    points = module._rescored(space, load_dataset(), [member], 0.1, 7, known)
    assert len(seeds) == module.RESCORE_SEEDS == 2 and candidate_seed(7, genome) not in seeds
    assert len(set(seeds)) == 2 and points == [(pytest.approx(0.65), 3e6)]
    assert module._rescored(space, load_dataset(), [member], 0.1, 7, known) == points and len(seeds) == 2


def test_accelerated_runs_are_labelled_and_summarised_side_by_side(monkeypatch):
    """The bookkeeping on known numbers (no training): one plain and one accelerated run per
    strategy and seed, re-scored hypervolumes paired, the gain their difference."""
    from types import SimpleNamespace

    import numpy as np

    import automl.experiments.search as module

    space = module.search_spaces.get("mobile")
    genome = space.decode(np.zeros(len(space.genes()), dtype=int))
    accuracy = {None: 0.6, "subset": 0.5}

    def fake_search(space, data, strategy, seed, settings, accelerate, folder):
        done = SimpleNamespace(genome=genome, values={"accuracy": accuracy[accelerate], "flops": 5e6},
                               elapsed=1.0, attrs={})
        return SimpleNamespace(candidates=[done], front=[done])

    monkeypatch.setattr(module, "_one_search", fake_search)
    monkeypatch.setattr(module, "warm_up", lambda *args, **kwargs: None)
    monkeypatch.setattr(module, "_rescored", lambda space, data, front, epochs, seed, known: [
        (0.8 if c.values["accuracy"] == 0.6 else 0.9, c.values["flops"]) for c in front])
    result = bench_search(time_budget=60, evaluations=None, strategies=("random",), accelerate="subset")
    assert set(result["runs"]) == {"random", "random + subset"}
    assert result["runs"]["random"][0]["final_hypervolume"] == pytest.approx(0.6 * 0.5)  # (1 - (1 - 0.6)) x (1 - 5/10)
    row = result["accelerated"]["random"]
    assert row["rescored_hypervolume"] == [pytest.approx([0.8 * 0.5, 0.9 * 0.5])]
    assert row["rescored_gain_mean"] == pytest.approx(0.05)
    assert result["summary"]["random + subset"]["rescored_hypervolume_mean"] == pytest.approx(0.45)


def test_machine_calibration_is_paid_before_any_timed_run(monkeypatch):
    """The cost model's one-off calibration (a trial records its prediction) happens in the
    warm-up, not inside the first strategy's wall-clock budget."""
    from types import SimpleNamespace

    import automl.experiments.search as module

    calls = []
    monkeypatch.setattr(module, "warm_up", lambda *args, **kwargs: calls.append("warm-up"))
    monkeypatch.setattr(module, "calibration_for", lambda device, **kwargs: calls.append("calibration"))

    def fake_search(space, data, strategy, seed, settings, accelerate, folder):
        calls.append(strategy)
        return SimpleNamespace(candidates=[], front=[])

    monkeypatch.setattr(module, "_one_search", fake_search)
    bench_search(time_budget=60, evaluations=None, strategies=("random", "nsga2"))
    assert calls == ["warm-up", "calibration", "random", "nsga2"]
