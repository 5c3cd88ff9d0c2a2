"""``automl search --dry-run``: the predicted wall-clock of a whole search, before anything trains.

Why: a user planning a search wants to know whether it takes minutes or a night. The genomes a
search will meet are unknown until it runs (children depend on what their parents scored), so
the prediction costs ``population`` genomes sampled from the space (repaired under ``--max-flops``
as the engine repairs them) with
the cost model and charges every evaluation their mean::

    T = P x (t_train(E) + t_eval + c) + (N - P) x (t_train(E_child) + t_eval + c)

``P`` the population (trained from scratch for ``E`` epochs), ``N`` the budget, ``E_child``
the warm-started children's epochs (``E`` without warm starts), ``t_eval`` the validation
forward passes, ``c`` the fixed cost of one evaluation outside training (the trial's cost
trace, FLOPs count and study writes: the time of one trace measured here, plus
``STUDY_WRITE_S``). Accelerators change what a step costs: ``subset:fraction=f`` is modelled
as ``f`` of the steps; the others are listed as not modelled and predicted as plain training.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

STUDY_WRITE_S = 0.15  # per evaluation: trial creation, user attributes and the weights artifact (SQLite)


def _sample(space, rng: np.random.Generator, count: int, max_flops: float | None, flops_of) -> list:
    """``count`` genomes from the space, each repaired under ``max_flops`` as the engine repairs."""
    from automl.engine.search import repair_row

    n_choices = np.array([len(c) for c in space.genes().values()])
    genomes = []
    for _ in range(count):
        x = rng.integers(n_choices)
        if max_flops is not None:
            x = repair_row(x, n_choices, lambda row: max(0.0, flops_of(space.decode(row)) / max_flops - 1), rng)
        genomes.append(space.decode(x))
    return genomes


def _step_fraction(accelerate: str) -> tuple[float, list[str]]:
    """The fraction of steps the accelerators leave, and the ones the cost model does not model."""
    import accelerators

    fraction, unmodelled = 1.0, []
    for accelerator in accelerators.parse(accelerate):
        values = getattr(accelerator, "values", {}) or {}
        if accelerator.name == "subset" and "fraction" in values:
            fraction *= float(values["fraction"])
        else:
            unmodelled.append(accelerator.spec())
    return fraction, unmodelled


def predict_search(settings) -> dict[str, Any]:
    """The predicted wall-clock of the search ``settings`` describe, with its parts."""
    import search_spaces
    from automl.data import batches_per_epoch, load_dataset
    from automl.evaluate.devices import pick_device
    from automl.nn.calibrate import calibration_for
    from automl.nn.costmodel import step_cost, trace_step, training_seconds
    from automl.nn.flops import count_flops
    from automl.train.loop import TrainConfig

    space = search_spaces.get(settings.space)
    data = load_dataset(settings.dataset, settings.data_root, settings.download)
    device = pick_device(settings.device)
    calibration = calibration_for(device)
    config = TrainConfig(epochs=settings.epochs, batch_size=settings.batch_size, lr=settings.lr)
    fraction, unmodelled = _step_fraction(settings.accelerate)
    per_epoch = batches_per_epoch(data.train, config.batch_size)

    def build(genome):
        return space.build(genome, data.input_shape, data.num_classes)

    genomes = _sample(space, np.random.default_rng(settings.seed), settings.population, settings.max_flops,
                      lambda g: count_flops(build(g), data.input_shape))
    child_epochs = settings.child_epochs() if settings.warm_start else settings.epochs
    scratch, child, fixed = [], [], []
    for genome in genomes:
        started = time.perf_counter()
        cost = step_cost(trace_step(build(genome), data.input_shape, config.batch_size), calibration, "fp32",
                         config.batch_size)
        trace_s = time.perf_counter() - started
        eval_cost = step_cost(trace_step(build(genome), data.input_shape, config.eval_batch_size), calibration,
                              "fp32", config.eval_batch_size)
        evaluation = -(-len(data.val) // config.eval_batch_size) * eval_cost.forward_seconds
        bn = -(-config.bn_samples // config.batch_size)
        scratch.append(training_seconds(cost, max(1, round(fraction * settings.epochs * per_epoch)), bn))
        child.append(training_seconds(cost, max(1, round(fraction * child_epochs * per_epoch)), bn))
        fixed.append(evaluation + trace_s + STUDY_WRITE_S)
    budget = settings.total_budget()
    first = min(settings.population, budget)
    total = first * (statistics.fmean(scratch) + statistics.fmean(fixed)) + (budget - first) * (
        statistics.fmean(child) + statistics.fmean(fixed))
    return {"predicted_seconds": total, "evaluations": budget, "population": settings.population,
            "scratch_epochs": settings.epochs, "child_epochs": child_epochs, "device": str(device),
            "mean_scratch_training_s": statistics.fmean(scratch), "mean_child_training_s": statistics.fmean(child),
            "mean_fixed_s": statistics.fmean(fixed), "steps_fraction": fraction,
            "accelerators_not_modelled": unmodelled, "calibration": calibration.machine,
            "parallel_not_modelled": bool(getattr(settings, "parallel", False))}


def describe(prediction: dict[str, Any]) -> str:
    """One paragraph for the terminal."""
    minutes = prediction["predicted_seconds"] / 60
    text = (f"predicted wall-clock: {minutes:.1f} min for {prediction['evaluations']} evaluations on "
            f"{prediction['device']} ({prediction['population']} from scratch, "
            f"{prediction['mean_scratch_training_s']:.1f} s training each; the others "
            f"{prediction['mean_child_training_s']:.1f} s at {prediction['child_epochs']:g} epoch(s); "
            f"{prediction['mean_fixed_s']:.1f} s per evaluation outside training)")
    if prediction.get("parallel_not_modelled"):
        text += "; --workers/--ray not modelled: predicted for one candidate at a time on this machine"
    if prediction["accelerators_not_modelled"]:
        text += f"; not modelled, predicted as plain training: {', '.join(prediction['accelerators_not_modelled'])}"
    return text
