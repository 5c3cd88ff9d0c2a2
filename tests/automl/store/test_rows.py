"""A trial's rows in one transaction: the same trial, genes and attributes as Optuna's own
writes, in a fraction of the SQL statements, on SQLite and PostgreSQL; other storages take
Optuna's public path."""

from __future__ import annotations

import uuid
from datetime import datetime

import optuna
import pytest
import sqlalchemy
from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState

from automl.store.rows import create_trial, finish_trial, trial_object, write_user_attrs
from automl.store.storage import open_storage

VALUES = {f"key{i}": {"value": i, "list": [i, i + 1]} for i in range(12)} | {"text": "ok", "none": None}


class Statements:
    """Counts SQL statements an engine executes."""

    def __init__(self, engine) -> None:
        self.engine, self.count = engine, 0

    def _seen(self, *args) -> None:
        self.count += 1

    def __enter__(self) -> Statements:
        sqlalchemy.event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc) -> None:
        sqlalchemy.event.remove(self.engine, "before_cursor_execute", self._seen)


def _trial(storage):
    study = optuna.create_study(storage=storage, study_name=f"s-{uuid.uuid4().hex[:8]}", directions=["maximize"])
    return study, study.ask()


def _check_one_transaction(storage) -> None:
    study, batched = _trial(storage)
    per_key = study.ask()
    with Statements(storage.engine) as fast:
        write_user_attrs(storage, batched, VALUES)
    with Statements(storage.engine) as slow:
        for key, value in VALUES.items():
            per_key.set_user_attr(key, value)
    stored = {t.number: t.user_attrs for t in study.get_trials()}
    assert stored[batched.number] == stored[per_key.number] == VALUES
    assert batched.user_attrs == VALUES  # the live trial answers what was written
    assert fast.count <= 6 < slow.count, (fast.count, slow.count)
    # changing attributes that exist and adding new ones, still in one go
    write_user_attrs(storage, batched, {"key0": "changed", "new": 1})
    assert study.get_trials()[batched.number].user_attrs == VALUES | {"key0": "changed", "new": 1}
    study.tell(batched, 1.0)
    with pytest.raises(RuntimeError):  # a finished trial is not changed, as with Optuna's own writes
        write_user_attrs(storage, batched, {"late": 1})


GENES = {f"gene{i}": CategoricalDistribution([8, 16, 24] if i % 2 else ["a", "b"]) for i in range(15)}
PARAMS = {name: d.choices[i % len(d.choices)] for i, (name, d) in enumerate(GENES.items())}


def _check_create(storage) -> None:
    study = optuna.create_study(storage=storage, study_name=f"s-{uuid.uuid4().hex[:8]}", directions=["maximize"])
    study_id = study._study_id
    template = FrozenTrial(number=0, state=TrialState.RUNNING, value=None, datetime_start=datetime.now(),
                           datetime_complete=None, params=PARAMS, distributions=GENES, user_attrs=VALUES,
                           system_attrs={}, intermediate_values={}, trial_id=0)
    with Statements(storage.engine) as slow:
        theirs = storage.create_new_trial(study_id, template_trial=template)
    with Statements(storage.engine) as fast:
        created = create_trial(storage, study_id, PARAMS, GENES, VALUES)
    ours = created._trial_id
    a, b = storage.get_trial(theirs), storage.get_trial(ours)
    assert (b.number, b.state, b.params, b.distributions, b.user_attrs) == (1, TrialState.RUNNING, PARAMS, GENES, VALUES)
    assert (a.params, a.distributions, a.user_attrs) == (b.params, b.distributions, b.user_attrs)
    assert fast.count <= 8 < 40 < slow.count, (fast.count, slow.count)
    assert _fields(created) == _fields(b)  # what it returns is what it stored
    with Statements(storage.engine) as again:  # the distributions were checked once: not again
        create_trial(storage, study_id, PARAMS, GENES, VALUES)
    assert again.count == fast.count - 1, (again.count, fast.count)
    other = dict(GENES, gene0=optuna.distributions.FloatDistribution(0, 1))
    with pytest.raises(ValueError):  # a gene whose distribution changed is refused, as Optuna does
        create_trial(storage, study_id, dict(PARAMS, gene0=0.5), other, {})
    assert len(study.get_trials()) == 3  # and nothing of it was written
    beating = create_trial(storage, study_id, PARAMS, GENES, {}, heartbeat=True)._trial_id
    from optuna.storages._rdb import models
    with storage.scoped_session() as session:
        assert models.TrialHeartbeatModel.where_trial_id(beating, session) is not None  # alive from its creation
        assert models.TrialHeartbeatModel.where_trial_id(ours, session) is None


