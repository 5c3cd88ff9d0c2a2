"""The Optuna study: where every evaluation is recorded, and what a resume reads back.

Optuna is the source of truth. Each evaluated genome is one trial: genes are params with
categorical distributions (so the dashboard plots them), objective values are the trial's
values, and the genome string, FLOPs, params, seconds, epochs, generation and parent trials
are user attributes. Trained weights are stored as an Optuna artifact (safetensors) in a
file-system artifact store beside the database. The search's settings are a study user
attribute, so ``--resume`` continues exactly the search that was started.
"""

from __future__ import annotations

import json
import re
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial, Trial, TrialState, create_trial

from automl.core.errors import StudyError
from automl.core.genome import Genome
from automl.core.pareto import Objective, as_minimisation, non_dominated
from automl.store.storage import (STUDY_DIR, artifact_location, default_storage, open_storage,  # noqa: F401
                                  storage_errors)

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

SETTINGS_ATTR = "automl"
_STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_study_name(name: str) -> str:
    if not isinstance(name, str) or not _STUDY_NAME.match(name):
        raise StudyError(f"study name {name!r} must be letters, digits, '_', '.' or '-' (it names files)")
    return name


class StudyStore:
    """One Optuna study plus its artifact store, as the search uses them."""

    def __init__(self, study: optuna.Study, artifacts: Path | None, url: str = "memory") -> None:
        self.study = study
        self.url = url
        self.artifacts_dir = artifacts
        self._artifact_store = None
        if artifacts is not None:  # the folder is made on the first upload: reading creates nothing
            from optuna.artifacts import FileSystemArtifactStore

            self._artifact_store = FileSystemArtifactStore(str(artifacts))

    # -- opening --------------------------------------------------------------------------

    @classmethod
    def create(cls, name: str, storage: str | None, objectives: Sequence[Objective],
               settings: Mapping[str, Any], artifacts: Path | None = None,
               sampler: optuna.samplers.BaseSampler | None = None) -> StudyStore:
        """A new study; refuses to touch an existing one of the same name."""
        check_study_name(name)
        url = storage or default_storage(name)
        backend = open_storage(url)
        with storage_errors(url):
            if name in {s.study_name for s in optuna.get_all_study_summaries(backend)}:
                raise StudyError(f"study {name!r} already exists in {url}; add --resume to continue it "
                                 "or choose another --study")
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
        return cls(study, artifacts, url)

    @classmethod
    def open(cls, name: str, storage: str | None = None,
             sampler: optuna.samplers.BaseSampler | None = None) -> StudyStore:
        """An existing study (a user-facing error if there is none)."""
        check_study_name(name)
        url = storage or default_storage(name)
        backend = open_storage(url, must_exist=True)
        with storage_errors(url):
            try:
                study = optuna.load_study(study_name=name, storage=backend, sampler=sampler)
            except KeyError:
                raise StudyError(f"no study {name!r} in {url}") from None
            settings = study.user_attrs.get(SETTINGS_ATTR, {})
        recorded = settings.get("artifacts") if isinstance(settings, dict) else None
        return cls(study, artifact_location(name, url, recorded if isinstance(recorded, str) else None), url)

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
        stored = self.settings.get("objectives")
        if stored:
            return [Objective(name, direction) for name, direction in stored]
        names = self.study.metric_names or [f"objective{i}" for i in range(len(self.study.directions))]
        return [Objective(n, "min" if d == optuna.study.StudyDirection.MINIMIZE else "max")
                for n, d in zip(names, self.study.directions)]

    def trials(self, states: Sequence[TrialState] | None = None) -> list[FrozenTrial]:
        return self.study.get_trials(deepcopy=False, states=states)

    def finished_by_key(self) -> dict[str, FrozenTrial]:
        """Genome key -> its trial, for every genome that needs no new training:
        COMPLETE trials and trials that FAILED for a reason of their own (not interrupted)."""
        finished: dict[str, FrozenTrial] = {}
        for trial in self.trials((TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)):
            key = trial.user_attrs.get("key")
            if key is None or trial.user_attrs.get("duplicate_of") is not None or trial.user_attrs.get("infeasible"):
                continue  # proposals answered without training are not evaluations
            if trial.state == TrialState.FAIL and trial.user_attrs.get("retry", True):
                continue
            if key not in finished or trial.state != TrialState.FAIL:
                finished[key] = trial
        return finished

    def mark_interrupted(self) -> int:
        """Mark trials left RUNNING (by a crash or kill) as FAILED so they are retried."""
        stale = self.trials((TrialState.RUNNING,))
        storage = self.study._storage
        for trial in stale:
            storage.set_trial_user_attr(trial._trial_id, "fail_reason", "interrupted (left running)")
            storage.set_trial_user_attr(trial._trial_id, "retry", True)
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        return len(stale)

    def pareto(self) -> list[FrozenTrial]:
        """Non-dominated COMPLETE trials, one per genome, in ascending order of the last objective."""
        unique: dict[str, FrozenTrial] = {}
        for trial in self.trials((TrialState.COMPLETE,)):
            unique.setdefault(trial.user_attrs.get("key", str(trial.number)), trial)
        trials = list(unique.values())
        if not trials:
            return []
        points = as_minimisation([t.values for t in trials], self.objectives)
        front = [trials[i] for i in non_dominated(points)]
        return sorted(front, key=lambda t: (t.values[-1], t.number))

    # -- recording ------------------------------------------------------------------------

    def start(self, genome: Genome, choices: Mapping[str, list[Any]], attrs: Mapping[str, Any]) -> Trial:
        """A RUNNING trial for a genome the engine chose (params fixed to the genome)."""
        template = create_trial(
            state=TrialState.RUNNING, params=dict(genome.genes),
            distributions={g: CategoricalDistribution(choices[g]) for g in genome},
            user_attrs=dict(attrs))
        trial_id = self.study._storage.create_new_trial(self.study._study_id, template_trial=template)
        return Trial(self.study, trial_id)

    def ask(self, choices: Mapping[str, list[Any]], space: str) -> tuple[Trial, Genome]:
        """A RUNNING trial whose genome the study's own sampler proposes."""
        trial = self.study.ask()
        genome = Genome(space, tuple((g, trial.suggest_categorical(g, c)) for g, c in choices.items()))
        return trial, genome

    def complete(self, trial: Trial, values: Mapping[str, float], attrs: Mapping[str, Any],
                 weights: Mapping[str, Any] | None = None) -> FrozenTrial:
        """Store attributes and weights, then mark the trial COMPLETE with its values."""
        for key, value in attrs.items():
            trial.set_user_attr(key, _jsonable(value))
        if weights is not None and self._artifact_store is not None:
            trial.set_user_attr("weights_artifact", self.upload_weights(trial, weights))
        return self.study.tell(trial, [float(values[o.name]) for o in self.objectives])

    def prune(self, trial: Trial, values: Mapping[str, float], attrs: Mapping[str, Any],
              weights: Mapping[str, Any] | None = None) -> FrozenTrial:
        """Mark an early-stopped trial PRUNED; Optuna keeps no values for pruned trials of a
        multi-objective study, so its partial values are kept as the user attr
        ``partial_values`` (what the engine uses for it, and what the dashboard shows)."""
        attrs = {**attrs, "partial_values": {o.name: float(values[o.name]) for o in self.objectives}}
        for key, value in attrs.items():
            trial.set_user_attr(key, _jsonable(value))
        if weights is not None and self._artifact_store is not None:
            trial.set_user_attr("weights_artifact", self.upload_weights(trial, weights))
        return self.study.tell(trial, state=TrialState.PRUNED)

    def fail(self, trial: Trial, reason: str, attrs: Mapping[str, Any] | None = None,
             retry: bool = False) -> FrozenTrial:
        """Mark the trial FAILED with its reason; ``retry`` says a resume should try again."""
        for key, value in (attrs or {}).items():
            trial.set_user_attr(key, _jsonable(value))
        trial.set_user_attr("fail_reason", reason)
        trial.set_user_attr("retry", retry)
        return self.study.tell(trial, state=TrialState.FAIL)

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
        from optuna.artifacts import download_artifact
        from safetensors.torch import load_file

        artifact_id = trial.user_attrs.get("weights_artifact")
        if artifact_id is None or self._artifact_store is None:
            raise StudyError(f"trial {trial.number} of study {self.name!r} has no stored weights")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "weights.safetensors"
            try:
                download_artifact(artifact_store=self._artifact_store, file_path=str(path),
                                  artifact_id=artifact_id)
                return load_file(str(path))
            except Exception as error:
                raise StudyError(f"weights of trial {trial.number} cannot be read: {error}") from None


def _jsonable(value: Any) -> Any:
    """Optuna stores user attributes as JSON; make tuples, numpy scalars etc. fit."""
    return json.loads(json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
