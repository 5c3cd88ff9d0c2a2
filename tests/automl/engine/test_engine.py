"""The engine through the Python API: any space, any evaluator, no torch training."""

import numpy as np
import pytest

from automl import search
from automl.engine.search import STRATEGIES, Search
from automl.core.errors import AutomlError, CandidateFailed
from automl.core.pareto import DEFAULT_OBJECTIVES, Objective
from automl.store.study import StudyStore
from search_spaces.base import DictSpace

SPACE = {f"x{i}": list(range(6)) for i in range(6)}
OBJECTIVES = [("f1", "min"), ("f2", "min")]


def zdt1(genome):
    x = np.array([genome[f"x{i}"] for i in range(6)]) / 5
    g = 1 + 9 * x[1:].mean()
    return {"f1": float(x[0]), "f2": float(g * (1 - np.sqrt(x[0] / g)))}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_spends_the_budget_on_distinct_genomes(strategy):
    result = search(SPACE, zdt1, OBJECTIVES, budget=30, seed=0, strategy=strategy)
    keys = [c.genome.key() for c in result.candidates]
    assert len(keys) == 30 and len(set(keys)) == 30
    assert result.front and all(c.values is not None for c in result.front)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_same_seed_same_genomes(strategy):
    a = search(SPACE, zdt1, OBJECTIVES, budget=20, seed=5, strategy=strategy)
    b = search(SPACE, zdt1, OBJECTIVES, budget=20, seed=5, strategy=strategy)
    assert [c.genome for c in a.candidates] == [c.genome for c in b.candidates]


def test_front_is_non_dominated_and_evaluator_sees_plain_dicts():
    seen_types = set()

    def evaluate(genome):
        seen_types.add(type(genome))
        return zdt1(genome)

    result = search(SPACE, evaluate, OBJECTIVES, budget=40, seed=1)
    assert seen_types == {dict}
    values = np.array([[c.values["f1"], c.values["f2"]] for c in result.candidates])
    for c in result.front:
        p = np.array([c.values["f1"], c.values["f2"]])
        assert not np.any(np.all(values <= p, axis=1) & np.any(values < p, axis=1))


def test_offspring_record_their_parents():
    result = search(SPACE, zdt1, OBJECTIVES, budget=30, seed=0, population=10)
    later = [c for c in result.candidates if c.generation > 0]
    assert later and all(1 <= len(c.parents) <= 2 for c in later)
    numbers = {c.trial for c in result.candidates}
    assert all(p in numbers for c in later for p in c.parents)


def test_a_small_space_is_exhausted_without_repeats():
    result = search({"a": [1, 2], "b": [1, 2, 3]}, lambda g: {"f": g["a"] + g["b"], "h": -g["a"]},
                    [("f", "min"), ("h", "min")], budget=50, seed=0, population=4)
    keys = [c.genome.key() for c in result.candidates]
    assert len(keys) == len(set(keys)) == 6
    assert {(c.genome["a"], c.genome["b"]) for c in result.candidates} == {(a, b) for a in (1, 2) for b in (1, 2, 3)}


def test_missing_objective_is_a_user_error():
    with pytest.raises(AutomlError, match="no value for objective 'f2'"):
        search(SPACE, lambda g: {"f1": 1.0}, OBJECTIVES, budget=5)


def test_failed_candidates_are_recorded_and_the_search_goes_on():
    def evaluate(genome):
        if genome["x0"] == 0:
            raise CandidateFailed("loss diverged (nan)")
        return zdt1(genome)

    result = search(SPACE, evaluate, OBJECTIVES, budget=40, seed=0)
    failed = [c for c in result.candidates if c.failed]
    assert failed and len(result.candidates) == 40
    trials = {t.number: t for t in result.study.trials}
    assert all(trials[c.trial].state.name == "FAIL" for c in failed)
    assert trials[failed[0].trial].user_attrs["fail_reason"] == "loss diverged (nan)"
    assert all(c.genome["x0"] != 0 for c in result.front)


def test_constraints_keep_every_evaluated_genome_feasible(in_tmp):
    space = DictSpace(SPACE)
    store = StudyStore.create("c", "memory", [Objective("f1", "min"), Objective("f2", "min")], {})
    violation = lambda g: max(0.0, (g["x1"] + g["x2"]) - 4) / 4  # noqa: E731
    result = Search(space, lambda g: zdt1(dict(g)), store, budget=25, seed=0, violation=violation).run()
    assert all(c.genome["x1"] + c.genome["x2"] <= 4 for c in result.candidates)


