"""Training events, the state accelerators see, and the dispatcher that fires one at them
(in the manner of composer's Event and Engine).

The trainer's loop, with the event fired at each point::

    try:
        SETUP                         before the optimizer exists: state.train, state.val,
                                      state.input_shape and state.model may be replaced
                                      (a data subset, an encoded data set, a wrapped model)
        INIT                          model, optimizer and schedule built
        for each epoch:
            EPOCH_START
            for each batch:
                BATCH                 state.inputs / state.targets may be replaced; the model
                                      may be reshaped between two steps (state.model_changed)
                outputs = model(inputs)
                loss = criterion(outputs, targets)
                LOSS                  state.loss may be replaced (e.g. a penalty added)
                loss.backward()
                AFTER_BACKWARD        gradients exist
                BEFORE_STEP           gradients may be changed; state.skip_step drops the update
                optimizer.step(); schedule.step()
                AFTER_STEP            the weights are updated (a proximal step, a projection)
                                      every 16 steps: the divergence check (one device sync)
            EPOCH_END                 the model may be reshaped: set state.model_changed;
                                      state.batch_size / state.lr_scale may change: the
                                      next epoch trains at that mini-batch and learning rate
        FIT_END                       after the last epoch: undo what only training needs
        BatchNorm recalibrated (not when a stop's measurement is kept); the training clock stops
        EVAL_START                    the validation pass, off the clock
        EVAL_END                      state.accuracy is known
    finally:
        TEARDOWN                      every accelerator's teardown(state), in reverse order,
                                      also when the candidate died (out of memory, divergence,
                                      an exception inside a hook): hooks, swapped forwards,
                                      autocast contexts, frozen flags are gone before the
                                      next candidate starts. Idempotent.

An accelerator that reshapes the model (at BATCH or EPOCH_END) sets ``state.model_changed``;
the trainer then builds a new optimizer for the new parameters (carrying over the schedule
position) and loads into it the per-parameter state the accelerator left in
``state.optimizer_state`` (e.g. momentum buffers sliced like the weights). One that wants
training to stop early sets ``state.stop`` - with ``state.stop_accuracy`` too if it has just
measured the model it stops, which the trainer then keeps as the final accuracy when no hook
listens after the stop (EPOCH_END to EVAL_END); one that must drop an update (an fp16 overflow)
sets ``state.skip_step`` at BEFORE_STEP.

The mini-batch may change between epochs (PruneTrain enlarges it as the model shrinks): an
accelerator sets ``state.batch_size`` (and ``state.lr_scale``, the factor on the configured
learning rate, e.g. the linear scaling rule); the trainer reads both before the next epoch's
batches are drawn. The budget and the learning-rate schedule run on *samples*: the schedule
advances ``batch_size / config.batch_size`` of its steps per optimizer step (one, unless the
mini-batch changed), so it keeps its shape over the run, and the step budget
(``total_steps``, ``steps_per_epoch``) is re-planned at the new size to train the same
number of samples. The optimizer is rebuilt at the new learning rate with its state carried.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from automl.data import batches_per_epoch


class Event(Enum):
    SETUP = "setup"
    INIT = "init"
    EPOCH_START = "epoch_start"
    BATCH = "batch"
    LOSS = "loss"
    AFTER_BACKWARD = "after_backward"
    BEFORE_STEP = "before_step"
    AFTER_STEP = "after_step"
    EPOCH_END = "epoch_end"
    FIT_END = "fit_end"
    EVAL_START = "eval_start"
    EVAL_END = "eval_end"
    TEARDOWN = "teardown"


@dataclass
class TrainState:
    """Everything an accelerator may read or change during training."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    epochs: int
    steps_per_epoch: int
    input_shape: tuple[int, int, int]
    device: torch.device
    epoch: int = 0
    step: int = 0
    total_steps: int = 0  # the step budget (epochs may be fractional: the last epoch can be partial)
    samples: int = 0  # training samples seen so far
    inputs: Tensor | None = None
    targets: Tensor | None = None
    outputs: Tensor | None = None
    loss: Tensor | None = None
    accuracy: float | None = None  # the validation accuracy, known at EVAL_END
    model_changed: bool = False
    batch_size: int = 0  # the mini-batch in force (the config's unless an accelerator changed it)
    lr_scale: float = 1.0  # factor on the config's learning rate in force (read when the optimizer is built)
    schedule_steps: int = 0  # the schedule's length, in steps of the configured mini-batch (the budget in samples)
    schedule_position: float = 0.0  # samples trained / the configured mini-batch: where the schedule is
    optimizer_state: dict[Tensor, dict[str, Any]] = field(default_factory=dict)  # for a rebuilt optimizer
    skip_step: bool = False  # set at BEFORE_STEP to skip this optimizer step (e.g. fp16 overflow)
    stop: bool = False
    stop_accuracy: float | None = None  # validation accuracy a hook measured on the model it stopped (see loop)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    train: Any = None  # automl.data.Split the batches come from (replaceable at SETUP)
    val: Any = None  # automl.data.Split the final accuracy is measured on (replaceable at SETUP)
    num_classes: int = 0
    seed: int = 0
    config: Any = None  # the automl.train.config.TrainConfig in force (read-only)
    criterion: Any = None  # (outputs, targets) -> the task loss, as the trainer computes it
    cache_dir: Path | None = None  # where one-off artifacts (a trained encoder) persist across candidates
    context: Any = None  # the engine's EvaluationContext when the evaluator has one (peers, trial)
    batches: Any = None  # automl.train.loop.BatchSource: where each epoch's training batches come from

    @property
    def epochs_done(self) -> float:
        """Epochs trained so far, counted in samples (a mini-batch change leaves it as it is)."""
        if self.config is None or self.train is None:  # a hand-made state (tests): steps are the unit
            return self.step / max(self.steps_per_epoch, 1)
        return self.schedule_position / batches_per_epoch(self.train, self.config.batch_size, drop_last=True)


