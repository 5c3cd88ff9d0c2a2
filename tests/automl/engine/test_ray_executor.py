"""Candidates trained as Ray tasks: the same search as one process, exactly once under faults.

One local Ray instance (4 CPUs) is shared by the module: starting Ray costs seconds.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

import automl
from automl.core import attrs
from automl.core.evaluation import Evaluation
from automl.core.pareto import Objective
from automl.engine.ray_executor import RayExecutor, start_local
from automl.engine.search import Search
from automl.store.study import StudyStore
from search_spaces.base import DictSpace

ray = pytest.importorskip("ray")
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module

SPACE = {f"x{i}": list(range(5)) for i in range(4)}
OBJECTIVES = [Objective("f1", "min"), Objective("f2", "min")]


@pytest.fixture(scope="module")
def local_ray():
    start_local(ray, 4)  # as a search starts its own: workers import this checkout's automl
    try:
        yield ray
    finally:
        ray.shutdown()


def values(genome) -> dict[str, float]:
    return {"f1": genome["x0"] + genome["x1"], "f2": 8 - genome["x0"] + genome["x2"] * genome["x3"]}


def _front(result) -> list:
    return sorted((c.genome.key(), tuple(c.values.values())) for c in result.front)


def test_workers_find_the_front_one_process_finds(local_ray):
    def evaluate(genome):
        return {"f1": genome["x0"] + genome["x1"], "f2": 8 - genome["x0"] + genome["x2"] * genome["x3"]}

    objectives = [("f1", "min"), ("f2", "min")]
    alone = automl.search(SPACE, evaluate, objectives, budget=24, population=6, seed=3)
    one = automl.search(SPACE, evaluate, objectives, budget=24, population=6, seed=3, workers=1)
    two = automl.search(SPACE, evaluate, objectives, budget=24, population=6, seed=3, workers=2)
    assert _front(one) == _front(two) == _front(alone) and len(_front(alone)) >= 2
    assert {c.genome.key() for c in two.candidates} == {c.genome.key() for c in alone.candidates}
    assert len(two.candidates) == 24


def test_optuna_samplers_ask_one_genome_per_worker(local_ray):
    result = automl.search(SPACE, values, [("f1", "min"), ("f2", "min")], budget=12, population=4, seed=1,
                           strategy="optuna-tpe", workers=3)
    keys = [c.genome.key() for c in result.candidates]
    assert len(keys) == 12 and len(set(keys)) == 12


class KillableEvaluator:
    """Deterministic values; the first call writes its process id and hangs until killed."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __call__(self, genome) -> dict[str, float]:
        with open(self.folder / "calls.log", "a") as log:
            log.write(genome.key() + "\n")
        if not (self.folder / "killed").exists():
            try:
                os.close(os.open(self.folder / "victim", os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                pass
            else:
                (self.folder / "victim").write_text(genome.key())
                (self.folder / "pid.tmp").write_text(str(os.getpid()))
                os.replace(self.folder / "pid.tmp", self.folder / "pid")
                time.sleep(120)  # until the test kills this worker process
        return values(genome)


def _kill_once(folder: Path, stop: threading.Event) -> None:
    while not stop.is_set():
        if (folder / "pid").exists():
            (folder / "killed").write_text("1")  # the retry must not hang again
            os.kill(int((folder / "pid").read_text()), signal.SIGKILL)
            return
        time.sleep(0.02)


def test_a_killed_worker_trains_its_candidate_again_and_nothing_twice(local_ray, tmp_path):
    reference = Search(DictSpace(SPACE), values, StudyStore.create("reference", "memory", OBJECTIVES, {}),
                       budget=16, population=4, seed=5).run()
    url = f"sqlite:///{tmp_path}/faults.db"
    store = StudyStore.create("faults", url, OBJECTIVES, {})
    stop = threading.Event()
    killer = threading.Thread(target=_kill_once, args=(tmp_path, stop), daemon=True)
    killer.start()
    try:
        result = Search(DictSpace(SPACE), KillableEvaluator(tmp_path), store, budget=16, population=4, seed=5,
                        executor=RayExecutor(2), poll_seconds=0.2).run()
    finally:
        stop.set()
    assert (tmp_path / "killed").exists(), "the worker was never killed"
    victim = (tmp_path / "victim").read_text()
    calls = (tmp_path / "calls.log").read_text().split()
    assert calls.count(victim) == 2 and len(calls) == 17  # trained again once, everything else once
    trials = StudyStore.open("faults", url).trials()
    complete = [t.user_attrs[attrs.KEY] for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == len(set(complete)) == 16  # nothing lost, nothing COMPLETE twice
    assert [t for t in trials if t.state != TrialState.COMPLETE] == []
    assert _front(result) == _front(reference)


class WarmEvaluator:
    """Stores one weight per trial; a warm-started child reads its parent's from the artifacts."""

    accepts_context = True

    def __call__(self, genome, context) -> Evaluation:
        import torch

        inherited = parent = None
        if context.warm_parent is not None:
            inherited, parent = float(context.load_weights()["w"][0]), context.warm_parent.number
        scores = values(genome)
        return Evaluation(scores, {"inherited": inherited, "parent": parent, "trial_seen": context.trial_number},
                          weights={"w": torch.full((2,), scores["f1"] * 10 + scores["f2"])})


def test_warm_starts_read_the_parents_weights_from_the_artifact_folder(local_ray, tmp_path):
    url = f"sqlite:///{tmp_path}/warm.db"
    store = StudyStore.create("warm", url, OBJECTIVES, {})
    Search(DictSpace(SPACE), WarmEvaluator(), store, budget=12, population=4, seed=2,
           executor=RayExecutor(2), poll_seconds=0.2).run()
    trials = {t.number: t for t in StudyStore.open("warm", url).trials((TrialState.COMPLETE,))}
    children = [t for t in trials.values() if t.user_attrs.get("inherited") is not None]
    assert children, "no candidate was warm-started"
    for trial in trials.values():
        assert trial.user_attrs["trial_seen"] == trial.number
        assert trial.user_attrs.get(attrs.WEIGHTS_ARTIFACT)
    for child in children:  # the weights of the very trial the engine chose as its parent
        parent = trials[child.user_attrs["parent"]]
        assert child.user_attrs["inherited"] == parent.values[0] * 10 + parent.values[1]


def test_a_search_without_workers_imports_no_ray(tmp_path):
    import subprocess

    code = ("import sys, automl; automl.search({'a': [1, 2, 3], 'b': [4, 5]}, lambda g: {'f': g['a'] * g['b']}, "
            "[('f', 'min')], budget=4); assert 'ray' not in sys.modules, 'ray imported'")
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(root)))
    assert done.returncode == 0, done.stderr
