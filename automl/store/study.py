"""The Optuna study: where every evaluation is recorded, and what a resume reads back.

Optuna is the source of truth. Each evaluated genome is one trial: genes are params with
categorical distributions (so the dashboard plots them), objective values are the trial's
values, and the genome string, FLOPs, params, seconds, epochs, generation and parent trials
are user attributes. Trained weights are stored as an Optuna artifact (safetensors) in a
file-system artifact store beside the database. The search's settings and the engine's state
are study user attributes, so ``--resume`` and any process that joins continue exactly the
search that was started. Only Optuna's public API is used here; :mod:`automl.store.rows` writes a
trial's rows itself (fewer statements), with the public API as its fallback.
"""

from __future__ import annotations

import json
import re
import tempfile
import warnings
from datetime import datetime
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial, Trial, TrialState

from automl.core import attrs
from automl.core.errors import StudyError
from automl.core.genome import Genome
from automl.core.pareto import Objective, as_minimisation, non_dominated
from automl.store import claims
from automl.store.heartbeat import GRACE_PERIOD, HEARTBEAT_INTERVAL, STOPPED, Heartbeat, fail_stale, optuna_heartbeat
from automl.store.rows import create_trial, finish_trial, trial_object, write_user_attrs
from automl.store.storage import (STUDY_DIR, artifact_location, default_storage, open_storage,  # noqa: F401
                                  storage_errors)
from automl.store.weights import WeightsReader

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")

SETTINGS_ATTR = attrs.SETTINGS
_STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_study_name(name: str) -> str:
    if not isinstance(name, str) or not _STUDY_NAME.match(name):
        raise StudyError(f"study name {name!r} must be letters, digits, '_', '.' or '-' (it names files)")
    return name


