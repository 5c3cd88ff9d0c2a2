"""One dense training loop for every candidate, readable in one sitting.

:func:`train` sets up, runs :func:`run_epoch` until the step budget is spent (each batch one
:func:`train_step`), re-estimates BatchNorm statistics, stops the clock and only then
measures validation accuracy (a hook that measured the model it stopped spares it that, see
:func:`_measured_at_stop`). Accelerators plug in through the events of
:mod:`automl.train.events`, fired at every point by a dispatcher (a loop over an empty tuple
when there are none); TEARDOWN runs from ``finally``, so a candidate that dies leaves nothing
behind. A loss that diverges (:mod:`automl.train.divergence`) ends training with
:class:`CandidateFailed`. The recipe itself is :class:`automl.train.config.TrainConfig`.

Where the training batches come from is a :data:`BatchSource` (by default the split's own
shuffled batches); data parallelism (:mod:`automl.evaluate.distributed`) passes one that gives
each process its share of every global batch, and wraps the model through an event hook - the
loop itself knows nothing of processes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from automl.data import Dataset, Split, batches_per_epoch
from automl.train.config import SCHEDULES, TrainConfig, make_optimizer, make_scheduler
from automl.train.divergence import CHECK_EVERY, DivergenceGuard
from automl.train.events import Dispatcher, Event, TrainState
from automl.train.measure import evaluate, recalibrate_batchnorm

FINITE_CHECK_EVERY = CHECK_EVERY  # the name older callers know

__all__ = ["SCHEDULES", "BatchSource", "TrainConfig", "TrainResult", "evaluate", "make_optimizer", "make_scheduler",
           "recalibrate_batchnorm", "resize_batch", "run_epoch", "shuffled_batches", "train", "train_step"]

# (split, batch size, generator, device) -> one epoch of (inputs, targets) training batches
BatchSource = Callable[[Split, int, torch.Generator, torch.device], Iterable[tuple[Tensor, Tensor]]]


def shuffled_batches(split: Split, batch_size: int, generator: torch.Generator,
                     device: torch.device) -> Iterable[tuple[Tensor, Tensor]]:
    """The default :data:`BatchSource`: one shuffled pass, the last partial batch dropped."""
    return split.batches(batch_size, shuffle=True, generator=generator, drop_last=True, device=device)


@dataclass
class TrainResult:
    """What one training run measured. ``seconds`` is training alone, never evaluation."""

    accuracy: float
    loss: float
    seconds: float
    eval_seconds: float
    epochs: float
    samples: int
    samples_per_s: float
    history: list[dict[str, float]] = field(default_factory=list)
    accelerators: dict[str, dict[str, Any]] = field(default_factory=dict)
    model: nn.Module | None = field(default=None, repr=False)  # the trained model (possibly reshaped)


def train(model: nn.Module, data: Dataset, config: TrainConfig, seed: int = 0,
          accelerators: Sequence[Any] = (), device: torch.device | str = "cpu",
          on_epoch: Callable[[int, int, float], None] | None = None,
          cache_dir: Path | None = None, context: Any = None,
          batches: BatchSource | None = None) -> TrainResult:
    """Train ``model`` on ``data.train``; return validation accuracy and what was measured.

    Deterministic for a seed on a given machine: batch order comes from a generator seeded
    with ``seed``, and the global torch RNG is seeded with it too. ``batches`` replaces where
    each epoch's batches come from; ``config.batch_size`` stays the (global) batch of one step,
    which the step budget and the schedule count in.
    """
    device = torch.device(device)
    torch.manual_seed(seed)
    model = model.to(device=device, memory_format=config.memory_format).train()

    def criterion(outputs: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(outputs, targets, label_smoothing=config.label_smoothing)

    state = TrainState(model, None, None, 0, 0, data.input_shape, device, train=data.train, val=data.val,
                       num_classes=data.num_classes, seed=seed, cache_dir=cache_dir, context=context,
                       config=config, criterion=criterion, batches=batches or shuffled_batches)
    fire = Dispatcher(accelerators, state)
    failure: BaseException | None = None
    try:
        return _fit(state, fire, torch.Generator().manual_seed(seed), on_epoch)
    except BaseException as error:  # out of memory, divergence, a hook's bug: undo, then re-raise
        failure = error
        raise
    finally:
        fire.teardown(failure)


def _fit(state: TrainState, fire: Dispatcher, generator: torch.Generator,
         on_epoch: Callable[[int, int, float], None] | None) -> TrainResult:
    config, device = state.config, state.device
    _sync(device)
    started = time.perf_counter()  # one-off work an accelerator does at SETUP is training time
    _setup(state, fire)
    guard = DivergenceGuard(state.num_classes)
    history: list[dict[str, float]] = []
    planned = state.batch_size
    for epoch in range(state.epochs):
        state.epoch = epoch
        if state.batch_size != planned:  # an accelerator changed the mini-batch (PruneTrain)
            resize_batch(state)
            planned = state.batch_size
        history.append(run_epoch(state, fire, generator, guard))
        if on_epoch is not None:
            on_epoch(epoch + 1, state.epochs, history[-1]["loss"])
        if state.stop:
            break
    fire(Event.FIT_END)
    measured = _measured_at_stop(state, fire)
    if measured is None:
        recalibrate_batchnorm(state.model, state.train, config.batch_size, config.bn_samples,
                              generator, device, config.memory_format)
    _sync(device)
    seconds = time.perf_counter() - started

    fire(Event.EVAL_START)
    eval_started = time.perf_counter()
    state.accuracy = measured if measured is not None else evaluate(
        state.model, state.val, config.eval_batch_size, device, config.channels_last)
    eval_seconds = time.perf_counter() - eval_started
    fire(Event.EVAL_END)
    return TrainResult(
        accuracy=state.accuracy, loss=history[-1]["loss"] if history else math.nan, seconds=seconds,
        eval_seconds=eval_seconds, epochs=state.epochs_done, samples=state.samples,
        samples_per_s=state.samples / seconds if seconds > 0 else 0.0, history=history,
        accelerators={hook.name: hook.report() for hook in fire.hooks}, model=state.model,
    )


AFTER_STOP = (Event.EPOCH_END, Event.FIT_END, Event.EVAL_START, Event.EVAL_END)


def _measured_at_stop(state: TrainState, fire: Dispatcher) -> float | None:
    """The accuracy a hook measured on the model when it stopped training (successive
    halving measures at its rung, then stops), kept as the final one when no hook acts between
    that measurement and the evaluation - nothing can have changed the model or how it is
    evaluated. Measuring it twice cost a stopped half-epoch candidate on the embedded data over
    a third of its image passes. Otherwise (``None``) the trainer measures as always."""
    if not state.stop or state.stop_accuracy is None or fire.listening(AFTER_STOP):
        return None
    return state.stop_accuracy


def _setup(state: TrainState, fire: Dispatcher) -> None:
    """SETUP (data and model may be replaced), then the step budget, optimizer and schedule
    sized for what SETUP left, then INIT."""
    config = state.config
    state.batch_size = config.batch_size
    fire(Event.SETUP)
    state.model = state.model.to(device=state.device, memory_format=config.memory_format)
    steps_per_epoch = batches_per_epoch(state.train, config.batch_size, drop_last=True)
    state.total_steps = state.schedule_steps = max(1, round(config.epochs * steps_per_epoch))
    state.steps_per_epoch = steps_per_epoch
    state.epochs = math.ceil(state.total_steps / steps_per_epoch)
    state.optimizer = make_optimizer(state.model, config)
    state.scheduler = make_scheduler(state.optimizer, config, state.total_steps)
    fire(Event.INIT)


def run_epoch(state: TrainState, fire: Dispatcher, generator: torch.Generator,
              guard: DivergenceGuard) -> dict[str, float]:
    """One pass over the training batches (ends early at the step budget or a stop);
    returns the epoch's history entry: position in epochs, mean task loss, seconds."""
    config = state.config
    started = time.perf_counter()
    fire(Event.EPOCH_START)
    guard.begin_epoch()
    loss_sum = torch.zeros((), device=state.device)
    steps = 0
    source = state.batches or shuffled_batches
    for inputs, targets in source(state.train, state.batch_size, generator, state.device):
        task_loss = train_step(state, fire, inputs.contiguous(memory_format=config.memory_format), targets)
        loss_sum += task_loss  # the task's loss, before accelerators add to or scale it
        steps += 1
        guard.after_step(task_loss, loss_sum, steps, state.epoch)
        if state.stop or state.step >= state.total_steps:
            break
    mean_loss = guard.check(loss_sum, steps, state.epoch) / max(steps, 1)
    fire(Event.EPOCH_END)
    if state.model_changed:
        _rebuild_optimizer(state)
    _sync(state.device)
    return {"epoch": state.epochs_done, "loss": mean_loss,
            "seconds": time.perf_counter() - started}


