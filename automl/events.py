"""Training events and the state accelerators see (in the manner of composer's Event).

The trainer's loop, with the event fired at each point::

    INIT                              model, optimizer and schedule built
    for each epoch:
        EPOCH_START
        for each batch:
            BATCH                     state.inputs / state.targets may be replaced
            outputs = model(inputs)
            loss = criterion(outputs, targets)
            LOSS                      state.loss may be replaced (e.g. a penalty added)
            loss.backward()
            AFTER_BACKWARD            gradients exist
            BEFORE_STEP               gradients may be changed
            optimizer.step(); schedule.step()
        EPOCH_END                     the model may be reshaped: set state.model_changed
    FIT_END                           after the last epoch, before evaluation

An accelerator that reshapes the model sets ``state.model_changed``; the trainer then builds
a new optimizer for the new parameters (carrying over the schedule position). One that wants
training to stop early sets ``state.stop``; one that must drop an update (an fp16 overflow)
sets ``state.skip_step`` at BEFORE_STEP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import torch
from torch import Tensor, nn


class Event(Enum):
    INIT = "init"
    EPOCH_START = "epoch_start"
    BATCH = "batch"
    LOSS = "loss"
    AFTER_BACKWARD = "after_backward"
    BEFORE_STEP = "before_step"
    EPOCH_END = "epoch_end"
    FIT_END = "fit_end"


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
    inputs: Tensor | None = None
    targets: Tensor | None = None
    outputs: Tensor | None = None
    loss: Tensor | None = None
    model_changed: bool = False
    skip_step: bool = False  # set at BEFORE_STEP to skip this optimizer step (e.g. fp16 overflow)
    stop: bool = False
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
