"""``earlystop``: successive halving for a multi-objective search.

Successive halving (Jamieson & Talwalkar 2016; asynchronous form: Li et al. 2018, "A System
for Massively Parallel Hyperparameter Tuning", ASHA) stops a candidate at a checkpoint
("rung") when it is not among the best 1/eta of the candidates that reached the same rung.
Optuna's pruners compare one objective and refuse multi-objective studies; here the
comparison is the search's own: candidates at a rung are ordered as NSGA-II orders them -
by non-domination front of (rung accuracy, FLOPs), then by crowding distance within a front -
so a cheap model is not pruned just for being less accurate than an expensive one.

What it does:

- rungs at ``first`` x eta^i of the candidate's step budget (below 1): with the defaults
  (first 0.33, eta 3) one rung, a third of the way; a warm-started child's budget is its
  shorter warm budget, so its rungs come at the same fractions of its own training;
- at a rung (AFTER_STEP event, once the rung's steps are done) it measures validation
  accuracy (BatchNorm statistics re-estimated on 512 training images first - at a third of an
  epoch the running averages still describe the untrained network and every candidate reads as
  chance; the measurement runs on the training clock - it is the method's own cost), records
  (accuracy, FLOPs) on the board, and, once at least ``min_peers`` other candidates reached
  the rung, stops training unless the candidate ranks in the top ceil(n / eta);
- a stopped candidate's partial accuracy is that rung measurement: the trainer keeps it
  (``TrainState.stop_accuracy``) instead of measuring the same model again, unless another
  method acts after the stop (at EPOCH_END, FIT_END or around the evaluation) - then the
  trainer finishes it normally (BN re-estimated on the configured images, validation accuracy).
  Either way it is a real measurement of the model stored. ``report()["pruned"]`` makes the
  evaluator store it as a PRUNED Optuna trial that keeps its partial values (user attr
  ``partial_values``); the engine uses them for selection, the Pareto front excludes it, the
  plots mark it.

The board: inside a search, the study itself (rung records are user attrs of the trials, so
several workers sharing a study see each other's); without a study (``automl.training.train``
called directly), one board per process, :data:`PROCESS_BOARD`; the benchmark gives each
setting it compares a :class:`MemoryBoard` of its own.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np
import torch
from optuna.trial import TrialState

from accelerators.base import Accelerator, Option
from automl.train.events import Event, TrainState
from automl.nn.flops import count_flops, training_flops
from automl.core.pareto import nsga_order
from automl.train.measure import evaluate, recalibrate_batchnorm

RUNG_ATTR = "rung_accuracy"
RECALIBRATION_SAMPLES = 512  # images to re-estimate BatchNorm statistics at a rung


class Board(Protocol):
    def peers(self, rung: str) -> list[tuple[float, float]]: ...

    def record(self, rung: str, accuracy: float, flops: float) -> None: ...


class MemoryBoard:
    """Rung records of the candidates trained in this process."""

    def __init__(self) -> None:
        self.records: dict[str, list[tuple[float, float]]] = {}

    def peers(self, rung: str) -> list[tuple[float, float]]:
        return list(self.records.get(rung, []))

    def record(self, rung: str, accuracy: float, flops: float) -> None:
        self.records.setdefault(rung, []).append((accuracy, flops))

    def clear(self) -> None:
        self.records.clear()


PROCESS_BOARD = MemoryBoard()


class StudyBoard:
    """Rung records kept on the study's trials (user attrs), shared by every worker."""

    def __init__(self, study, trial) -> None:
        self.study, self.trial = study, trial
        self.mine: dict[str, float] = {}

    def peers(self, rung: str) -> list[tuple[float, float]]:
        found = []
        states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
        for other in self.study.get_trials(deepcopy=False, states=states):
            if other.number == self.trial.number or other.user_attrs.get("duplicate_of") is not None:
                continue
            accuracy = other.user_attrs.get(RUNG_ATTR, {}).get(rung)
            if accuracy is not None and "rung_flops" in other.user_attrs:
                found.append((float(accuracy), float(other.user_attrs["rung_flops"])))
        return found

    def record(self, rung: str, accuracy: float, flops: float) -> None:
        self.mine[rung] = accuracy
        self.trial.set_user_attr(RUNG_ATTR, dict(self.mine))
        self.trial.set_user_attr("rung_flops", flops)


