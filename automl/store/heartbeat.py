"""Heartbeats: a RUNNING trial is FAILED only when its own process is gone.

Each process beats for the trial it trains from a background thread (Optuna's heartbeats
fire by themselves only inside ``Study.optimize``; the engine uses ask/tell). On RDB storages
(SQLite, PostgreSQL) the beat is Optuna's ``record_heartbeat`` and stale trials are failed by
``optuna.storages.fail_stale_trials``. Storages without Optuna heartbeats (the journal file in
Optuna 5) get the documented equivalent: the beat is the trial's ``heartbeat`` user attribute
(``time.time()``) and a trial whose beat is older than the grace period is told FAIL through
the public ``study.tell(number, state=FAIL)``. A trial killed while it was being created
(before its first beat and its genome key) is failed once it is older than the grace period.
Nothing else ever fails a RUNNING trial, so a
process that joins or resumes leaves its peers' live trials alone. A FAILED trial without a
``fail_reason`` is one whose process stopped; its genome is trained again.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

import optuna
from optuna.trial import TrialState

from automl.core import attrs

HEARTBEAT_INTERVAL = 5  # seconds between beats
GRACE_PERIOD = 20  # seconds without a beat after which a trial's process is taken as gone
STOPPED = "interrupted: its process stopped (no heartbeat)"


def optuna_heartbeat(storage: optuna.storages.BaseStorage | None) -> bool:
    """Whether the storage records Optuna heartbeats (an RDB storage opened with an interval)."""
    return isinstance(storage, optuna.storages.RDBStorage) and storage.get_heartbeat_interval() is not None


class Heartbeat:
    """Beats for one RUNNING trial while the ``with`` block runs (a daemon thread)."""

    def __init__(self, store, trial: optuna.trial.Trial) -> None:
        self.store = store
        self.trial = trial
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._trial_id: int | None = None

    def beat(self) -> None:
        if optuna_heartbeat(self.store.storage):
            if self._trial_id is None:
                self._trial_id = getattr(self.trial, "_trial_id", None)
            if self._trial_id is None:  # a trial object without its id (not one of Optuna's)
                self._trial_id = self.store.storage.get_trial_id_from_study_id_trial_number(
                    self.store.study_id, self.trial.number)
            self.store.storage.record_heartbeat(self._trial_id)
        else:
            self.trial.set_user_attr(attrs.HEARTBEAT, time.time())

    def _run(self) -> None:
        while not self._stop.wait(self.store.heartbeat_interval):
            try:
                self.beat()
            except Exception:  # a busy database: the next beat tries again
                pass

    def __enter__(self) -> Heartbeat:
        if self.store.shared:
            if getattr(self.store, "just_beaten", None) != self.trial.number:
                self.beat()  # the first beat before any work, so peers never see a silent claim
            self.store.just_beaten = None
            self._thread = threading.Thread(target=self._run, name=f"heartbeat-{self.trial.number}", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def fail_stale(store) -> list[int]:
    """FAIL the RUNNING trials whose process is gone; their numbers."""
    if not store.shared:
        return []  # an in-memory study lives in one process: every RUNNING trial is ours
    running = [t.number for t in store.trials((TrialState.RUNNING,))]
    if not running:
        return []
    now = time.time()
    for trial in store.trials((TrialState.RUNNING,)):  # killed while being created: no key, no beat
        start = trial.datetime_start.timestamp() if trial.datetime_start else now
        if attrs.KEY not in trial.user_attrs and now - start > store.grace_period:
            store.study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
    if optuna_heartbeat(store.storage):
        optuna.storages.fail_stale_trials(store.study)
    else:
        for trial in store.trials((TrialState.RUNNING,)):
            last = trial.user_attrs.get(attrs.HEARTBEAT)
            if last is None:
                if attrs.WORKER not in trial.user_attrs:
                    continue  # not ours: a trial of an earlier version or of another tool
                last = trial.datetime_start.timestamp() if trial.datetime_start else now
            if now - float(last) > store.grace_period:
                store.study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
    states = {t.number: t.state for t in store.trials()}
    return [n for n in running if states.get(n) == TrialState.FAIL]


def seconds_since(moment: datetime | None) -> float:
    """Seconds since an Optuna timestamp (naive local time); infinite when there is none."""
    return float("inf") if moment is None else (datetime.now() - moment).total_seconds()
