import time
from pathlib import Path

import pytest
import torch
from optuna.trial import TrialState

from automl.core import attrs
from automl.core.errors import StudyError
from automl.core.genome import Genome
from automl.core.pareto import DEFAULT_OBJECTIVES
from automl.store.study import StudyStore, open_storage

CHOICES = {"a": [1, 2, 3], "b": ["x", "y"]}


def _genome(a=1, b="x"):
    return Genome("toy", (("a", a), ("b", b)))


def test_create_then_open_keeps_settings_and_objectives(in_tmp):
    StudyStore.create("s1", None, DEFAULT_OBJECTIVES, {"seed": 4})
    store = StudyStore.open("s1")
    assert store.settings["seed"] == 4
    assert [o.name for o in store.objectives] == ["accuracy", "flops"]
    assert (in_tmp / "studies" / "s1.db").exists()


def test_an_existing_study_is_never_overwritten(in_tmp):
    store = StudyStore.create("s1", None, DEFAULT_OBJECTIVES, {})
    trial = store.start(_genome(), CHOICES, {"key": _genome().key()})
    store.complete(trial, {"accuracy": 0.5, "flops": 10.0}, {})
    with pytest.raises(StudyError, match="already exists.*--resume"):
        StudyStore.create("s1", None, DEFAULT_OBJECTIVES, {})
    assert len(StudyStore.open("s1").trials()) == 1


def test_opening_a_missing_study_creates_nothing(in_tmp):
    with pytest.raises(StudyError, match="no study database"):
        StudyStore.open("ghost")
    assert not (in_tmp / "studies" / "ghost.db").exists()


@pytest.mark.parametrize("url", ["not-a-url", "nosuchdb://x/y", "postgresql://nobody@127.0.0.1:1/none"])
def test_bad_storage_urls_are_user_errors(in_tmp, url):
    with pytest.raises(StudyError):
        StudyStore.create("s1", url, DEFAULT_OBJECTIVES, {})


def test_bad_study_names_are_refused(in_tmp):
    with pytest.raises(StudyError, match="letters"):
        StudyStore.create("../evil", None, DEFAULT_OBJECTIVES, {})


def test_trials_record_params_attrs_and_weights(in_tmp):
    store = StudyStore.create("s1", None, DEFAULT_OBJECTIVES, {})
    genome = _genome(2, "y")
    trial = store.start(genome, CHOICES, {"key": genome.key(), "generation": 0})
    weights = {"w": torch.arange(6.0).reshape(2, 3)}
    frozen = store.complete(trial, {"accuracy": 0.9, "flops": 1e6}, {"params": 7}, weights)
    assert frozen.params == {"a": 2, "b": "y"}
    assert frozen.values == [0.9, 1e6]
    assert frozen.user_attrs["params"] == 7
    loaded = store.download_weights(StudyStore.open("s1").trials()[0])
    assert torch.equal(loaded["w"], weights["w"])


def test_a_trial_fails_only_when_its_heartbeat_stops(in_tmp):
    """A RUNNING trial whose heartbeat is fresh is left alone; once its beats stop for longer
    than the grace period it is FAILED (retryable, no reason of its own)."""
    store = StudyStore.create("s1", None, DEFAULT_OBJECTIVES, {}, heartbeat=(1, 1))
    done = store.start(_genome(1), CHOICES, {"key": _genome(1).key()})
    store.complete(done, {"accuracy": 0.5, "flops": 1.0}, {})
    running = store.start(_genome(2), CHOICES, {"key": _genome(2).key(), "worker": "w"})
    with store.heartbeat(running):
        time.sleep(2.5)
        assert store.fail_stale() == []  # alive: beating
    time.sleep(2.5)  # its process "died": no more beats
    assert store.fail_stale() == [running.number]
    states = [t.state for t in store.trials()]
    assert states == [TrialState.COMPLETE, TrialState.FAIL]
    assert StudyStore.fail_reason(store.trials()[1]).startswith("interrupted")
    assert set(store.finished_by_key()) == {_genome(1).key()}


