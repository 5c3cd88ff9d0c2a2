"""The CNN evaluator: genome -> built model -> trained -> accuracy, FLOPs and side facts.

This is the evaluator ``automl search`` uses; the engine accepts any other callable.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache
from typing import Any

import torch

import accelerators
from automl.data import Dataset
from automl.core.evaluation import Evaluation, EvaluationContext
from automl.engine.search import candidate_seed
from automl.core.attrs import SCRATCH_REASON, TRANSFORMS, WARM_START_FROM
from automl.core.errors import CandidateFailed, CannotInherit, StudyError
from automl.nn.flops import count_flops, model_cost, training_flops
from automl.nn.calibrate import calibration_for, load_calibration
from automl.nn.costmodel import predict_training
from automl.data import batches_per_epoch
from automl.core.genome import Genome
from automl.core.progress import SilentProgress
from automl.train.loop import TrainConfig, TrainResult, train
from search_spaces.base import SearchSpace


class CNNEvaluator:
    """Trains each genome's model with the shared recipe and reports accuracy and FLOPs.

    With ``warm_epochs`` set, a child whose engine-chosen parent is trained starts from the
    parent's weights transformed by Net2Net (``space.inherit``) and trains ``warm_epochs``
    instead of ``config.epochs``. ``trainer`` replaces :func:`automl.train.loop.train` with a
    callable of its signature (e.g. :class:`automl.evaluate.distributed.DistributedTrainer`).
    ``predict_seconds=False`` skips the cost model's prediction recorded beside each measured
    time: tracing a training step costs 0.2-1.7 s per candidate on a CPU, as much as the
    training itself where candidates train for seconds (a Tree-CNN's branch searches).
    """

    accepts_context = True

    def __init__(self, space: SearchSpace, data: Dataset, config: TrainConfig, seed: int = 0,
                 accelerate: str | None = None, device: torch.device | str = "cpu",
                 progress: SilentProgress | None = None, warm_epochs: float | None = None,
                 trainer: Callable[..., Any] | None = None, predict_seconds: bool = True) -> None:
        self.space = space
        self.predict_seconds = predict_seconds
        self.data = data
        self.config = config
        self.warm_epochs = warm_epochs
        self.seed = seed
        self.accelerate = accelerate or ""
        accelerators.parse(self.accelerate)  # validate once, up front
        self.device = torch.device(device)
        self.progress = progress or SilentProgress()
        self.trainer = trainer or train
        self._cost = lru_cache(maxsize=4096)(self._measure_cost)
        self._calibration = None

    def for_worker(self, gpus: float = 0.0) -> CNNEvaluator:
        """The copy an executor sends to its workers (Ray tasks): silent (a worker has no
        terminal), on the worker's device - the GPU Ray gave the task when it asked for one,
        else the CPU - with the data moved there on the first candidate."""
        worker = copy.copy(self)
        worker.progress = SilentProgress()
        worker.device = torch.device("cuda" if gpus > 0 else "cpu")
        worker._data_ready = False
        return worker

    def __getstate__(self) -> dict:
        """Pickled for a worker: no caches, and the data as CPU tensors (the worker moves them)."""
        state = dict(self.__dict__)
        state.pop("_cost", None)
        state["_calibration"] = None
        if any(split.x is not None and split.x.device.type != "cpu"
               for split in (self.data.train, self.data.val, self.data.test)):
            state["data"] = _on_cpu(self.data)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._cost = lru_cache(maxsize=4096)(self._measure_cost)

    def build(self, genome: Genome) -> torch.nn.Module:
        return self.space.build(genome, self.data.input_shape, self.data.num_classes)

    def cost(self, genome: Genome) -> tuple[int, int]:
        """(forward FLOPs, params) of a genome's model, without training it."""
        return self._cost(genome)

    def _measure_cost(self, genome: Genome) -> tuple[int, int]:
        return model_cost(lambda: self.build(genome), self.data.input_shape)

    def violation(self, max_flops: float | None, max_params: float | None) -> Callable[[Genome], float] | None:
        """Relative amount by which a genome exceeds the limits (0 when feasible)."""
        if max_flops is None and max_params is None:
            return None

        def over(genome: Genome) -> float:
            flops, params = self.cost(genome)
            excess = 0.0
            if max_flops is not None:
                excess += max(0.0, flops / max_flops - 1.0)
            if max_params is not None:
                excess += max(0.0, params / max_params - 1.0)
            return excess

        return over

    def warm_start(self, genome: Genome, context: EvaluationContext | None, seed: int
                   ) -> tuple[torch.nn.Module | None, dict]:
        """The child's model inherited from its trained parent and its trial attributes; the
        model is None (train from scratch) when there is no parent, when the parent's weights
        are gone or when the space declines the move - the attributes then say why."""
        if self.warm_epochs is None or context is None or context.warm_parent is None:
            return None, {}
        parent_trial = context.warm_parent
        parent_genome = self.space.make(parent_trial.params)
        parent = self.build(parent_genome)
        try:
            parent.load_state_dict(context.load_weights())
            model, moves = self.space.inherit(parent, parent_genome, genome, self.data.input_shape,
                                              self.data.num_classes, torch.Generator().manual_seed(seed))
        except (StudyError, CannotInherit) as why:  # weights deleted or unreadable; a move declined
            return None, {SCRATCH_REASON: f"not warm-started from trial {parent_trial.number}: {why}"}
        return model, {WARM_START_FROM: parent_trial.number, TRANSFORMS: moves}

    def __call__(self, genome: Genome, context: EvaluationContext | None = None) -> Evaluation:
        if not getattr(self, "_data_ready", True):  # in a worker: the data to its device, once
            self.data.to(self.device, channels_last=True)
            self._data_ready = True
        seed = candidate_seed(self.seed, genome)
        torch.manual_seed(seed)
        model, warm_attrs = self.warm_start(genome, context, seed)
        warm = model is not None
        model = model if warm else self.build(genome)
        config = replace(self.config, epochs=self.warm_epochs) if warm else self.config
        flops, params = count_flops(model, self.data.input_shape), sum(p.numel() for p in model.parameters())
        chosen = accelerators.parse(self.accelerate)
        predicted = self.predicted_seconds(model, config) if self.predict_seconds else None
        try:
            result = self.trainer(model, self.data, config, seed=seed, accelerators=chosen,
                                  device=self.device, on_epoch=self.progress.epoch_finished,
                                  cache_dir=self.cache_dir(context), context=context)
        except torch.OutOfMemoryError as error:
            raise CandidateFailed(f"out of memory: {str(error).splitlines()[0]}") from None
        training_flops_total = training_flops(flops, max(result.samples, 1))
        for report in result.accelerators.values():
            if "training_flops_saved" in report:
                report["training_flops_saved_fraction"] = report["training_flops_saved"] / training_flops_total
        attrs = {
            "flops": flops, "mflops": flops / 1e6, "params": params,
            "seconds": result.seconds, "predicted_seconds": predicted, "eval_seconds": result.eval_seconds, "epochs": result.epochs,
            "samples_per_s": result.samples_per_s, "train_loss": result.loss, "seed": seed,
            "accelerators": [a.spec() for a in chosen], "accelerator_reports": result.accelerators,
            "device": str(self.device), "warm_start": warm, **warm_attrs,
        }
        for name, report in result.accelerators.items():
            if report.get("architecture_string") and report.get("flops_after", 0) < report.get("flops_before", 0):
                # a method that reshaped the model (PruneTrain) found an architecture of its own:
                # the accuracy measured belongs to it, so it is recorded with its own cost
                attrs["discovered_architecture"] = {
                    "by": name, "architecture": report["architecture_string"], "accuracy": result.accuracy,
                    "flops": report["flops_after"], "mflops": report["flops_after"] / 1e6,
                    "params": report.get("params_after")}
        weights = result.model.state_dict()
        if not self.matches_genome(weights, genome):
            # an accelerator reshaped or wrapped the model (PruneTrain, an encoder): these weights
            # cannot seed a Net2Net child of this genome, so they are not offered as a parent
            attrs["weights"] = "not stored: the trained model no longer has its genome's shape"
            weights = None
        pruned = any(report.get("pruned") for report in result.accelerators.values())
        return Evaluation({"accuracy": result.accuracy, "flops": float(flops)}, attrs, weights=weights,
                          pruned=pruned)

    def predicted_seconds(self, model: torch.nn.Module, config: TrainConfig) -> float:
        """The cost model's training seconds for this run (plain fp32 training; the machine is
        calibrated once and cached), recorded beside the measured seconds."""
        if self._calibration is None:
            self._calibration = load_calibration(self.device)
        if self._calibration is None:  # a machine's first run: say why the first trial waits
            self.progress.message("calibrating the cost model on this machine in fp32, once (about half a minute "
                                  "on 2 cores; cached for later runs, `automl costmodel --calibrate` redoes it)")
            started = time.perf_counter()
            self._calibration = calibration_for(self.device, formats=("fp32",))
            self.progress.message(f"calibrated in {time.perf_counter() - started:.0f} s")
        steps = max(1, round(config.epochs * batches_per_epoch(self.data.train, config.batch_size)))
        return predict_training(model, self.data.input_shape, config.batch_size, steps, self._calibration,
                                "fp32", config.bn_samples)

    def matches_genome(self, weights: dict, genome: Genome) -> bool:
        expected = self.build(genome).state_dict()
        return expected.keys() == weights.keys() and all(
            expected[k].shape == weights[k].shape for k in expected)

    @staticmethod
    def cache_dir(context: EvaluationContext | None):
        """The study's folder for one-off artifacts accelerators share across candidates."""
        return context.cache_dir if context is not None else None


def _on_cpu(data: Dataset) -> Dataset:
    """A copy of the data whose splits are CPU tensors (the original stays where it is)."""
    def moved(split):
        return replace(split, x=split.x.cpu() if split.x is not None else None, y=split.y.cpu())

    return replace(data, train=moved(data.train), val=moved(data.val), test=moved(data.test))
