"""How every candidate is trained: the recipe (:class:`TrainConfig`), its optimizer and its
learning-rate schedule.

SGD with Nesterov momentum, a one-cycle (or cosine) schedule stepped per batch, label
smoothing, weight decay and channels_last memory - one recipe, so candidates compare alike.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from automl.core.errors import AutomlError

SCHEDULES = ("onecycle", "cosine")


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

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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