def test_journal_trials_fail_by_the_heartbeat_attribute(in_tmp):
    """The journal storage has no Optuna heartbeats: the trial's heartbeat attribute stands in."""
    store = StudyStore.create("j", "journal:///studies/j.log", DEFAULT_OBJECTIVES, {}, heartbeat=(1, 1))
    running = store.start(_genome(2), CHOICES, {"key": _genome(2).key(), "worker": "w"})
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import create_trial

    store.study.add_trial(create_trial(  # a trial of the previous version: a key, no worker, no beat
        state=TrialState.RUNNING, params={"a": 3, "b": "x"}, user_attrs={"key": _genome(3).key()},
        distributions={g: CategoricalDistribution(c) for g, c in CHOICES.items()}))
    legacy = store.trials()[-1]
    with store.heartbeat(running):
        time.sleep(2.5)
        assert store.fail_stale() == []
    time.sleep(2.5)
    assert store.fail_stale() == [running.number]
    assert store.trials()[legacy.number].state == TrialState.RUNNING


def test_only_public_optuna_api_is_used():
    """Outside store/rows.py - the one module that writes Optuna's tables itself, with Optuna's
    public API as its fallback and tests comparing both - only public API."""
    root = Path(__file__).resolve().parents[3]
    for folder in ("automl/engine", "automl/store"):
        for path in (root / folder).rglob("*.py"):
            if path.name == "rows.py":
                continue
            source = path.read_text()
            assert "._storage" not in source and "._study_id" not in source and "_rdb" not in source, path


def test_engine_state_round_trips(in_tmp):
    store = StudyStore.create("s1", None, DEFAULT_OBJECTIVES, {})
    assert store.engine_state() is None
    store.save_engine_state({"generation": 2, "batch": [{"x": (1, 2), "parents": []}]})
    assert StudyStore.open("s1").engine_state() == {"generation": 2, "batch": [{"x": [1, 2], "parents": []}]}


def test_failures_of_their_own_are_not_retried(in_tmp):
    store = StudyStore.create("s1", None, DEFAULT_OBJECTIVES, {})
    trial = store.start(_genome(3), CHOICES, {"key": _genome(3).key()})
    store.fail(trial, "loss diverged", retry=False)
    interrupted = store.start(_genome(2), CHOICES, {"key": _genome(2).key()})
    store.fail(interrupted, "interrupted", retry=True)
    finished = store.finished_by_key()
    assert finished[_genome(3).key()].user_attrs["fail_reason"] == "loss diverged"
    assert finished[_genome(3).key()].user_attrs[attrs.RETRY] is False
    assert _genome(2).key() not in finished  # a retryable failure is trained again on resume


def test_pareto_lists_non_dominated_trials(in_tmp):
    store = StudyStore.create("s1", None, DEFAULT_OBJECTIVES, {})
    for a, (acc, flops) in zip([1, 2, 3], [(0.9, 10.0), (0.8, 20.0), (0.95, 30.0)]):
        trial = store.start(_genome(a), CHOICES, {"key": _genome(a).key()})
        store.complete(trial, {"accuracy": acc, "flops": flops}, {})
    assert [t.number for t in store.pareto()] == [0, 2]


def test_journal_storage(in_tmp):
    StudyStore.create("j", "journal:///studies/j.log", DEFAULT_OBJECTIVES, {"seed": 1})
    assert StudyStore.open("j", "journal:///studies/j.log").settings["seed"] == 1


def _open_at(url: str, start: float) -> str:
    while time.time() < start:  # all processes start creating the schema together
        pass
    try:
        open_storage(url)
        return "ok"
    except StudyError as error:
        return str(error)


def test_processes_opening_one_new_sqlite_file_at_once_all_succeed(tmp_path):
    """Two workers started together on a new database race to create its tables; neither fails."""
    import multiprocessing

    url = f"sqlite:///{tmp_path}/shared.db"
    for _ in range(3):
        (tmp_path / "shared.db").unlink(missing_ok=True)
        start = time.time() + 1.5
        with multiprocessing.get_context("fork").Pool(4) as pool:
            assert pool.starmap(_open_at, [(url, start)] * 4) == ["ok"] * 4
