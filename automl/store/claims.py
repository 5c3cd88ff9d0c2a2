"""Claims: which process trains a genome when several share one study.

A process claims a genome by opening a RUNNING trial for it (params = the genome, ``key`` and
``worker`` attributes). Two processes may claim one genome at the same moment; the rule that
settles it needs no lock: the claim with the smaller trial number wins, where a claim is a
live RUNNING trial or a finished result (COMPLETE, PRUNED, or FAILED for a reason of its own).
A trial that was just created and has not yet recorded its key is waited for (briefly), so
every process sees the same claims below its own number and all agree on the winner.
"""

from __future__ import annotations

import time

from optuna.trial import FrozenTrial, TrialState

from automl.core import attrs
from automl.store.heartbeat import seconds_since

SETTLE_SECONDS = 10.0  # how long a new trial may take to record its key before it is ignored


def is_live_claim(trial: FrozenTrial) -> bool:
    """A RUNNING trial of a process of this version (earlier versions recorded no worker, and
    their trials left RUNNING by a crash claim nothing)."""
    return trial.state == TrialState.RUNNING and attrs.KEY in trial.user_attrs and (
        attrs.WORKER in trial.user_attrs or seconds_since(trial.datetime_start) < SETTLE_SECONDS)


def holds_result(trial: FrozenTrial) -> bool:
    """A finished trial whose genome needs no new training."""
    a = trial.user_attrs
    if attrs.KEY not in a or a.get(attrs.DUPLICATE_OF) is not None or a.get(attrs.INFEASIBLE):
        return False
    if trial.state == TrialState.FAIL:
        return not a.get(attrs.RETRY, True)
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED)


def running_elsewhere(trials: list[FrozenTrial], key: str, worker: str) -> FrozenTrial | None:
    """The live claim of another process on ``key``, if any."""
    for trial in trials:
        if is_live_claim(trial) and trial.user_attrs[attrs.KEY] == key and trial.user_attrs.get(attrs.WORKER) != worker:
            return trial
    return None


def winner(store, number: int, key: str, poll: float = 0.05) -> int | None:
    """The trial that holds ``key`` ahead of trial ``number`` (None: ``number`` wins)."""
    return winners(store, [(number, key)], poll)[0]


def winners(store, claimed: list[tuple[int, str]], poll: float = 0.05) -> list[int | None]:
    """:func:`winner` for several claims (trial number, key), settled on one read of the study."""
    if not claimed:
        return []
    last = max(number for number, _ in claimed)
    while True:
        trials = store.trials()
        unsettled = [t for t in trials if t.number < last and t.state == TrialState.RUNNING
                     and attrs.KEY not in t.user_attrs and seconds_since(t.datetime_start) < SETTLE_SECONDS]
        if not unsettled:
            break
        time.sleep(poll)
    found = []
    for number, key in claimed:
        rivals = [t.number for t in trials if t.number < number and t.user_attrs.get(attrs.KEY) == key
                  and (is_live_claim(t) or holds_result(t))]
        found.append(min(rivals) if rivals else None)
    return found
