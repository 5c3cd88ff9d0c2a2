"""A trial's rows written in one transaction: its creation with genes and attributes, later
attributes, and its end (state and values).

Why: through Optuna's storage API a new trial with 15 genes is about 70 SQL statements (for
each gene: read the trial, look up an earlier trial's distribution of that gene, insert),
and every attribute set afterwards one transaction of its own (read the trial, upsert,
commit), and ``study.tell`` reads the whole trial back twice around its one write. On SQLite
and PostgreSQL those round trips were most of what a trial cost the search besides training
(``automl bench scale``: 105 statements, 35 ms on SQLite and 65 ms on PostgreSQL per trial on
an idle machine). Here a new trial is one transaction of a few statements (genes and
attributes inserted in bulk; the distributions checked against earlier trials' in one
query), attributes set later one more, and its end one more (the finished trial is built
from what the process already holds, not read back).

This writes through Optuna's table models (``optuna.storages._rdb.models``), which are not
public API: it does what ``RDBStorage.create_new_trial`` and ``set_trial_user_attr`` do, row
for row, and where the models are not what it expects it returns None and the callers take
Optuna's public path. Tests compare both paths' rows. Other storages (in-memory, journal)
always take the public path.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import optuna
import sqlalchemy
from optuna.distributions import BaseDistribution, check_distribution_compatibility, distribution_to_json
from optuna.distributions import json_to_distribution
from optuna.trial import FrozenTrial, TrialState


def _models():
    """Optuna's table models, or None where they moved (an Optuna this was not written for)."""
    try:
        from optuna.storages._rdb import models

        (models.StudyModel.find_or_raise_by_id, models.TrialModel.count_past_trials,  # noqa: B018
         models.TrialParamModel, models.TrialUserAttributeModel, models.TrialHeartbeatModel,
         models.TrialValueModel.value_to_stored_repr)
        return models
    except (ImportError, AttributeError):  # pragma: no cover
        return None


@contextmanager
def _session(storage: optuna.storages.RDBStorage):
    session = storage.scoped_session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def create_trial(storage: optuna.storages.BaseStorage | None, study_id: int, params: Mapping[str, Any],
                 distributions: Mapping[str, BaseDistribution], user_attrs: Mapping[str, Any],
                 heartbeat: bool = False) -> int | None:
    """A RUNNING trial with its params and user attributes (and, with ``heartbeat``, its first
    heartbeat, as ``RDBStorage.record_heartbeat`` writes it), created in one transaction on an
    SQL storage; its trial id, or None where the caller must use Optuna's public API."""
    models = _models() if isinstance(storage, optuna.storages.RDBStorage) else None
    if models is None:
        return None
    with _session(storage) as session:
        models.StudyModel.find_or_raise_by_id(study_id, session, for_update=True)  # trial numbers: one at a time
        _check_distributions(session, models, study_id, distributions)
        trial = models.TrialModel(study_id=study_id, number=None, state=TrialState.RUNNING,
                                  datetime_start=datetime.now())
        session.add(trial)
        session.flush()
        rows = [{"trial_id": trial.trial_id, "param_name": name, "distribution_json": distribution_to_json(d),
                 "param_value": d.to_internal_repr(params[name])} for name, d in distributions.items()]
        if rows:
            session.execute(sqlalchemy.insert(models.TrialParamModel), rows)
        _insert_attrs(session, models, trial.trial_id, user_attrs)
        if heartbeat:
            session.add(models.TrialHeartbeatModel(trial_id=trial.trial_id))
        trial.number = trial.count_past_trials(session)
        return trial.trial_id