def test_impossible_constraints_are_a_user_error():
    store = StudyStore.create("c", "memory", [Objective("f1", "min"), Objective("f2", "min")], {})
    with pytest.raises(AutomlError, match="no architecture"):
        Search(DictSpace(SPACE), lambda g: zdt1(dict(g)), store, budget=5, violation=lambda g: 1.0).run()


class Interrupting:
    """Evaluates normally, but is 'killed' (KeyboardInterrupt) at the n-th call."""

    def __init__(self, stop_at=None):
        self.calls = []
        self.stop_at = stop_at

    def __call__(self, genome):
        if self.stop_at is not None and len(self.calls) == self.stop_at:
            raise KeyboardInterrupt
        self.calls.append(genome.key())
        return zdt1(dict(genome))


@pytest.mark.parametrize("strategy", ["nsga2", "random"])
def test_resume_continues_the_same_search_without_re_evaluating(in_tmp, strategy):
    objectives = [Objective("f1", "min"), Objective("f2", "min")]
    space = DictSpace(SPACE)
    reference = Interrupting()
    store = StudyStore.create("ref", None, objectives, {})
    Search(space, reference, store, budget=30, seed=2, strategy=strategy, population=8).run()

    first = Interrupting(stop_at=13)
    store = StudyStore.create("crash", None, objectives, {})
    with pytest.raises(KeyboardInterrupt):
        Search(space, first, store, budget=30, seed=2, strategy=strategy, population=8).run()
    second = Interrupting()
    resumed = Search(space, second, StudyStore.open("crash"), budget=30, seed=2, strategy=strategy,
                     population=8).run()
    assert set(first.calls).isdisjoint(second.calls)  # nothing evaluated twice
    assert first.calls + second.calls == reference.calls  # the very same search
    assert len(resumed.candidates) == 30
    states = [t.state.name for t in StudyStore.open("crash").trials()]
    assert states.count("COMPLETE") == 30 and states.count("FAIL") == 1


def test_objective_directions_are_respected():
    result = search({"a": list(range(10))}, lambda g: {"acc": g["a"] / 10, "cost": float(g["a"])},
                    [("acc", "max"), ("cost", "min")], budget=10, seed=0, population=4)
    assert len(result.front) == 10  # every point trades accuracy for cost
    assert DEFAULT_OBJECTIVES[0].direction == "max"


@pytest.mark.parametrize("strategy", ["optuna-tpe", "optuna-nsga2"])
def test_resumed_optuna_strategies_count_what_is_stored(in_tmp, strategy):
    objectives = [Objective("f1", "min"), Objective("f2", "min")]
    first = Interrupting(stop_at=7)
    store = StudyStore.create("crash", None, objectives, {})
    with pytest.raises(KeyboardInterrupt):
        Search(DictSpace(SPACE), first, store, budget=15, seed=2, strategy=strategy, population=5).run()
    second = Interrupting()
    result = Search(DictSpace(SPACE), second, StudyStore.open("crash"), budget=15, seed=2, strategy=strategy,
                    population=5).run()
    assert len(first.calls) == 7 and len(second.calls) == 8
    assert set(first.calls).isdisjoint(second.calls)
    assert len(result.candidates) == 15


@pytest.mark.parametrize("strategy", ["random", "optuna-tpe"])
def test_time_budget_ends_a_search_whose_proposals_are_all_known(strategy, monkeypatch):
    """A sampler that keeps proposing stored genomes (answered without training) must still
    stop when the wall-clock budget is spent, not when the candidate budget is. The engine's
    clock is a counter here (each reading 0.01 s later), so the check does not time anything."""
    import signal
    import time
    from types import SimpleNamespace

    import automl.engine.search as engine

    readings = iter(range(10**9))
    monkeypatch.setattr(engine, "time", SimpleNamespace(perf_counter=lambda: 0.01 * next(readings),
                                                        sleep=time.sleep))

    def hung(signum, frame):
        raise TimeoutError("the search ignored its time budget")

    tiny = {"a": [0, 1], "b": [0, 1]}  # four genomes: every later proposal is a duplicate
    store = StudyStore.create("t", "memory", [Objective("f1", "min"), Objective("f2", "min")], {})
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(120)  # a guard against hanging, not a measurement
    try:
        result = Search(DictSpace(tiny), lambda g: {"f1": g["a"], "f2": g["b"]}, store, budget=10**6,
                        seed=0, strategy=strategy, time_budget=1.0).run()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert len({c.genome.key() for c in result.candidates}) == 4
    assert next(readings) < 1000  # stopped by the clock (100 readings of budget), not by the candidates


