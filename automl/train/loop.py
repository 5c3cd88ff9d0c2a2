"""One dense training loop for every candidate.

SGD with Nesterov momentum, a one-cycle (or cosine) learning-rate schedule stepped per batch,
label smoothing, weight decay and channels_last memory. The loop fires the events of
:mod:`automl.events` so accelerators can plug in; with none, firing is one falsy check per
point. Training time is measured on its own: evaluation happens after the clock stops.
A loss that turns NaN or infinite ends training with :class:`CandidateFailed`.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from automl.data import Dataset, Split, batches_per_epoch
from automl.core.errors import AutomlError, CandidateFailed
from automl.train.events import Event, TrainState

SCHEDULES = ("onecycle", "cosine")
FINITE_CHECK_EVERY = 16  # steps between divergence checks (each check syncs with the device)


@dataclass(frozen=True)
class TrainConfig:
    """How every candidate is trained."""

    epochs: float = 1.0  # may be fractional: training stops after round(epochs x steps per epoch) steps
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    schedule: str = "onecycle"
    channels_last: bool = True
    eval_batch_size: int = 500
    bn_samples: int = 1024  # training images used to re-estimate BatchNorm statistics at the end

    def __post_init__(self) -> None:
        if not self.epochs > 0 or not math.isfinite(self.epochs):
            raise AutomlError(f"epochs must be a positive number, got {self.epochs}")
        if self.batch_size < 1:
            raise AutomlError(f"batch size must be at least 1, got {self.batch_size}")
        if not self.lr > 0 or not math.isfinite(self.lr):
            raise AutomlError(f"learning rate must be a positive number, got {self.lr}")
        if self.schedule not in SCHEDULES:
            raise AutomlError(f"unknown schedule {self.schedule!r} (known: {', '.join(SCHEDULES)})")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                           nesterov=True, weight_decay=config.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int,
                   last_step: int = -1) -> torch.optim.lr_scheduler.LRScheduler:
    if config.schedule == "onecycle":
        total = max(total_steps, 4)  # torch's one-cycle divides by zero below 2 steps per phase
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config.lr, total_steps=total, pct_start=max(0.25, 2 / total))
    else:
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total_steps, 1))
    with warnings.catch_warnings():  # replaying steps before any optimizer step is intended here
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step", category=UserWarning)
        for _ in range(last_step + 1):  # resume the schedule's position after a rebuild
            scheduler.step()
    return scheduler


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, split: Split, batch_size: int, samples: int,
                          generator: torch.Generator, device: torch.device,
                          memory_format: torch.memory_format = torch.contiguous_format) -> None:
    """Re-estimate BatchNorm running statistics with the final weights ("precise BN").

    After a short schedule the running averages still remember the early, very different
    weights, and evaluation-mode accuracy can collapse to chance although train-mode
    accuracy is high. A forward pass over ``samples`` training images in train mode with
    cumulative averaging fixes that for a small fraction of an epoch's cost.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms or samples <= 0:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average over the calibration batches
    was_training = model.training
    model.train()
    seen = 0
    for inputs, _ in split.batches(batch_size, shuffle=True, generator=generator, drop_last=True, device=device):
        model(inputs.contiguous(memory_format=memory_format))
        seen += len(inputs)
        if seen >= samples:
            break
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.train(was_training)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, batch_size: int = 500,
             device: torch.device | str = "cpu", channels_last: bool = True) -> float:
    """Top-1 accuracy of ``model`` on ``split`` in eval mode."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    for inputs, targets in split.batches(batch_size, device=device):
        inputs = inputs.contiguous(memory_format=memory_format)
        correct += (model(inputs).argmax(dim=1) == targets).sum()
    model.train(was_training)
    return correct.item() / max(len(split), 1)


def train(model: nn.Module, data: Dataset, config: TrainConfig, seed: int = 0,
          accelerators: Sequence[Any] = (), device: torch.device | str = "cpu",
          on_epoch: Callable[[int, int, float], None] | None = None,
          cache_dir: Path | None = None, context: Any = None) -> TrainResult:
    """Train ``model`` on ``data.train``; return validation accuracy and what was measured.

    Deterministic for a seed on a given machine: batch order comes from a generator seeded
    with ``seed``, and the global torch RNG is seeded with it too.
    """
    device = torch.device(device)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    model = model.to(device=device, memory_format=memory_format)
    model.train()

    hooks = list(accelerators)

    def criterion(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(outputs, targets, label_smoothing=config.label_smoothing)

    state = TrainState(model, None, None, 0, 0, data.input_shape, device, train=data.train, val=data.val,
                       num_classes=data.num_classes, seed=seed, cache_dir=cache_dir, context=context,
                       config=config, criterion=criterion)

    def fire(event: Event) -> None:
        for hook in hooks:
            if hook.match(event, state):
                hook.apply(event, state)

    history: list[dict[str, float]] = []
    samples = 0
    _sync(device)
    started = time.perf_counter()  # one-off work an accelerator does at SETUP is training time
    if hooks:
        fire(Event.SETUP)
        state.model = state.model.to(device=device, memory_format=memory_format)
    steps_per_epoch = batches_per_epoch(state.train, config.batch_size, drop_last=True)
    total_steps = max(1, round(config.epochs * steps_per_epoch))
    state.optimizer = make_optimizer(state.model, config)
    state.scheduler = make_scheduler(state.optimizer, config, total_steps)
    state.epochs, state.steps_per_epoch = math.ceil(total_steps / steps_per_epoch), steps_per_epoch
    state.total_steps = total_steps
    if hooks:
        fire(Event.INIT)
    for epoch in range(state.epochs):
        state.epoch = epoch
        epoch_started = time.perf_counter()
        if hooks:
            fire(Event.EPOCH_START)
        loss_sum = torch.zeros((), device=device)
        epoch_steps = 0
        for inputs, targets in state.train.batches(config.batch_size, shuffle=True, generator=generator,
                                                   drop_last=True, device=device):
            inputs = inputs.contiguous(memory_format=memory_format)
            if hooks:
                state.inputs, state.targets = inputs, targets
                fire(Event.BATCH)
                inputs, targets = state.inputs, state.targets
                if state.model_changed:  # reshaped between two steps (PruneTrain)
                    _rebuild_optimizer(state, config, total_steps)
            outputs = state.model(inputs)
            loss = task_loss = criterion(outputs, targets)
            if hooks:
                state.outputs, state.loss = outputs, loss
                fire(Event.LOSS)
                loss = state.loss
            state.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if hooks:
                fire(Event.AFTER_BACKWARD)
                fire(Event.BEFORE_STEP)
                if state.skip_step:
                    state.skip_step = False
                else:
                    state.optimizer.step()
            else:
                state.optimizer.step()
            state.scheduler.step()
            loss_sum += task_loss.detach()  # the task's loss, before accelerators add to or scale it
            samples += len(targets)
            epoch_steps += 1
            state.step += 1
            if epoch_steps % FINITE_CHECK_EVERY == 0:
                _check_finite(loss_sum, epoch, epoch_steps)
            if state.stop or state.step >= total_steps:
                break
        mean_loss = _check_finite(loss_sum, epoch, epoch_steps) / max(epoch_steps, 1)
        if hooks:
            fire(Event.EPOCH_END)
            if state.model_changed:
                _rebuild_optimizer(state, config, total_steps)
        _sync(device)
        history.append({"epoch": state.step / steps_per_epoch, "loss": mean_loss,
                        "seconds": time.perf_counter() - epoch_started})
        if on_epoch is not None:
            on_epoch(epoch + 1, state.epochs, mean_loss)
        if state.stop:
            break
    if hooks:
        fire(Event.FIT_END)
    recalibrate_batchnorm(state.model, state.train, config.batch_size, config.bn_samples,
                          generator, device, memory_format)
    _sync(device)
    seconds = time.perf_counter() - started

    eval_started = time.perf_counter()
    accuracy = evaluate(state.model, state.val, config.eval_batch_size, device, config.channels_last)
    eval_seconds = time.perf_counter() - eval_started
    return TrainResult(
        accuracy=accuracy, loss=history[-1]["loss"] if history else math.nan, seconds=seconds,
        eval_seconds=eval_seconds, epochs=state.step / steps_per_epoch, samples=samples,
        samples_per_s=samples / seconds if seconds > 0 else 0.0, history=history,
        accelerators={hook.name: hook.report() for hook in hooks}, model=state.model,
    )


def _rebuild_optimizer(state: TrainState, config: TrainConfig, total_steps: int) -> None:
    """A new optimizer for a reshaped model's parameters, the schedule resumed at the current
    step, and the per-parameter state (momentum) the accelerator carried over loaded into it."""
    state.optimizer = make_optimizer(state.model, config)
    state.scheduler = make_scheduler(state.optimizer, config, total_steps, state.step - 1)
    for parameter, carried in state.optimizer_state.items():
        state.optimizer.state[parameter].update(carried)
    state.optimizer_state = {}
    state.model_changed = False


def _check_finite(loss_sum: torch.Tensor, epoch: int, step: int) -> float:
    value = float(loss_sum)
    if not math.isfinite(value):
        raise CandidateFailed(f"loss diverged ({value}) in epoch {epoch + 1} by step {step}")
    return value
