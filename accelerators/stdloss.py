"""``stdloss``: a standardization loss on pre-activations (a regularizer).

Collins, Balle & Shlens (2019), "Accelerating Training of Deep Neural Networks with a
Standardization Loss". Instead of normalising activations explicitly (BatchNorm), a secondary
loss pulls every channel's pre-activation distribution towards a unit Gaussian; being a
training loss it is simply dropped at test time. It is meant for networks without BatchNorm
(the ``mobile`` space's ``norm=none`` genomes), though it runs on any model.

What is implemented, exactly: the output of every ``nn.Conv2d`` (the pre-activation: for
``norm=none`` networks the convolution with its bias, before ReLU6; for ``bn`` networks the
input of the BatchNorm) is captured in each training forward pass. For layer l and channel c,
with mu the batch mean and sigma^2 the biased batch variance over (batch, height, width),

    KL(N(mu, sigma^2) || N(0, 1)) = 0.5 * (mu^2 + sigma^2 - log sigma^2 - 1)

(``eps`` = 1e-5 is added to sigma^2 inside the log). The loss averages this over the channels
of a layer, then over layers (so its size does not grow with the width or depth of a
candidate), and ``weight`` times it is added to the task loss at LOSS. The statistics come
from the whole batch, or from its first ``samples`` examples (the paper computes the loss on
a subsample of the batch to save work; 0 uses the whole batch).

Not implemented: the paper's variants on fully connected layers (the classifier is left out:
its outputs are logits, not pre-activations) and its learning-rate sweeps. ``kind`` is
``regularizer``: the loss changes what is learned and adds a little work per step; the paper
claims fewer steps to a given accuracy, which this trainer's fixed budget does not turn
into a saving, so ``training_flops_saved`` is 0.

report(): the last epoch's mean loss (``kl``), mean |mu| and mean sigma over all conv
channels (how standardized the pre-activations are), and the number of layers watched.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from accelerators.base import Accelerator, Option
from automl.train.events import Event, TrainState

EPS = 1e-5


def channel_stats(x: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean and biased variance of an (N, C, H, W) or (N, C) tensor."""
    dims = [0, *range(2, x.dim())]
    mean = x.mean(dim=dims)
    var = (x - mean.view(1, -1, *([1] * (x.dim() - 2)))).pow(2).mean(dim=dims)
    return mean, var


def standardization_kl(x: Tensor, eps: float = EPS) -> Tensor:
    """Mean over channels of KL(N(mu_c, sigma_c^2) || N(0, 1))."""
    mean, var = channel_stats(x.float())
    return 0.5 * (mean.pow(2) + var - torch.log(var + eps) - 1).mean()


class StandardizationLoss(Accelerator):
    name = "stdloss"
    kind = "regularizer"
    summary = "KL of per-channel pre-activation statistics to N(0,1), added to the loss"
    paper = "Collins, Balle & Shlens 2019, Accelerating Training of Deep Neural Networks with a Standardization Loss"
    order = 40  # loss
    ddp_safe = True
    ddp_note = "adds a loss term computed from each rank's own batch, like BatchNorm's per-rank statistics"
    events = frozenset({Event.INIT, Event.EPOCH_START, Event.BATCH, Event.LOSS, Event.FIT_END})
    options = {
        "weight": Option(1.0, "weight of the standardization loss", lambda v: 0.0 <= v <= 100.0, "0 <= weight <= 100"),
        "samples": Option(0, "examples of each batch the statistics use (0: the whole batch)",
                          lambda v: v >= 0, "samples >= 0"),
    }

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self.terms: list[Tensor] = []
        self._mu: list[Tensor] = []
        self._sigma: list[Tensor] = []
        self.layers = 0
        self._reset_epoch()
        self.last: dict[str, float] = {"kl": float("nan"), "mean_abs_mu": float("nan"), "mean_sigma": float("nan")}


    def _reset_epoch(self) -> None:
        self.kl_sum: Tensor | float = 0.0  # kept on the device: no sync per step
        self.mu_sum: Tensor | float = 0.0
        self.sigma_sum: Tensor | float = 0.0
        self.batches = 0

    def _capture(self, module: nn.Module, inputs: Any, output: Tensor) -> None:
        if not (module.training and torch.is_grad_enabled()):
            return  # evaluation and BatchNorm recalibration are not training steps
        samples = self.values["samples"]
        x = output[:samples] if samples else output
        mean, var = channel_stats(x.float())
        self.terms.append((0.5 * (mean.pow(2) + var - torch.log(var + EPS) - 1)).mean())
        with torch.no_grad():
            self._mu.append(mean.abs().mean())
            self._sigma.append(var.sqrt().mean())

    def apply(self, event: Event, state: TrainState) -> None:
        if event is Event.INIT:
            convs = [m for m in state.model.modules() if isinstance(m, nn.Conv2d)]
            self.layers = len(convs)
            for conv in convs:
                self.hooks.forward_hook(conv, self._capture)
        elif event is Event.EPOCH_START:
            self._reset_epoch()
        elif event is Event.BATCH:
            self.terms, self._mu, self._sigma = [], [], []
        elif event is Event.LOSS:
            if not self.terms:
                return
            kl = torch.stack(self.terms).mean()
            state.loss = state.loss + self.values["weight"] * kl.to(state.loss.dtype)
            self.kl_sum = self.kl_sum + kl.detach()
            self.mu_sum = self.mu_sum + torch.stack(self._mu).mean()
            self.sigma_sum = self.sigma_sum + torch.stack(self._sigma).mean()
            self.batches += 1
            self.terms, self._mu, self._sigma = [], [], []
        elif event is Event.FIT_END:
            self.teardown(state)
            if self.batches:
                n = self.batches
                self.last = {"kl": float(self.kl_sum) / n, "mean_abs_mu": float(self.mu_sum) / n,
                             "mean_sigma": float(self.sigma_sum) / n}

    def teardown(self, state: TrainState) -> None:
        self.hooks.remove()
        self.terms, self._mu, self._sigma = [], [], []  # a dead step's captured graphs

    def report(self) -> dict[str, Any]:
        return {**self.last, "layers": self.layers, "weight": self.values["weight"], "training_flops_saved": 0.0}