class StudyStore:
    """One Optuna study plus its artifact store, as the search uses them."""

    def __init__(self, study: optuna.Study, artifacts: Path | None, url: str = "memory",
                 storage: optuna.storages.BaseStorage | None = None,
                 heartbeat: tuple[int, int] = (HEARTBEAT_INTERVAL, GRACE_PERIOD)) -> None:
        self.study = study
        self.url = url
        self.storage = storage  # the backend opened for the study (heartbeats are recorded there)
        self.shared = url != "memory"  # other processes may write to the study
        self.heartbeat_interval, self.grace_period = heartbeat
        self.just_beaten: int | None = None  # the trial :meth:`start` beat for last
        self._id: int | None = None
        self._objectives: list[Objective] | None = None
        self.artifacts_dir = artifacts
        self._artifact_store = None
        if artifacts is not None:  # the folder is made on the first upload: reading creates nothing
            from optuna.artifacts import FileSystemArtifactStore

            self._artifact_store = FileSystemArtifactStore(str(artifacts))

    # -- opening --------------------------------------------------------------------------

    @classmethod
    def create(cls, name: str, storage: str | None, objectives: Sequence[Objective],
               settings: Mapping[str, Any], artifacts: Path | None = None,
               sampler: optuna.samplers.BaseSampler | None = None,
               heartbeat: tuple[int, int] = (HEARTBEAT_INTERVAL, GRACE_PERIOD),
               if_exists: str = "add --resume to continue it or choose another --study") -> StudyStore:
        """A new study; refuses to touch an existing one of the same name (``if_exists``: what
        the refusal tells the user to do instead)."""
        check_study_name(name)
        url = storage or default_storage(name)
        backend = open_storage(url, heartbeat=heartbeat)
        with storage_errors(url):
            if name in {s.study_name for s in optuna.get_all_study_summaries(backend)}:
                raise StudyError(f"study {name!r} already exists in {url}; {if_exists}")
            study = optuna.create_study(storage=backend, study_name=name, sampler=sampler,
                                        directions=[o.optuna_direction for o in objectives])
            study.set_metric_names([o.name for o in objectives])
            # beside a SQLite/journal file, else where the caller says: absolute, so any folder finds it
            artifacts = (Path(artifacts).expanduser().resolve() if artifacts is not None
                         else artifact_location(name, url))
            stored = dict(settings)
            stored["objectives"] = [[o.name, o.direction] for o in objectives]
            stored["artifacts"] = str(artifacts) if artifacts is not None else None
            study.set_user_attr(SETTINGS_ATTR, json.loads(json.dumps(stored)))
        return cls(study, artifacts, url, backend, heartbeat)

    @classmethod
    def open(cls, name: str, storage: str | None = None,
             sampler: optuna.samplers.BaseSampler | None = None,
             heartbeat: tuple[int, int] = (HEARTBEAT_INTERVAL, GRACE_PERIOD)) -> StudyStore:
        """An existing study (a user-facing error if there is none)."""
        check_study_name(name)
        url = storage or default_storage(name)
        backend = open_storage(url, must_exist=True, heartbeat=heartbeat)
        with storage_errors(url):
            try:
                study = optuna.load_study(study_name=name, storage=backend, sampler=sampler)
            except KeyError:
                raise StudyError(f"no study {name!r} in {url}") from None
            settings = study.user_attrs.get(SETTINGS_ATTR, {})
        recorded = settings.get("artifacts") if isinstance(settings, dict) else None
        return cls(study, artifact_location(name, url, recorded if isinstance(recorded, str) else None), url,
                   backend, heartbeat)

    # -- what the study knows -------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.study.study_name

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.study.user_attrs.get(SETTINGS_ATTR, {}))

    def update_settings(self, **changes: Any) -> None:
        self.study.set_user_attr(SETTINGS_ATTR, _jsonable(self.settings | changes))

    @property
    def objectives(self) -> list[Objective]:
        """The study's objectives (fixed at creation, so read once: reading study attributes
        copies them all, the engine's state included)."""
        if self._objectives is None:
            stored = self.settings.get("objectives")
            if stored:
                self._objectives = [Objective(name, direction) for name, direction in stored]
            else:
                names = self.study.metric_names or [f"objective{i}" for i in range(len(self.study.directions))]
                self._objectives = [Objective(n, "min" if d == optuna.study.StudyDirection.MINIMIZE else "max")
                                    for n, d in zip(names, self.study.directions)]
        return list(self._objectives)

    def trials(self, states: Sequence[TrialState] | None = None) -> list[FrozenTrial]:
        return self.study.get_trials(deepcopy=False, states=states)

    @property
    def study_id(self) -> int:
        """The study's id in its storage (public API; the dashboard's URLs use it)."""
        if self._id is None:
            self._id = self.storage.get_study_id_from_name(self.name)
        return self._id

    def finished_by_key(self, trials: Sequence[FrozenTrial] | None = None) -> dict[str, FrozenTrial]:
        """Genome key -> its trial, for every genome that needs no new training:
        COMPLETE and PRUNED trials, and trials that FAILED for a reason of their own
        (among ``trials`` when the caller read the study already)."""
        finished: dict[str, FrozenTrial] = {}
        if trials is None:
            trials = self.trials((TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))
        for trial in trials:
            if claims.holds_result(trial):
                key = trial.user_attrs[attrs.KEY]
                if key not in finished or finished[key].state == TrialState.FAIL:
                    finished[key] = trial
        return finished

    def fail_stale(self) -> list[int]:
        """FAIL the RUNNING trials whose process is gone (heartbeats); their numbers."""
        return fail_stale(self)

    def heartbeat(self, trial: Trial) -> Heartbeat:
        """``with store.heartbeat(trial):`` beats for the trial while it trains."""
        return Heartbeat(self, trial)

    @staticmethod
    def fail_reason(trial: FrozenTrial) -> str | None:
        """Why a trial FAILED (a trial failed by its heartbeat records no reason of its own)."""
        if trial.state != TrialState.FAIL:
            return None
        return trial.user_attrs.get(attrs.FAIL_REASON, STOPPED)

    def engine_state(self) -> dict[str, Any] | None:
        """The engine's state (generation, its batch, the strategy's state), if one was stored."""
        state = self.study.user_attrs.get(attrs.ENGINE)
        return dict(state) if state else None

    def save_engine_state(self, state: Mapping[str, Any]) -> None:
        self.study.set_user_attr(attrs.ENGINE, _jsonable(state))

    def pareto(self) -> list[FrozenTrial]:
        """Non-dominated COMPLETE trials, one per genome, in ascending order of the last objective."""
        unique: dict[str, FrozenTrial] = {}
        for trial in self.trials((TrialState.COMPLETE,)):
            unique.setdefault(trial.user_attrs.get(attrs.KEY, str(trial.number)), trial)
        trials = list(unique.values())
        if not trials:
            return []
        points = as_minimisation([t.values for t in trials], self.objectives)
        front = [trials[i] for i in non_dominated(points)]
        return sorted(front, key=lambda t: (t.values[-1], t.number))

    # -- recording ------------------------------------------------------------------------

    def start(self, genome: Genome, choices: Mapping[str, list[Any]], extra: Mapping[str, Any]) -> Trial:
        """A RUNNING trial for a genome the engine chose, created whole in one write: its genes
        as params with real categorical distributions (the dashboard plots them) and its
        attributes, the key among them - so a claim is complete the moment it exists. On an
        SQL storage that is one transaction of a few statements (:mod:`automl.store.rows`),
        elsewhere Optuna's ``create_new_trial`` with a template trial."""
        distributions = {g: CategoricalDistribution(choices[g]) for g in genome}
        if self.storage is None:  # a store made without its backend: Optuna's ask, one write per field
            trial = self.study.ask(distributions)
            self.set_attrs(trial, extra)
            return trial
        user_attrs = {k: _jsonable(v) for k, v in extra.items()}
        beats = optuna_heartbeat(self.storage)
        created = create_trial(self.storage, self.study_id, dict(genome.genes), distributions, user_attrs, beats)
        beaten = created is not None and beats  # its first heartbeat was written with it
        if created is not None:
            trial = trial_object(self.study, created)
        else:
            template = FrozenTrial(number=0, state=TrialState.RUNNING, value=None, datetime_start=datetime.now(),
                                   datetime_complete=None, params=dict(genome.genes), distributions=distributions,
                                   user_attrs=user_attrs, system_attrs={}, intermediate_values={}, trial_id=0)
            trial = self._trial(self.storage.create_new_trial(self.study_id, template_trial=template))
        if self.shared:
            if not beaten:
                Heartbeat(self, trial).beat()  # alive from the start
            self.just_beaten = trial.number  # the heartbeat that follows need not beat again at once
        return trial

    def _trial(self, trial_id: int) -> Trial:
        """Optuna's trial object for a created trial (read back from the storage)."""
        previous = self.study.sampler  # the study's sampler is not asked: a trial object needs none
        self.study.sampler = optuna.samplers.RandomSampler()
        try:
            return Trial(self.study, trial_id)
        finally:
            self.study.sampler = previous

    def ask(self, choices: Mapping[str, list[Any]], space: str) -> tuple[Trial, Genome]:
        """A RUNNING trial whose genome the study's own sampler proposes."""
        trial = self.study.ask()
        genome = Genome(space, tuple((g, trial.suggest_categorical(g, c)) for g, c in choices.items()))
        return trial, genome

    def set_attrs(self, trial: Trial, values: Mapping[str, Any]) -> None:
        """Set a running trial's user attributes, in one transaction on an SQL storage
        (:mod:`automl.store.rows`)."""
        write_user_attrs(self.storage, trial, {key: _jsonable(value) for key, value in values.items()})

    def _with_weights(self, trial: Trial, extra: Mapping[str, Any],
                      weights: Mapping[str, Any] | None) -> dict[str, Any]:
        """``extra`` and, where weights are given and stored, the artifact they were stored as."""
        if weights is None or self._artifact_store is None:
            return dict(extra)
        return {**extra, attrs.WEIGHTS_ARTIFACT: self.upload_weights(trial, weights)}

    def complete(self, trial: Trial, values: Mapping[str, float], extra: Mapping[str, Any],
                 weights: Mapping[str, Any] | None = None) -> FrozenTrial:
        """Store attributes and weights, then mark the trial COMPLETE with its values."""
        return self._finish(trial, TrialState.COMPLETE, self._with_weights(trial, extra, weights),
                            [float(values[o.name]) for o in self.objectives])

    def prune(self, trial: Trial, values: Mapping[str, float], extra: Mapping[str, Any],
              weights: Mapping[str, Any] | None = None) -> FrozenTrial:
        """Mark an early-stopped trial PRUNED; Optuna keeps no values for pruned trials of a
        multi-objective study, so its partial values are kept as the user attr
        ``partial_values`` (what the engine uses for it, and what the dashboard shows)."""
        extra = {**extra, attrs.PARTIAL_VALUES: {o.name: float(values[o.name]) for o in self.objectives}}
        return self._finish(trial, TrialState.PRUNED, self._with_weights(trial, extra, weights))

    def fail(self, trial: Trial, reason: str, extra: Mapping[str, Any] | None = None,
             retry: bool = False) -> FrozenTrial:
        """Mark the trial FAILED with its reason; ``retry`` says a resume should try again."""
        return self._finish(trial, TrialState.FAIL, {**(extra or {}), attrs.FAIL_REASON: reason, attrs.RETRY: retry})

    def _finish(self, trial: Trial, state: TrialState, extra: Mapping[str, Any],
                values: list[float] | None = None) -> FrozenTrial:
        """The trial's last attributes and its end in one write where the storage is SQL
        (:mod:`automl.store.rows`), else attributes set then ``study.tell``."""
        extra = {key: _jsonable(value) for key, value in extra.items()}
        frozen = finish_trial(self.storage, self.study, trial, state, values, extra)
        if frozen is not None:
            return frozen
        self.set_attrs(trial, extra)
        return self.study.tell(trial, values, state=state)

    def answer_duplicate(self, trial: Trial, stored: FrozenTrial) -> None:
        """Answer a repeated proposal (an Optuna sampler's) with the stored result, untrained."""
        copied = {attrs.KEY: stored.user_attrs.get(attrs.KEY), attrs.GENOME: stored.user_attrs.get(attrs.GENOME),
                  attrs.DUPLICATE_OF: stored.number}
        if stored.state == TrialState.PRUNED:
            copied[attrs.PARTIAL_VALUES] = stored.user_attrs[attrs.PARTIAL_VALUES]
        self.set_attrs(trial, copied)
        if stored.state == TrialState.COMPLETE:
            self.study.tell(trial, list(stored.values))
        elif stored.state == TrialState.PRUNED:
            self.study.tell(trial, state=TrialState.PRUNED)
        else:
            self.fail(trial, f"same genome as failed trial {stored.number}", retry=False)

    def answer_infeasible(self, trial: Trial, key: str, violation: float) -> None:
        """Answer a proposal that breaks the constraints without training it."""
        self.fail(trial, f"infeasible: violates the constraints by {violation:.3g}",
                  {attrs.KEY: key, attrs.INFEASIBLE: True}, retry=False)

    @property
    def cache_dir(self) -> Path | None:
        """The study's folder for one-off artifacts accelerators share across candidates."""
        return self.artifacts_dir / "accelerator-cache" if self.artifacts_dir is not None else None

    def upload_weights(self, trial: Trial, weights: Mapping[str, Any]) -> str:
        from optuna.artifacts import upload_artifact
        from safetensors.torch import save_file

        tensors = {k: v.detach().to("cpu").contiguous() for k, v in weights.items()}
        with storage_errors(self.url):
            self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"trial-{trial.number}.safetensors"
            save_file(tensors, str(path))
            return upload_artifact(artifact_store=self._artifact_store, file_path=str(path),
                                   study_or_trial=trial, mimetype="application/octet-stream")

    def download_weights(self, trial: FrozenTrial) -> dict[str, Any]:
        """The trial's stored weights as a state dict (safetensors, no pickle)."""
        return self.weights_reader()(trial)

    def weights_reader(self) -> WeightsReader:
        """What reads trials' weights in another process (it carries the artifact folder only)."""
        return WeightsReader(self.artifacts_dir if self._artifact_store is not None else None, self.name)


def _jsonable(value: Any) -> Any:
    """Optuna stores user attributes as JSON; make tuples, numpy scalars etc. fit."""
    return json.loads(json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
