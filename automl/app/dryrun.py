"""``automl search --dry-run``: the predicted wall-clock of a whole search, before anything trains.

Why: a user planning a search wants to know whether it takes minutes or a night. Besides
training, a search builds every model, counts its FLOPs, lets the surrogate pre-select
children, loads a parent's weights and makes the Net2Net move, evaluates, stores weights and
writes the study; and which children inherit weights (so train ``E_child`` epochs instead of
``E``) the engine decides from genome distances to the trials trained so far. None of that is
a constant to guess, so the dry run *runs* the search: the real engine, evaluator and study
writes (on a temporary SQLite file, deleted afterwards) with a stand-in for the training loop
that trains nothing and returns the cost model's seconds. Then::

    T = (T_dry - T_stand_in) + sum over evaluations i of (t_train(genome_i, E_i) + t_eval(genome_i))

``T_dry`` is the dry run's own wall-clock, which holds every cost of the search outside
training and evaluation, measured on this machine; ``T_stand_in`` the time the stand-in
itself took (its cost-model traces: no part of a real search); ``t_train`` the cost model's
seconds for ``E_i`` epochs (with the trainer's BatchNorm re-estimation), ``E_i`` = ``E_child``
where the engine warm-started the child, else ``E``; ``t_eval`` the validation pass (eval-mode
forward batches). The stand-in's accuracy rises with log FLOPs, with noise fixed by the
candidate's seed: the first population is exactly the one the search will train (it does not
depend on results), later generations and so the share of warm starts are an estimate.
``subset:fraction=f`` is modelled as ``f`` of the steps; other accelerators are listed as not
modelled and predicted as plain training.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import replace
from typing import Any

import numpy as np


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


def stand_in_accuracy(flops: float, seed: int) -> float:
    """An accuracy for selection to work on: rising with log FLOPs, plus noise fixed by the seed."""
    noise = np.random.default_rng(seed).normal(0.0, 0.03)
    return float(min(1.0, max(0.0, 1.0 - 3.0 / math.log(max(flops, 10.0)) + noise)))


class PredictingTrainer:
    """Stands in for :func:`automl.train.loop.train`: trains nothing, returns the cost model's
    training and evaluation seconds, a stand-in accuracy and the untouched model (whose
    weights the study stores, at their real size). ``spent`` is the time it took itself."""

    def __init__(self, calibration: Any, fraction: float = 1.0, clock=time.perf_counter) -> None:
        self.calibration, self.fraction, self.clock = calibration, fraction, clock
        self.spent = 0.0

    def __call__(self, model, data, config, seed: int = 0, accelerators=(), device="cpu", on_epoch=None,
                 cache_dir=None, context=None):
        from automl.data import batches_per_epoch
        from automl.nn.costmodel import evaluation_seconds, step_cost, trace_step, training_seconds
        from automl.train.loop import TrainResult

        started = self.clock()
        per_epoch = batches_per_epoch(data.train, config.batch_size)
        steps = max(1, round(self.fraction * config.epochs * per_epoch))
        cost = step_cost(trace_step(model, data.input_shape, config.batch_size), self.calibration, "fp32",
                         config.batch_size)
        bn_batches = -(-config.bn_samples // config.batch_size) if config.bn_samples > 0 else 0
        seconds = training_seconds(cost, steps, bn_batches)
        evaluation = evaluation_seconds(model, data.input_shape, len(data.val), config.eval_batch_size,
                                        self.calibration)
        flops = sum(layer.forward_flops for layer in cost.layers) / config.batch_size
        self.spent += self.clock() - started
        return TrainResult(accuracy=stand_in_accuracy(flops, seed), loss=0.0, seconds=seconds,
                           eval_seconds=evaluation, epochs=config.epochs, samples=steps * config.batch_size,
                           samples_per_s=steps * config.batch_size / seconds, model=model)


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def predict_search(settings, clock: str = "wall") -> dict[str, Any]:
    """The predicted wall-clock of the search ``settings`` describe, with its parts.

    ``clock="cpu"`` predicts process CPU time instead (a CPU-time calibration, the dry run
    timed in CPU time): on a machine others share, what a benchmark can compare honestly."""
    from automl.app.runner import run_search
    from automl.evaluate.devices import pick_device
    from automl.nn.calibrate import calibration_for

    device = pick_device(settings.device)
    calibration = calibration_for(device, clock=clock, formats=("fp32",))
    fraction, unmodelled = _step_fraction(settings.accelerate)
    timer = CLOCKS[clock]
    trainer = PredictingTrainer(calibration, fraction, timer)
    with tempfile.TemporaryDirectory(prefix="automl-dry-run-") as folder:
        dry = replace(settings, study="dry-run", storage=f"sqlite:///{folder}/dry-run.db", artifacts=None,
                      resume=False, workers=None, ray=None)  # predicted for one candidate at a time, here
        started = timer()
        result = run_search(dry, trainer=trainer)
        elapsed = timer() - started
    rows = [{"genome": c.genome.key(), "generation": c.generation, "warm_start": bool(c.attrs.get("warm_start")),
             "epochs": c.attrs.get("epochs"), "training_s": c.attrs.get("seconds", 0.0),
             "evaluation_s": c.attrs.get("eval_seconds", 0.0)} for c in result.candidates if c.values is not None]
    training = sum(r["training_s"] for r in rows)
    evaluation = sum(r["evaluation_s"] for r in rows)
    fixed = max(elapsed - trainer.spent, 0.0)
    warm = sum(r["warm_start"] for r in rows)
    return {"predicted_seconds": fixed + training + evaluation, "evaluations": len(rows),
            "population": settings.population, "scratch_epochs": settings.epochs,
            "child_epochs": settings.child_epochs(), "warm_started": warm, "from_scratch": len(rows) - warm,
            "training_s": training, "evaluation_s": evaluation, "fixed_s": fixed,
            "fixed_s_per_evaluation": fixed / max(len(rows), 1), "dry_run_s": elapsed, "clock": clock, "device": str(device),
            "steps_fraction": fraction, "accelerators_not_modelled": unmodelled,
            "calibration": calibration.machine, "trials": rows,
            "parallel_not_modelled": bool(getattr(settings, "parallel", False))}


def describe(prediction: dict[str, Any]) -> str:
    """One paragraph for the terminal."""
    minutes = prediction["predicted_seconds"] / 60
    child = prediction["child_epochs"]
    warm = (f"{prediction['warm_started']} warm-started children at {child:g} epoch(s)" if child is not None
            else "no warm starts")
    text = (f"predicted wall-clock: {minutes:.1f} min for {prediction['evaluations']} evaluations on "
            f"{prediction['device']}: training {prediction['training_s']:.0f} s "
            f"({prediction['from_scratch']} from scratch at {prediction['scratch_epochs']:g} epoch(s), {warm}; "
            f"which children inherit is estimated with a stand-in accuracy), validation "
            f"{prediction['evaluation_s']:.0f} s, everything else {prediction['fixed_s']:.0f} s "
            f"({prediction['fixed_s_per_evaluation']:.2f} s per evaluation: building, FLOPs, pre-selection, "
            f"weights and study writes, timed by running the search without training)")
    if prediction["accelerators_not_modelled"]:
        text += f"; not modelled, predicted as plain training: {', '.join(prediction['accelerators_not_modelled'])}"
    if prediction.get("parallel_not_modelled"):
        text += "; --workers/--ray not modelled: predicted for one candidate at a time on this machine"
    return text
