"""Assemble a search from settings: data, space, evaluator, study, engine.

The CLI parses flags into :class:`SearchSettings` and calls :func:`run_search`; a script can
do the same. A resumed search takes its settings from the study, so the replay matches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import accelerators
import search_spaces
from automl import __version__
from automl.app.config import SearchSettings
from automl.data import dataset_names, load_dataset
from automl.engine.candidates import SearchResult
from automl.engine.search import Search
from automl.engine.nsga2.recipe import get_recipe
from automl.engine.strategy import STRATEGIES
from automl.core.errors import AutomlError, StudyError, UnknownNameError
from automl.evaluate.cnn import CNNEvaluator
from automl.evaluate.devices import pick_device
from automl.core.pareto import DEFAULT_OBJECTIVES
from automl.core.progress import SilentProgress
from automl.store.study import StudyStore, check_study_name
from automl.train.loop import TrainConfig

# Settings a resumed study keeps: changing them would change what the search asks for.
FIXED_ON_RESUME = ("space", "dataset", "seed", "strategy", "recipe", "population", "preselect", "epochs",
                   "warm_epochs", "warm_start", "batch_size", "lr", "accelerate", "max_flops", "max_params")
STORED = FIXED_ON_RESUME + ("data_root", "device")


def validate_names(settings: SearchSettings) -> None:
    """Fail fast, before any data is loaded or anything is stored."""
    search_spaces.get(settings.space)
    if settings.strategy not in STRATEGIES:
        raise UnknownNameError(f"unknown strategy {settings.strategy!r} (known: {', '.join(STRATEGIES)})")
    if get_recipe(settings.recipe).name != "nsga2" and settings.strategy != "nsga2":
        raise AutomlError(f"--recipe {settings.recipe} is a recipe of the nsga2 strategy, not of {settings.strategy}")
    accelerators.parse(settings.accelerate)
    if not (settings.dataset in dataset_names() or settings.dataset.startswith("imagefolder:")):
        raise UnknownNameError(f"unknown dataset {settings.dataset!r} (known: {', '.join(dataset_names())})")
    pick_device(settings.device)  # a misspelt or absent GPU, before data is loaded
    if settings.parallel:
        from automl.engine.ray_executor import require_ray

        require_ray()  # a missing Ray is one line, before anything is loaded or stored
    if settings.study is not None:
        check_study_name(settings.study)


def check_reachable(space, cost, max_flops: float | None, max_params: float | None) -> None:
    """Decide at once, before anything is stored, whether the constraints can be met: the
    space's smallest genome (:meth:`SearchSpace.smallest`) is the cheapest it can reach."""
    if max_flops is None and max_params is None:
        return
    smallest = space.smallest()
    flops, params = cost(smallest)
    for flag, limit, value in (("--max-flops", max_flops, flops), ("--max-params", max_params, params)):
        if limit is not None and value > limit:
            raise AutomlError(f"{flag} {_amount(limit)} cannot be met: the smallest architecture of space "
                              f"{space.name!r} ({space.format(smallest)}) has {_amount(value)}")


def _amount(value: float) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.4g}{suffix}"
    return f"{value:.4g}"


def resumed_settings(settings: SearchSettings, stored: dict[str, Any], explicit: set[str]) -> SearchSettings:
    """The study's settings, with a clear error for a flag that contradicts them."""
    values = {}
    for name in STORED:
        if name not in stored:
            continue
        if name in explicit and name not in FIXED_ON_RESUME:
            continue  # where the data lives and what runs it may change between machines
        if name in explicit and getattr(settings, name) != stored[name]:
            raise AutomlError(f"--{name.replace('_', '-')} {getattr(settings, name)} differs from the "
                              f"study's {stored[name]}; a resumed study keeps its settings")
        values[name] = stored[name]
    if not ({"budget", "generations"} & explicit) and stored.get("budget") is not None:
        values["budget"], values["generations"] = stored["budget"], None
    return replace(settings, **values)


