"""Many processes on one study: a SIGKILLed worker's trial is retried, a live one's never touched."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from optuna.trial import TrialState

from automl.core import attrs
from automl.core.pareto import Objective
from automl.store.heartbeat import STOPPED
from automl.store.study import StudyStore

ROOT = Path(__file__).resolve().parents[3]
BEATS = (1, 3)  # heartbeat interval and grace period, seconds
SPACE = {f"x{i}": list(range(5)) for i in range(4)}
OBJECTIVES = [Objective("f1", "min"), Objective("f2", "min")]

WORKER = textwrap.dedent('''
    import os, sys, time
    from pathlib import Path
    from automl.engine.search import Search
    from automl.store.study import StudyStore
    from search_spaces.base import DictSpace

    role, folder = sys.argv[1], Path(sys.argv[2])
    calls = []

    def evaluate(genome):
        calls.append(genome.key())
        with open(folder / "trained.log", "a") as log:
            log.write(f"{role} {genome.key()}\\n")
        (folder / f"{role}-running").write_text(genome.key())
        if role == "A" and len(calls) == 2:
            time.sleep(600)  # hangs mid-trial until it is killed
        time.sleep(0.3)
        (folder / f"{role}-running").unlink()
        return {"f1": genome["x0"] + genome["x1"], "f2": 8 - genome["x0"] + genome["x2"] + genome["x3"]}

    store = StudyStore.open("shared", f"sqlite:///{folder}/shared.db", heartbeat=(1, 3))
    Search(DictSpace(%r), evaluate, store, budget=12, population=4, seed=3, poll_seconds=0.2).run()
''' % (SPACE,))


def _start(role: str, folder: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, str(folder / "worker.py"), role, str(folder)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(path: Path, process: subprocess.Popen, seconds: float = 600) -> None:  # a hang guard, not a timing
    deadline = time.time() + seconds
    while not path.exists():
        assert process.poll() is None, process.communicate()[0]
        assert time.time() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)


def test_two_processes_one_killed_mid_trial(tmp_path):
    (tmp_path / "worker.py").write_text(WORKER)
    url = f"sqlite:///{tmp_path}/shared.db"
    StudyStore.create("shared", url, OBJECTIVES, {}, heartbeat=BEATS)
    a = _start("A", tmp_path)
    b = None
    try:
        _wait_for(tmp_path / "A-running", a)  # A's first trial ...
        while len((tmp_path / "trained.log").read_text().splitlines()) < 2:  # ... then its second, which hangs
            assert a.poll() is None, a.communicate()[0]
            time.sleep(0.05)
        hung = (tmp_path / "trained.log").read_text().splitlines()[-1].split()[1]
        b = _start("B", tmp_path)
        _wait_for(tmp_path / "B-running", b)  # B is mid-trial, A's trial RUNNING and alive
        time.sleep(BEATS[1] + 1)  # longer than the grace period: A's heartbeat must keep its trial alive
        live = {t.user_attrs.get(attrs.KEY): t.state for t in StudyStore.open("shared", url).trials()}
        assert live[hung] == TrialState.RUNNING
        a.kill()  # SIGKILL: no cleanup, A's trial stays RUNNING until its heartbeat goes stale
        a.wait(timeout=30)
        output, _ = b.communicate(timeout=300)
        assert b.returncode == 0, output
    finally:
        for process in (a, b):
            if process is not None and process.poll() is None:
                process.kill()
    trials = StudyStore.open("shared", url).trials()
    complete = [t.user_attrs[attrs.KEY] for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == len(set(complete)) == 12  # the search finished; no genome COMPLETE twice
    killed = [t for t in trials if t.user_attrs.get(attrs.KEY) == hung and t.state == TrialState.FAIL]
    assert len(killed) == 1 and StudyStore.fail_reason(killed[0]) == STOPPED
    assert hung in complete
    trained = [line.split() for line in (tmp_path / "trained.log").read_text().splitlines()]
    assert [role for role, key in trained if key == hung] == ["A", "B"]  # trained once more, by B
    b_worker = {t.user_attrs[attrs.WORKER] for t in trials if t.user_attrs.get(attrs.KEY) in
                {key for role, key in trained if role == "B"} and t.state == TrialState.COMPLETE}
    assert len(b_worker) == 1
    others = [t for t in trials if t.state == TrialState.FAIL and t.user_attrs.get(attrs.WORKER) in b_worker]
    assert not [t for t in others if attrs.DUPLICATE_OF not in t.user_attrs]  # none of B's trials failed
    assert not [t for t in trials if t.state == TrialState.RUNNING]