@pytest.mark.parametrize("strategy", ["optuna-tpe", "optuna-nsga2"])
def test_optuna_samplers_get_repaired_genomes_under_a_tight_constraint(strategy):
    """Most random genomes break this limit; Optuna's samplers cannot see why a trial failed,
    so the engine queues the repaired genome for them (as its own strategies repair theirs)."""
    store = StudyStore.create("c", "memory", [Objective("f1", "min"), Objective("f2", "min")], {})
    violation = lambda g: max(0.0, sum(g.values()) - 8) / 8  # noqa: E731
    result = Search(DictSpace(SPACE), lambda g: zdt1(dict(g)), store, budget=20, seed=0,
                    strategy=strategy, violation=violation).run()
    assert len(result.candidates) == 20
    assert all(sum(c.genome.values()) <= 8 for c in result.candidates)
    infeasible = [t for t in result.study.trials if t.user_attrs.get("infeasible")]
    assert all(t.state.name == "FAIL" for t in infeasible)


def test_the_dict_space_api_imports_no_torch():
    import subprocess
    import sys
    from pathlib import Path

    code = ("import automl, sys; automl.search({'a': [1, 2]}, lambda g: {'x': g['a'], 'y': -g['a']}, "
            "[('x','min'),('y','min')], 2); assert 'torch' not in sys.modules")
    root = Path(__file__).resolve().parents[3]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def test_a_study_of_the_previous_version_resumes(in_tmp):
    """No engine state and no heartbeats: its trials are read back (never retrained), its
    left-RUNNING trial is left alone (no process of ours owns it) and the search finishes."""
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import TrialState, create_trial

    space = DictSpace(SPACE)
    objectives = [Objective("f1", "min"), Objective("f2", "min")]
    store = StudyStore.create("old", None, objectives, {"strategy": "nsga2"})
    distributions = {g: CategoricalDistribution(c) for g, c in space.genes().items()}
    rng = np.random.default_rng(0)
    old = [space.sample(rng) for _ in range(9)]
    for i, genome in enumerate(old[:8]):
        values = zdt1(dict(genome))
        store.study.add_trial(create_trial(state=TrialState.COMPLETE, params=dict(genome), distributions=distributions,
                                           values=[values["f1"], values["f2"]],
                                           user_attrs={"key": genome.key(), "genome": space.format(genome),
                                                       "generation": i // 4, "parents": []}))
    store.study.add_trial(create_trial(state=TrialState.RUNNING, params=dict(old[8]), distributions=distributions,
                                       user_attrs={"key": old[8].key(), "generation": 2}))
    calls = Interrupting()
    result = Search(space, calls, StudyStore.open("old"), budget=20, seed=0, population=4).run()
    assert len(result.candidates) == 20 and not set(calls.calls) & {g.key() for g in old[:8]}
    trials = StudyStore.open("old").trials()
    assert trials[8].state == TrialState.RUNNING  # a legacy trial: never failed by us
    assert min(c.generation for c in result.candidates if c.trial > 8) == 2  # continues after generation 1
    assert StudyStore.open("old").pareto()


def test_a_resumed_search_reads_its_batch_from_the_study_not_from_the_seed():
    """The batch in progress comes from the study's engine state: a resume under another seed
    still evaluates exactly the genomes the interrupted generation had asked for."""
    objectives = [Objective("f1", "min"), Objective("f2", "min")]
    reference = Interrupting()
    Search(DictSpace(SPACE), reference, StudyStore.create("r", "memory", objectives, {}), budget=16, seed=2,
           population=8).run()
    first = Interrupting(stop_at=11)
    store = StudyStore.create("c", "memory", objectives, {})
    with pytest.raises(KeyboardInterrupt):
        Search(DictSpace(SPACE), first, store, budget=16, seed=2, population=8).run()
    assert store.engine_state()["generation"] == 1
    second = Interrupting()
    Search(DictSpace(SPACE), second, store, budget=16, seed=999, population=8).run()
    assert first.calls + second.calls == reference.calls


def test_automl_search_stays_the_function_after_the_engine_is_imported():
    """The engine's package is not called ``automl.search``: importing a submodule binds it on
    its parent, which would shadow the public ``automl.search`` function."""
    import automl
    import automl.engine.search  # noqa: F401

    first = automl.search({"a": [1, 2]}, lambda g: {"x": g["a"]}, [("x", "min")], 2)
    second = automl.search({"a": [1, 2]}, lambda g: {"x": g["a"]}, [("x", "min")], 2)
    assert callable(automl.search) and len(first.candidates) == len(second.candidates) == 2