def run_search(settings: SearchSettings, explicit: set[str] | None = None,
               progress: SilentProgress | None = None, trainer: Callable[..., Any] | None = None) -> SearchResult:
    """Run (or resume) the search the settings describe; returns the engine's result.

    ``trainer`` replaces the training loop (``--dry-run`` passes one that predicts instead)."""
    explicit = explicit or set()
    settings.check()  # types and ranges first: nothing is loaded or created for bad settings
    validate_names(settings)
    if settings.resume:
        if not settings.study:
            raise StudyError("--resume needs --study NAME (the study to continue)")
        store = StudyStore.open(settings.study, settings.storage)
        settings = resumed_settings(settings, store.settings, explicit)
        validate_names(settings)
    space = search_spaces.get(settings.space)
    device = pick_device(settings.device)
    executor = make_executor(settings, device)
    data = load_dataset(settings.dataset, settings.data_root, settings.download)
    if executor is None:  # with workers the data travels to them from the CPU, and they move it
        data.to(device, channels_last=True)
    config = TrainConfig(epochs=settings.epochs, batch_size=settings.batch_size, lr=settings.lr)
    evaluator = CNNEvaluator(space, data, config, seed=settings.seed, accelerate=settings.accelerate,
                             device=device, progress=progress, warm_epochs=settings.child_epochs(),
                             **({"trainer": trainer} if trainer is not None else {}))
    check_reachable(space, evaluator.cost, settings.max_flops, settings.max_params)
    if executor is not None:
        executor.connect()  # an unreachable cluster is one line before any study exists
    if not settings.resume:
        name = settings.study_name()
        stored = {k: getattr(settings, k) for k in STORED}
        stored.update(budget=settings.total_budget(), study=name, version=__version__,
                      train=config.as_dict(), data=data.describe())
        try:
            store = StudyStore.create(name, settings.storage, DEFAULT_OBJECTIVES, stored,
                                      artifacts=Path(settings.artifacts) if settings.artifacts else None)
        except BaseException:
            if executor is not None:
                executor.close()  # the Ray instance connect() started
            raise
        settings = replace(settings, study=name)
    elif settings.total_budget() != store.settings.get("budget"):
        store.update_settings(budget=settings.total_budget())
    if progress is not None:
        warm = (f", warm-started children {settings.child_epochs()} epoch(s)" if settings.warm_start
                else ", no warm starts")
        where = "Ray workers" if executor is not None else device
        progress.message(f"study {store.name!r}: {settings.strategy} over {settings.space} on {data.name}, "
                         f"{settings.total_budget()} evaluations of {settings.epochs} epoch(s){warm} on {where}")
    search = Search(space, evaluator, store, budget=settings.total_budget(), strategy=settings.strategy,
                    population=settings.population, seed=settings.seed,
                    violation=evaluator.violation(settings.max_flops, settings.max_params),
                    known=lambda genome: {"flops": evaluator.cost(genome)[0]}, preselect=settings.preselect,
                    recipe=settings.recipe, warm_start=settings.warm_start, progress=progress, executor=executor)
    return search.run()


def make_executor(settings: SearchSettings, device):
    """The Ray executor --workers/--ray ask for (None: train here, one candidate at a time).
    A trial asks for a GPU when --gpus-per-trial says so, or by default when --device
    resolves to a GPU here; Ray then gives each task its own."""
    if not settings.parallel:
        return None
    from automl.engine.ray_executor import RayExecutor

    gpus = settings.gpus_per_trial
    if gpus is None:
        gpus = 1.0 if device.type == "cuda" else 0.0
    if gpus > 0 and settings.ray is None:
        import torch

        if not torch.cuda.is_available():
            raise AutomlError(f"--gpus-per-trial {gpus:g}: this machine has no CUDA GPU for its local Ray "
                              "instance (use --gpus-per-trial 0, or --ray for a cluster with GPUs)")
    return RayExecutor(settings.workers, settings.ray, settings.cpus_per_trial, gpus)
