"""``automl train``: one trial's architecture trained for longer, stored as a new trial.

A search trains each candidate briefly; the architectures it finds deserve longer training.
This trains trial N's architecture FROM SCRATCH (the search's initialisation for that genome:
same seed) for E epochs with the study's recipe and the evaluator the search uses
(:class:`automl.evaluate.cnn.CNNEvaluator`), on the study's training split, scored on its
validation split - so the new trial's values compare with every other trial's, and ``pareto``,
``report`` and ``export`` read it like any other. The new trial records ``trained_from`` = N and
its own genome key (``KEY#trained-M``): a search that resumes the study never takes it for
the search's own evaluation of that genome.

The dataset and recipe a study recorded (:func:`study_data`, :func:`train_config`) are read
here for ``export --retrain-epochs`` too.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from optuna.trial import FrozenTrial, TrialState

import accelerators
import search_spaces
from automl.core import attrs
from automl.core.errors import CandidateFailed, StudyError
from automl.core.evaluation import EvaluationContext
from automl.core.genome import Genome
from automl.core.progress import SilentProgress
from automl.engine.recording import genome_of
from automl.evaluate.cnn import CNNEvaluator
from automl.evaluate.devices import pick_device
from automl.evaluate.distributed import distributed_trainer
from automl.evaluate.launch import backend_for, check_batch, check_ddp_safe
from automl.store.study import StudyStore


def study_data(store: StudyStore):
    """The dataset the study searched on, checked against what the study recorded."""
    from automl.data import load_dataset

    settings = store.settings
    if "dataset" not in settings or "space" not in settings:
        raise StudyError(f"study {store.name!r} records no dataset or space (was it made by automl search?)")
    data = load_dataset(settings["dataset"], settings.get("data_root"))
    stored = settings.get("data")
    if stored:
        described = data.describe()
        for key in ("input_shape", "class_names", "mean", "std"):
            if key in stored and list(stored[key]) != list(described[key]):
                raise StudyError(f"dataset {settings['dataset']!r} now has a different {key} than when "
                                 f"study {store.name!r} searched it; its models cannot be trained or "
                                 "exported faithfully")
    return data


def train_config(settings: dict[str, Any], epochs: float):
    """The study's training recipe with ``epochs`` epochs."""
    from automl.train.loop import TrainConfig

    known = {f.name for f in fields(TrainConfig)}
    recipe = {k: v for k, v in (settings.get("train") or {}).items() if k in known}
    for key in ("batch_size", "lr"):
        if key in settings and key not in recipe:
            recipe[key] = settings[key]
    return TrainConfig(**{**recipe, "epochs": epochs})


def source_trial(store: StudyStore, number: int) -> tuple[FrozenTrial, Genome]:
    """Trial ``number`` (a duplicate resolves to the trial it copied) and its genome."""
    settings = store.settings
    if settings.get("mode") == "grow":
        raise StudyError(f"study {store.name!r} holds a grown tree; automl train trains a search's trials")
    if "dataset" not in settings or "space" not in settings:
        raise StudyError(f"study {store.name!r} records no dataset or space (was it made by automl search?)")
    missing = [o.name for o in store.objectives if o.name not in ("accuracy", "flops")]
    if missing:
        raise StudyError(f"study {store.name!r} has objective {missing[0]!r}; automl train measures "
                         "accuracy and flops only")
    by_number = {t.number: t for t in store.trials()}
    trial = by_number.get(number)
    if trial is None:
        raise StudyError(f"study {store.name!r} has no trial {number}")
    original = trial.user_attrs.get(attrs.DUPLICATE_OF)
    if original is not None and original in by_number:
        trial = by_number[original]
    if trial.state not in (TrialState.COMPLETE, TrialState.PRUNED):
        raise StudyError(f"trial {number} of study {store.name!r} is {trial.state.name.lower()}; "
                         "only a finished trial's architecture can be trained")
    genome = genome_of(search_spaces.get(settings["space"]), trial)
    if genome is None:
        raise StudyError(f"trial {number} of study {store.name!r} holds no genome of space {settings['space']!r}")
    return trial, genome


def train_trial(store: StudyStore, number: int, epochs: float, accelerate: str = "", nproc: int = 1,
                device: str = "auto", progress: SilentProgress | None = None) -> FrozenTrial | None:
    """Train trial ``number``'s architecture for ``epochs`` and store it as a new trial of the
    study (COMPLETE; FAILED with its reason when training fails). ``nproc`` > 1 (or torchrun)
    trains with DistributedDataParallel; then only rank 0 records, and the others return None.
    Every check that can fail on the user's input runs before the trial is created."""
    source, genome = source_trial(store, number)
    settings = store.settings
    chosen = accelerators.parse(accelerate)
    target = pick_device(device)
    trainer = distributed_trainer(nproc, target)
    if trainer is not None:
        check_ddp_safe(chosen, trainer.launch.world)
    config = train_config(settings, epochs)
    data = study_data(store)
    if trainer is None:
        data.to(target, channels_last=True)
    else:
        check_batch(config, len(data.train), trainer.launch.world)
    space = search_spaces.get(settings["space"])
    if progress is not None:  # every check passed: say what trains where
        where = (f"{trainer.launch.world} {backend_for(target)} processes" if trainer is not None else str(target))
        progress.message(f"study {store.name!r}: training trial {number}'s architecture ({space.format(genome)}) "
                         f"for {epochs:g} epoch(s) on {where}")
    evaluator = CNNEvaluator(space, data, config, seed=int(settings.get("seed", 0)), accelerate=accelerate,
                             device=target, progress=progress, trainer=trainer)
    try:
        if trainer is not None and not trainer.writes:  # a torchrun rank other than 0: train, record nothing
            evaluator(genome)
            return None
        return _train_and_record(store, evaluator, genome, source, trainer, config.batch_size)
    finally:
        if trainer is not None:
            trainer.close()


def _train_and_record(store: StudyStore, evaluator: CNNEvaluator, genome: Genome, source: FrozenTrial,
                      trainer, global_batch: int) -> FrozenTrial:
    space = evaluator.space
    trial = store.start(genome, space.genes(), {attrs.GENOME: space.format(genome), attrs.TRAINED_FROM: source.number})
    trial.set_user_attr(attrs.KEY, f"{genome.key()}#trained-{trial.number}")
    context = EvaluationContext(int(source.user_attrs.get(attrs.GENERATION, 0) or 0), [], cache_dir=store.cache_dir,
                                trial=trial, study=store.study)
    try:
        with store.heartbeat(trial):
            evaluation = evaluator(genome, context)
    except CandidateFailed as failure:
        return store.fail(trial, str(failure), retry=False)
    except BaseException as error:
        reason = "interrupted" if isinstance(error, KeyboardInterrupt) else f"{type(error).__name__}: {error}"
        store.fail(trial, reason, retry=False)
        raise
    extra = {**evaluation.attrs, attrs.TRAINED_FROM: source.number}
    if trainer is not None:
        extra[attrs.DISTRIBUTED] = trainer.describe(evaluator.device, global_batch)
    record = store.prune if evaluation.pruned else store.complete
    return record(trial, evaluation.values, extra, evaluation.weights)
