"""A trial's rows written in one transaction each: its creation with genes and attributes,
attributes set while it runs, and its end (last attributes, state and values).

Why: through Optuna's storage API a new trial with 15 genes is about 70 SQL statements (for
each gene: read the trial, look up an earlier trial's distribution of that gene, insert),
Optuna's ``Trial`` object reads the new trial back (six more), every attribute set afterwards
is one transaction of its own (read the trial, upsert, commit), and ``study.tell`` reads the
whole trial back twice around its one write. On SQLite and PostgreSQL those round trips were
most of what a trial cost the search besides training (``automl bench scale``: 105 statements,
35 ms on SQLite and 65 ms on PostgreSQL per trial on an idle machine). Here a new trial is
one transaction of seven statements (genes and attributes inserted in bulk; the genes'
distributions checked against the study's stored ones in one query, once per process), its
``Trial`` object built from what was written, and its end one transaction of three (the
state changed only while RUNNING, its last attributes and values inserted; the finished trial
built from what the process holds, not read back).

This writes through Optuna's table models (``optuna.storages._rdb.models``), which are not
public API: it does what ``RDBStorage.create_new_trial`` and ``set_trial_user_attr`` do, row
for row, and where the models are not what it expects it returns None and the callers take
Optuna's public path. Tests compare both paths' rows. Other storages (in-memory, journal)
always take the public path.
"""

from __future__ import annotations

import copy
import json
import weakref
from collections.abc import Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import optuna
import sqlalchemy
import sqlalchemy.exc
from optuna.distributions import BaseDistribution, check_distribution_compatibility, distribution_to_json
from optuna.distributions import json_to_distribution
from optuna.trial import FrozenTrial, TrialState


# storage -> (study id, name) -> gene -> the distribution (JSON) the study's first trial with the gene stored
_stored_distributions: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


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
                 heartbeat: bool = False) -> FrozenTrial | None:
    """A RUNNING trial with its params and user attributes (and, with ``heartbeat``, its first
    heartbeat, as ``RDBStorage.record_heartbeat`` writes it), created in one transaction on an
    SQL storage; the trial as stored, or None where the caller must use Optuna's public API."""
    models = _models() if isinstance(storage, optuna.storages.RDBStorage) else None
    if models is None:
        return None
    texts = {name: distribution_to_json(d) for name, d in distributions.items()}
    started = datetime.now()
    with _session(storage) as session:
        study = models.StudyModel.find_or_raise_by_id(study_id, session, for_update=True)  # numbers one at a time
        known = _stored_distributions.setdefault(storage, {}).setdefault((study_id, study.study_name), {})
        if any(known.get(name) != text for name, text in texts.items()):
            _check_distributions(session, models, study_id, distributions, known)
        trial = models.TrialModel(study_id=study_id, number=None, state=TrialState.RUNNING, datetime_start=started)
        session.add(trial)
        session.flush()
        rows = [{"trial_id": trial.trial_id, "param_name": name, "distribution_json": texts[name],
                 "param_value": d.to_internal_repr(params[name])} for name, d in distributions.items()]
        if rows:
            session.execute(sqlalchemy.insert(models.TrialParamModel), rows)
        _insert_attrs(session, models, trial.trial_id, user_attrs)
        if heartbeat:
            session.add(models.TrialHeartbeatModel(trial_id=trial.trial_id))
        trial.number = trial.count_past_trials(session)
        trial_id, number = trial.trial_id, trial.number
    for name, text in texts.items():  # committed: the study's first distribution of each gene is known now
        known.setdefault(name, text)
    return FrozenTrial(number=number, state=TrialState.RUNNING, value=None, datetime_start=started,
                       datetime_complete=None, params=dict(params), distributions=dict(distributions),
                       user_attrs=copy.deepcopy(dict(user_attrs)), system_attrs={}, intermediate_values={},
                       trial_id=trial_id)


def _stored_time(moment: datetime) -> datetime:
    """A local time as Optuna's trial table stores it (naive UTC; its models convert on access,
    a Core statement does not)."""
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def trial_object(study: optuna.Study, frozen: FrozenTrial) -> optuna.trial.Trial:
    """Optuna's ``Trial`` for a trial this process has just created, built from what it
    wrote: the constructor would read the whole trial back (six statements) and call the
    sampler's ``before_trial``, which only samplers that propose (not ours) need. Sets what
    ``Trial.__init__`` sets; tests compare the two."""
    trial = optuna.trial.Trial.__new__(optuna.trial.Trial)
    trial.study, trial._trial_id, trial.storage = study, frozen._trial_id, study._storage
    trial._cached_frozen_trial = frozen
    trial.relative_search_space, trial._relative_params = None, None
    trial._fixed_params = frozen.system_attrs.get("fixed_params", {})
    return trial