class Dispatcher:
    """Fires an event at every hook that matches it, in run order.

    The loop calls it at every point unconditionally: with no accelerators a firing is one
    loop over an empty tuple, so the plain path needs no ``if hooks:`` guards. A hook is any
    object with ``match(event, state)`` and ``apply(event, state)`` (an
    :class:`accelerators.base.Accelerator` or a test's recorder); TEARDOWN goes to its
    ``teardown(state)`` instead, so no method can forget to undo its set-up.
    """

    def __init__(self, hooks: Sequence[Any], state: TrainState) -> None:
        self.hooks = tuple(hooks)
        self.state = state

    def listening(self, events: Sequence[Event]) -> list[Any]:
        """The hooks subscribed to any of ``events`` (a hook that does not declare its events
        counts as subscribed to all)."""
        return [hook for hook in self.hooks
                if getattr(hook, "events", None) is None or not hook.events.isdisjoint(events)]

    def __call__(self, event: Event) -> None:
        for hook in self.hooks:
            if hook.match(event, self.state):
                hook.apply(event, self.state)

    def teardown(self, failure: BaseException | None = None) -> None:
        """TEARDOWN at every hook, last set up first undone; every hook's teardown runs even
        if an earlier one raised. When training already failed (``failure``), that error stays
        the one raised and a teardown error is added to it as a note; otherwise the first
        teardown error is raised after all ran."""
        broken: Exception | None = None
        for hook in reversed(self.hooks):
            teardown = getattr(hook, "teardown", None)
            if teardown is None:
                continue
            try:
                teardown(self.state)
            except Exception as error:  # noqa: BLE001 - the others must still be undone
                broken = broken or error
        if broken is None:
            return
        if failure is None:
            raise broken
        failure.add_note(f"and a teardown failed too: {type(broken).__name__}: {broken}")