def _fields(frozen: FrozenTrial) -> tuple:
    start = frozen.datetime_start.replace(microsecond=0)
    return (frozen._trial_id, frozen.number, frozen.state, start, frozen.values, frozen.params, frozen.distributions,
            frozen.user_attrs, frozen.system_attrs, frozen.intermediate_values)


def _check_trial_object(storage) -> None:
    """The trial object built from what was written is the one Optuna's constructor reads back."""
    study = optuna.create_study(storage=storage, study_name=f"s-{uuid.uuid4().hex[:8]}", directions=["maximize"])
    created = create_trial(storage, study._study_id, PARAMS, GENES, VALUES)
    with Statements(storage.engine) as reads:
        built = trial_object(study, created)
    read = optuna.trial.Trial(study, created._trial_id)
    assert reads.count == 0
    assert set(vars(built)) == set(vars(read))
    for name, value in vars(read).items():
        ours = vars(built)[name]
        assert (_fields(ours) == _fields(value)) if name == "_cached_frozen_trial" else ours == value, name
    built.set_user_attr("later", 1)  # it works as Optuna's does
    assert (built.number, built.params, built.user_attrs) == (read.number, read.params, VALUES | {"later": 1})


def _check_finish(storage) -> None:
    study = optuna.create_study(storage=storage, study_name=f"s-{uuid.uuid4().hex[:8]}",
                                directions=["maximize", "minimize"])
    told, ours, pruned, failed = (study.ask() for _ in range(4))
    for trial in (told, ours):
        trial.set_user_attr("seconds", 1.5)
    with Statements(storage.engine) as slow:
        study.tell(told, [0.9, float("inf")])
    with Statements(storage.engine) as fast:  # its last attributes (one new, one changed) with its end
        returned = finish_trial(storage, study, ours, TrialState.COMPLETE, [0.9, float("inf")],
                                {"seconds": 2.5, "flops": 10})
    stored = {t.number: t for t in study.get_trials()}
    for frozen in (returned, stored[ours.number]):
        assert (frozen.state, frozen.values, frozen.user_attrs) == (TrialState.COMPLETE, [0.9, float("inf")],
                                                                    {"seconds": 2.5, "flops": 10})
        assert frozen.datetime_complete is not None
    assert stored[told.number].values == stored[ours.number].values
    assert fast.count <= 4 < slow.count, (fast.count, slow.count)
    assert finish_trial(storage, study, pruned, TrialState.PRUNED).values is None
    finish_trial(storage, study, failed, TrialState.FAIL)
    assert [t.state for t in study.get_trials()][2:] == [TrialState.PRUNED, TrialState.FAIL]
    with pytest.raises(RuntimeError):  # a finished trial stays as it ended, attributes too
        finish_trial(storage, study, ours, TrialState.FAIL, None, {"seconds": 0.0})
    assert study.get_trials()[ours.number].user_attrs["seconds"] == 2.5


def test_sqlite_writes_a_trial_in_one_transaction_each(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'a.db'}")
    _check_create(storage)
    _check_trial_object(storage)
    _check_one_transaction(storage)
    _check_finish(storage)


def test_postgres_writes_a_trial_in_one_transaction_each(postgres_url):
    storage = open_storage(postgres_url)
    _check_create(storage)
    _check_trial_object(storage)
    _check_one_transaction(storage)
    _check_finish(storage)


def test_times_are_stored_as_optuna_stores_them(tmp_path, monkeypatch):
    """Optuna's trial table holds naive UTC: a trial created and ended here reads back with the
    times it was given, in a time zone that is not UTC."""
    import time

    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        storage = open_storage(f"sqlite:///{tmp_path / 'tz.db'}")
        study = optuna.create_study(storage=storage, study_name="tz", directions=["maximize"])
        created = create_trial(storage, study._study_id, PARAMS, GENES, {})
        ended = finish_trial(storage, study, trial_object(study, created), TrialState.COMPLETE, [1.0])
        stored = study.get_trials()[0]
        assert abs((stored.datetime_start - created.datetime_start).total_seconds()) < 1e-3
        assert abs((stored.datetime_complete - ended.datetime_complete).total_seconds()) < 1e-3
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


@pytest.mark.parametrize("kind", ["memory", "journal"])
def test_other_storages_write_per_key(tmp_path, kind):
    storage = open_storage("memory" if kind == "memory" else f"journal:///{tmp_path / 'j.log'}")
    study, trial = _trial(storage)
    write_user_attrs(storage, trial, VALUES)
    assert study.get_trials()[0].user_attrs == VALUES
    assert create_trial(storage, study._study_id, PARAMS, GENES, {}) is None  # the caller uses Optuna's API
    assert finish_trial(storage, study, trial, TrialState.COMPLETE, [1.0]) is None