def _check_distributions(session, models, study_id: int, distributions: Mapping[str, BaseDistribution],
                         known: dict[str, str]) -> None:
    """Each gene's distribution against the one an earlier trial of the study stored for it
    (one query for all genes), as Optuna checks it per gene; ``known`` (the stored ones this
    process has seen) is filled in, so a later trial with the same distributions skips the query."""
    first = (sqlalchemy.select(models.TrialParamModel.param_name, sqlalchemy.func.min(models.TrialParamModel.param_id))
             .join(models.TrialModel).where(models.TrialModel.study_id == study_id)
             .where(models.TrialParamModel.param_name.in_(list(distributions)))
             .group_by(models.TrialParamModel.param_name).subquery())
    stored = session.execute(sqlalchemy.select(models.TrialParamModel.param_name,
                                               models.TrialParamModel.distribution_json)
                             .join(first, models.TrialParamModel.param_id == first.c[1])).all()
    for name, text in stored:
        check_distribution_compatibility(json_to_distribution(text), distributions[name])
        known[name] = text


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
    cached = getattr(trial, "_cached_frozen_trial", None)  # what trial.user_attrs answers from
    known = set(cached.user_attrs) if cached is not None else None
    if not isinstance(storage, optuna.storages.RDBStorage) or not _write_sql(storage, trial._trial_id, values, known):
        for key, value in values.items():
            trial.set_user_attr(key, value)
        return
    if cached is not None:
        cached.user_attrs.update(values)


def _write_sql(storage: optuna.storages.RDBStorage, trial_id: int, values: Mapping[str, Any],
               known: set[str] | None) -> bool:
    """New attributes inserted in bulk and existing ones updated, in one commit (``known``:
    the keys the trial has, where the process holds them - else they are read); False
    (nothing written) where the models are not as expected or another session inserted one
    of the keys first."""
    models = _models()
    if models is None:
        return False
    try:
        with _session(storage) as session:
            trial = models.TrialModel.find_or_raise_by_id(trial_id, session)
            storage.check_trial_is_updatable(trial_id, trial.state)
            if known is None:
                known = {row.key for row in models.TrialUserAttributeModel.where_trial_id(trial_id, session)}
            _write_attrs(session, models, trial_id, values, known)
    except sqlalchemy.exc.IntegrityError:
        return False
    return True


def _write_attrs(session, models, trial_id: int, values: Mapping[str, Any], known: set[str]) -> None:
    """Attributes not among ``known`` inserted in bulk, the others updated (one statement each kind)."""
    _insert_attrs(session, models, trial_id, {k: v for k, v in values.items() if k not in known})
    changed = [{"id_": trial_id, "key_": key, "json_": json.dumps(value)} for key, value in values.items()
               if key in known]
    if changed:
        table = models.TrialUserAttributeModel.__table__
        session.execute(sqlalchemy.update(table).where(table.c.trial_id == sqlalchemy.bindparam("id_"),
                                                       table.c.key == sqlalchemy.bindparam("key_"))
                        .values(value_json=sqlalchemy.bindparam("json_")), changed)


def finish_trial(storage: optuna.storages.BaseStorage | None, study: optuna.Study, trial: optuna.trial.Trial,
                 state: TrialState, values: list[float] | None = None,
                 user_attrs: Mapping[str, Any] | None = None) -> FrozenTrial | None:
    """End a running trial (COMPLETE with ``values``, PRUNED or FAIL) with its last
    ``user_attrs`` in one transaction on an SQL storage, as ``set_user_attr`` and
    ``study.tell`` would (the sampler's ``after_trial`` hook included); the finished trial, or
    None (nothing written) where the caller must use Optuna's public API. ``values`` are the
    objectives' floats, already checked by the caller."""
    models = _models() if isinstance(storage, optuna.storages.RDBStorage) else None
    cached = getattr(trial, "_cached_frozen_trial", None)
    if models is None or cached is None:
        return None
    user_attrs = dict(user_attrs or {})
    known = set(cached.user_attrs)
    frozen, completed = copy.deepcopy(cached), datetime.now()
    frozen.user_attrs.update(user_attrs)
    study.sampler.after_trial(study, frozen, state, values)
    try:
        _end(storage, models, trial._trial_id, state, values, completed, user_attrs, known)
    except sqlalchemy.exc.IntegrityError:  # another session inserted one of the keys first
        for key, value in user_attrs.items():
            trial.set_user_attr(key, value)
        _end(storage, models, trial._trial_id, state, values, completed, {}, known)
    cached.user_attrs.update(user_attrs)
    frozen.state, frozen.datetime_complete = state, completed
    frozen.values = list(values) if values else None
    return frozen


def _end(storage: optuna.storages.RDBStorage, models, trial_id: int, state: TrialState, values: list[float] | None,
         completed: datetime, user_attrs: Mapping[str, Any], known: set[str]) -> None:
    """The trial's last attributes, state, end time and values: one transaction."""
    table = models.TrialModel.__table__
    with _session(storage) as session:
        ended = session.execute(sqlalchemy.update(table)  # only while RUNNING: the check and the write in one
                                .where(table.c.trial_id == trial_id, table.c.state == TrialState.RUNNING)
                                .values(state=state, datetime_complete=_stored_time(completed)))
        if ended.rowcount != 1:
            row = models.TrialModel.find_or_raise_by_id(trial_id, session)
            storage.check_trial_is_updatable(trial_id, row.state)  # raises what Optuna raises
            raise RuntimeError(f"trial {trial_id} could not be ended ({row.state.name})")
        _write_attrs(session, models, trial_id, user_attrs, known)
        if values:
            stored = [models.TrialValueModel.value_to_stored_repr(v) for v in values]
            session.execute(sqlalchemy.insert(models.TrialValueModel.__table__),  # Core: one executemany
                            [{"trial_id": trial_id, "objective": i, "value": value, "value_type": kind}
                             for i, (value, kind) in enumerate(stored)])