def train_step(state: TrainState, fire: Dispatcher, inputs: Tensor, targets: Tensor) -> Tensor:
    """Forward, loss, backward, update and schedule for one batch; returns the task loss
    (detached, on the device: reading it would sync)."""
    state.inputs, state.targets = inputs, targets
    fire(Event.BATCH)
    if state.model_changed:  # reshaped between two steps (PruneTrain)
        _rebuild_optimizer(state)
    state.outputs = state.model(state.inputs)
    state.loss = task_loss = state.criterion(state.outputs, state.targets)
    fire(Event.LOSS)
    state.optimizer.zero_grad(set_to_none=True)
    state.loss.backward()
    fire(Event.AFTER_BACKWARD)
    fire(Event.BEFORE_STEP)
    if state.skip_step:
        state.skip_step = False
    else:
        state.optimizer.step()
    _advance_schedule(state)
    state.samples += len(state.targets)
    state.step += 1
    fire(Event.AFTER_STEP)
    return task_loss.detach()


def _advance_schedule(state: TrainState) -> None:
    """Move the schedule by the samples this step trained, in steps of the configured
    mini-batch: one step per step unless the mini-batch changed (never past its end)."""
    before = state.schedule_position
    state.schedule_position = before + state.batch_size / state.config.batch_size
    end = max(state.schedule_steps, 1)
    for _ in range(min(int(state.schedule_position), end) - min(int(before), end)):
        state.scheduler.step()


