"""Batches trained by an executor (here threads, no Ray): results recorded as they arrive, in any
order, by the search's process; failures recorded; a bug stops the search with the trials in
flight FAILED as retryable."""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures

import pytest
from optuna.trial import TrialState

from automl.core import attrs
from automl.core.errors import CandidateFailed
from automl.core.pareto import Objective
from automl.engine.executor import Executor, Outcome, run_evaluator
from automl.engine.search import Search
from automl.store.study import StudyStore
from search_spaces.base import DictSpace

SPACE = {f"x{i}": list(range(5)) for i in range(4)}
OBJECTIVES = [Objective("f1", "min"), Objective("f2", "min")]


class ThreadExecutor(Executor):
    """Trains in threads of this process: the executor protocol without Ray."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.most_at_once = 0
        self._now = 0
        self._lock = threading.Lock()

    def open(self, evaluate) -> None:
        self.evaluate = evaluate
        self.pool = ThreadPoolExecutor(self.workers)

    def _run(self, genome, context) -> Outcome:
        with self._lock:
            self._now += 1
            self.most_at_once = max(self.most_at_once, self._now)
        try:
            return run_evaluator(self.evaluate, genome, context)
        finally:
            with self._lock:
                self._now -= 1

    def submit(self, genome, context) -> Future:
        return self.pool.submit(self._run, genome, context)

    def wait(self, handles, timeout: float) -> list:
        done, _ = wait_futures(handles, timeout=timeout, return_when=FIRST_COMPLETED)
        return list(done)

    def outcome(self, handle: Future) -> Outcome:
        return handle.result()

    def cancel(self, handle: Future) -> None:
        handle.cancel()

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def values(genome) -> dict[str, float]:
    return {"f1": genome["x0"] + genome["x1"], "f2": 8 - genome["x0"] + genome["x2"] * genome["x3"]}


def _front(result) -> list:
    return sorted((c.genome.key(), tuple(c.values.values())) for c in result.front)


def test_results_arriving_out_of_order_give_the_one_process_front(tmp_path):
    arrived, all_in, lock = [], threading.Event(), threading.Lock()

    def evaluate(genome):
        with lock:
            arrived.append(genome.key())
            first = len(arrived) <= 3
            if len(arrived) == 3:
                all_in.set()
        if first:  # the first three run at once, or this never returns in time
            assert all_in.wait(30), "the first three candidates did not train at the same time"
        time.sleep(0.01 * (4 - genome["x0"]))  # later genomes of a batch finish first
        return values(genome)

    alone = Search(DictSpace(SPACE), values, StudyStore.create("a", "memory", OBJECTIVES, {}),
                   budget=16, population=4, seed=7).run()
    executor = ThreadExecutor(3)
    store = StudyStore.create("p", f"sqlite:///{tmp_path}/p.db", OBJECTIVES, {})
    parallel = Search(DictSpace(SPACE), evaluate, store, budget=16, population=4, seed=7,
                      executor=executor, poll_seconds=0.05).run()
    assert _front(parallel) == _front(alone)
    assert [c.genome.key() for c in sorted(parallel.candidates, key=lambda c: c.genome.key())] == \
        [c.genome.key() for c in sorted(alone.candidates, key=lambda c: c.genome.key())]
    assert executor.most_at_once == 3  # as many as the workers, never more
    complete = [t.user_attrs[attrs.KEY] for t in store.trials((TrialState.COMPLETE,))]
    assert len(complete) == len(set(complete)) == 16


def test_a_candidate_failing_on_its_own_is_recorded_and_the_search_goes_on():
    def evaluate(genome):
        if genome["x0"] == 0:
            raise CandidateFailed("diverged")
        return values(genome)

    store = StudyStore.create("f", "memory", OBJECTIVES, {})
    result = Search(DictSpace(SPACE), evaluate, store, budget=12, population=4, seed=1,
                    executor=ThreadExecutor(2), poll_seconds=0.05).run()
    failed = [c for c in result.candidates if c.failed]
    assert len(result.candidates) == 12 and failed and all(c.failed == "diverged" for c in failed)
    assert all(StudyStore.fail_reason(t) == "diverged" for t in store.trials((TrialState.FAIL,)))


def test_a_bug_stops_the_search_and_leaves_the_trials_in_flight_retryable():
    calls = []
    lock = threading.Lock()

    def evaluate(genome):
        with lock:
            calls.append(genome.key())
            third = len(calls) == 3
        if third:
            raise ZeroDivisionError("a bug")
        time.sleep(0.3)
        return values(genome)

    store = StudyStore.create("b", "memory", OBJECTIVES, {})
    with pytest.raises(ZeroDivisionError):
        Search(DictSpace(SPACE), evaluate, store, budget=8, population=8, seed=0,
               executor=ThreadExecutor(4), poll_seconds=0.05).run()
    trials = store.trials()
    assert len(trials) == 4 and all(t.state == TrialState.FAIL for t in trials)  # nothing left RUNNING
    assert all(t.user_attrs[attrs.RETRY] for t in trials)