def _check_distributions(session, models, study_id: int, distributions: Mapping[str, BaseDistribution]) -> None:
    """Each gene's distribution against the one an earlier trial of the study stored for it
    (one query for all genes), as Optuna checks it per gene."""
    first = (sqlalchemy.select(models.TrialParamModel.param_name, sqlalchemy.func.min(models.TrialParamModel.param_id))
             .join(models.TrialModel).where(models.TrialModel.study_id == study_id)
             .where(models.TrialParamModel.param_name.in_(list(distributions)))
             .group_by(models.TrialParamModel.param_name).subquery())
    stored = session.execute(sqlalchemy.select(models.TrialParamModel.param_name,
                                               models.TrialParamModel.distribution_json)
                             .join(first, models.TrialParamModel.param_id == first.c[1])).all()
    for name, text in stored:
        check_distribution_compatibility(json_to_distribution(text), distributions[name])


def _insert_attrs(session, models, trial_id: int, values: Mapping[str, Any]) -> None:
    rows = [{"trial_id": trial_id, "key": key, "value_json": json.dumps(value)} for key, value in values.items()]
    if rows:
        session.execute(sqlalchemy.insert(models.TrialUserAttributeModel), rows)  # one executemany


def write_user_attrs(storage: optuna.storages.BaseStorage | None, trial: optuna.trial.Trial,
                     values: Mapping[str, Any]) -> None:
    """Set ``values`` as user attributes of the running ``trial`` (JSON-serialisable values),
    in one transaction where the storage is SQL, else one public call per key."""
    if not values:
        return
    if not isinstance(storage, optuna.storages.RDBStorage) or not _write_sql(storage, trial._trial_id, values):
        for key, value in values.items():
            trial.set_user_attr(key, value)
        return
    cached = getattr(trial, "_cached_frozen_trial", None)  # what trial.user_attrs answers from
    if cached is not None:
        cached.user_attrs.update(values)


def _write_sql(storage: optuna.storages.RDBStorage, trial_id: int, values: Mapping[str, Any]) -> bool:
    """New attributes inserted in bulk and existing ones updated, in one commit; False
    (nothing written) where the models are not as expected or another session (the heartbeat
    thread) inserted one of the keys first."""
    models = _models()
    if models is None:
        return False
    from sqlalchemy.exc import IntegrityError

    try:
        with _session(storage) as session:
            trial = models.TrialModel.find_or_raise_by_id(trial_id, session)
            storage.check_trial_is_updatable(trial_id, trial.state)
            existing = {row.key: row for row in models.TrialUserAttributeModel.where_trial_id(trial_id, session)}
            _insert_attrs(session, models, trial_id, {k: v for k, v in values.items() if k not in existing})
            for key, value in values.items():
                if key in existing:
                    existing[key].value_json = json.dumps(value)
    except IntegrityError:
        return False
    return True


def finish_trial(storage: optuna.storages.BaseStorage | None, study: optuna.Study, trial: optuna.trial.Trial,
                 state: TrialState, values: list[float] | None = None) -> FrozenTrial | None:
    """End a running trial (COMPLETE with ``values``, PRUNED or FAIL) in one transaction on an
    SQL storage, as ``study.tell`` would (the sampler's ``after_trial`` hook included); the
    finished trial, or None where the caller must use ``study.tell``. ``values`` are the
    objectives' floats, already checked by the caller."""
    models = _models() if isinstance(storage, optuna.storages.RDBStorage) else None
    cached = getattr(trial, "_cached_frozen_trial", None)
    if models is None or cached is None:
        return None
    frozen, completed = copy.deepcopy(cached), datetime.now()
    study.sampler.after_trial(study, frozen, state, values)
    with _session(storage) as session:
        row = models.TrialModel.find_or_raise_by_id(trial._trial_id, session, for_update=True)
        storage.check_trial_is_updatable(trial._trial_id, row.state)
        if values:
            stored = [models.TrialValueModel.value_to_stored_repr(v) for v in values]
            session.execute(sqlalchemy.insert(models.TrialValueModel),
                            [{"trial_id": trial._trial_id, "objective": i, "value": value, "value_type": kind}
                             for i, (value, kind) in enumerate(stored)])
        row.state, row.datetime_complete = state, completed
    frozen.state, frozen.datetime_complete = state, completed
    frozen.values = list(values) if values else None
    return frozen