def resize_batch(state: TrainState) -> None:
    """The mini-batch changed between epochs: re-plan the step budget to train the same samples
    at the new size, and rebuild the optimizer at ``lr x state.lr_scale`` with its state (momentum)
    carried and the schedule where the samples trained so far left it."""
    state.steps_per_epoch = batches_per_epoch(state.train, state.batch_size, drop_last=True)
    remaining = max(0.0, state.schedule_steps - state.schedule_position) * state.config.batch_size
    state.total_steps = state.step + max(1, math.ceil(remaining / state.batch_size - 1e-9))
    if not state.model_changed:  # a reshaping accelerator has already carried (sliced) the state
        state.optimizer_state = {p: dict(state.optimizer.state[p]) for p in state.model.parameters()
                                 if state.optimizer.state.get(p)}
    _rebuild_optimizer(state)


def _rebuild_optimizer(state: TrainState, config: TrainConfig | None = None, total_steps: int | None = None) -> None:
    """A new optimizer for a reshaped model's parameters (at the learning rate in force), the
    schedule resumed where the samples trained so far left it, and the per-parameter state
    (momentum) the accelerator carried over loaded into it."""
    config = config or state.config
    if state.lr_scale != 1.0:
        config = replace(config, lr=config.lr * state.lr_scale)
    total = total_steps or state.schedule_steps or state.total_steps
    state.optimizer = make_optimizer(state.model, config)
    state.scheduler = make_scheduler(state.optimizer, config, total, min(int(state.schedule_position), total) - 1)
    for parameter, carried in state.optimizer_state.items():
        state.optimizer.state[parameter].update(carried)
    state.optimizer_state = {}
    state.model_changed = False


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