def survives(mine: tuple[float, float], peers: list[tuple[float, float]], eta: int) -> bool:
    """Whether (accuracy, flops) ranks in the top ceil(n / eta) among itself and its peers."""
    records = [mine, *peers]
    points = np.array([[-accuracy, flops] for accuracy, flops in records], dtype=float)
    keep = max(1, math.ceil(len(records) / eta))
    return 0 in nsga_order(points)[:keep]


class EarlyStop(Accelerator):
    name = "earlystop"
    kind = "fidelity"
    summary = "successive halving at epoch checkpoints, ranked by NSGA-II order; stopped trials are PRUNED"
    paper = "Jamieson & Talwalkar 2016 (successive halving); Li et al. 2018 (asynchronous, ASHA)"
    order = 95  # schedule: reads the model after every other method acted on it
    ddp_safe = False
    ddp_note = (
        "each rank would decide at a rung on its own; a rank that stops while the others train "
        "hangs their all-reduce")
    export_safe = False
    export_note = ("it decides on validation accuracy, and a retraining for export holds out the test split "
                   "as its validation split: the exported model's test accuracy would have chosen its training")
    events = frozenset({Event.INIT, Event.AFTER_STEP})
    options = {
        "eta": Option(3, "keep the best 1/eta at each rung", lambda v: v >= 2, ">= 2"),
        "first": Option(0.33, "first rung, as a fraction of the step budget", lambda v: 0.0 < v < 1.0,
                        "0 < first < 1"),
        "min_peers": Option(4, "peers needed at a rung before anything is stopped", lambda v: v >= 1, ">= 1"),
    }

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self.rungs: dict[int, str] = {}
        self.board: Board = PROCESS_BOARD
        self.flops = 0.0
        self.measured: dict[str, float] = {}
        self.stopped_at: float | None = None
        self.steps_budget = 0
        self.steps_done = 0
        self.batch_size = 0

    def apply(self, event: Event, state: TrainState) -> None:
        if event is Event.INIT:
            context = state.context
            if getattr(context, "study", None) is not None and getattr(context, "trial", None) is not None:
                self.board = StudyBoard(context.study, context.trial)
            self.flops = float(count_flops(state.model, state.input_shape))
            self.steps_budget = state.total_steps
            self.batch_size = state.config.batch_size if state.config is not None else 0
            fraction = self.values["first"]
            while fraction < 1 - 1e-9:
                step = round(fraction * self.steps_budget)
                if 0 < step < self.steps_budget:
                    self.rungs[step] = f"{fraction:.3f}"
                fraction *= self.values["eta"]
        elif event is Event.AFTER_STEP:
            self.steps_done = state.step
            rung = self.rungs.get(state.step)
            if rung is None:
                return
            accuracy = self._checkpoint_accuracy(state)
            peers = self.board.peers(rung)
            self.board.record(rung, accuracy, self.flops)
            self.measured[rung] = accuracy
            if len(peers) >= self.values["min_peers"] and not survives((accuracy, self.flops), peers,
                                                                       self.values["eta"]):
                state.stop = True  # the trainer ends training after this step
                state.stop_accuracy = accuracy
                self.stopped_at = state.step / state.steps_per_epoch

    def state_dict(self) -> dict[str, Any]:
        return {"measured": dict(self.measured), "stopped_at": self.stopped_at, "steps_done": self.steps_done}

    def _checkpoint_accuracy(self, state: TrainState) -> float:
        """Validation accuracy now. BatchNorm's running averages still remember the untrained
        network this early, so they are re-estimated first (as the trainer does at the end;
        training itself uses batch statistics, so this changes nothing else)."""
        generator = torch.Generator().manual_seed(state.seed + state.step)
        memory_format = torch.channels_last if state.config.channels_last else torch.contiguous_format
        recalibrate_batchnorm(state.model, state.train, state.config.batch_size, RECALIBRATION_SAMPLES,
                              generator, state.device, memory_format)
        state.model.train()
        return evaluate(state.model, state.val, state.config.eval_batch_size, state.device,
                        state.config.channels_last)

    def report(self) -> dict[str, Any]:
        skipped = max(self.steps_budget - self.steps_done, 0) if self.stopped_at is not None else 0
        return {"pruned": self.stopped_at is not None, "stopped_at_epoch": self.stopped_at,
                "rung_accuracy": dict(self.measured), "steps_skipped": skipped,
                "training_flops_saved": training_flops(self.flops, skipped * self.batch_size)}
