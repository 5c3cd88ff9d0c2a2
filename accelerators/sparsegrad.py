"""``sparsegrad``: sparsified activation gradients (emulated).

Ye, Dai, Dong, Zhang & Wang (2019), "Accelerating CNN Training by Sparsifying Activation
Gradients". In the backward pass, the gradient g = dL/dy arriving at the output y of every
convolution is pruned per layer and iteration: with a threshold tau, entries with |g| >= tau
are kept, and each entry below it becomes sign(g) * tau with probability |g| / tau and 0
otherwise - so E[pruned g] = g and the weight and input gradients computed from it stay
unbiased. The pruned g feeds both backward convolutions, which is where sparse hardware
would save work.

The threshold comes from the statistics of g:

- ``threshold=normal`` (default): the paper's rule. g is taken as N(0, sigma^2) with sigma
  fitted from mean |g| (sigma = sqrt(pi/2) * mean|g|), and tau = Phi^-1((1 + p) / 2) * sigma
  with p = ``sparsity``: the fraction p of a Gaussian lies below tau. After the stochastic rule
  about 54% of a Gaussian's entries become zero at p = 0.9 (entries just under tau mostly
  become +-tau), so ``sparsity`` is the paper's parameter, not the zero fraction reached; the
  trial records the density reached. Savings are then comparable with the paper's.
- ``threshold=fit``: our variant - tau is set so that the expected fraction of zeros after
  the stochastic rule equals ``sparsity`` (bisection on a random sample of |g|), so the
  density reached matches the target (90% zeros at 0.9, much sparser than the paper's rule).

Emulated: dense kernels do the same work on sparse tensors. The trial reports the density
reached and the backward FLOPs a sparsity-exploiting kernel would skip. Kept cheap: the
paper's threshold is one pass (mean |g|), pruning one more (:mod:`accelerators.kernels` on
the CPU, which makes its own uniform numbers; elsewhere a few torch passes with pre-drawn
noise, :mod:`accelerators.dither`). With fx16, rounding and pruning the same gradient are two
stages of one backward step (:class:`accelerators.layers.GradientChain`): the gradient arrives
rounded, as fixed-point hardware would deliver it, and is pruned in place; the +-tau it sets
are then the one magnitude per layer off fx16's grid. (Pruning first and rounding after kept
every value on the grid but lost 10 more points of accuracy at 0.5 epochs: two unbiased
roundings of values far below the grid's step.)
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from accelerators import kernels
from accelerators.base import Accelerator, Option
from accelerators.dither import Dither
from automl.train.events import Event, TrainState

SAMPLE = 8192  # entries of |g| used to fit the threshold


def stochastic_prune(g: Tensor, tau: Tensor | float, noise: Tensor | None = None) -> Tensor:
    """Keep |g| >= tau; below it, sign(g) * tau with probability |g| / tau, else 0.

    One rule for both cases: an entry survives when |g| >= u * tau (always, for |g| >= tau)
    and survives as sign(g) * max(|g|, tau). ``noise`` supplies u ~ U[0, 1)."""
    magnitude = g.abs()
    u = torch.rand_like(g) if noise is None else noise
    survives = magnitude >= u * tau
    return torch.where(survives, torch.copysign(magnitude.clamp_min_(tau), g), 0.0)


def expected_zero_fraction(magnitudes: Tensor, tau: float) -> float:
    """E[fraction of zeros] after stochastic pruning at threshold tau."""
    return float(torch.clamp(1 - magnitudes / tau, min=0).mean())


def fit_threshold(magnitudes: Tensor, sparsity: float, iterations: int = 30) -> float:
    """tau whose expected zero fraction is ``sparsity`` (bisection; the fraction grows with tau)."""
    high = float(magnitudes.max()) * 1e3 + 1e-30
    low = 0.0
    for _ in range(iterations):
        middle = (low + high) / 2
        if expected_zero_fraction(magnitudes, middle) < sparsity:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def normal_threshold(g: Tensor, sparsity: float) -> float:
    """The paper's rule under a N(0, sigma^2) assumption with sigma from mean |g| (one pass)."""
    if kernels.fusable(g):
        mean_abs = kernels.mean_abs(g)
    else:
        mean_abs = float(torch.linalg.vector_norm(g, 1)) / max(g.numel(), 1)
    return NormalDist().inv_cdf((1 + sparsity) / 2) * math.sqrt(math.pi / 2) * mean_abs


class SparseGradients(Accelerator):
    name = "sparsegrad"
    kind = "emulated"
    summary = "prune activation gradients below a Gaussian-fitted threshold stochastically (unbiased)"
    paper = "Ye et al. 2019, Accelerating CNN Training by Sparsifying Activation Gradients"
    order = 70  # gradients
    ddp_safe = True
    ddp_note = (
        "prunes activation gradients per rank without bias; every weight still gets a gradient to "
        "all-reduce")
    events = frozenset({Event.INIT, Event.EPOCH_END, Event.FIT_END})
    options = {
        "sparsity": Option(0.9, "p: the Gaussian fraction below the threshold (fit: the zero fraction)",
                           lambda v: 0.0 <= v < 1.0, "0 <= sparsity < 1"),
        "threshold": Option("normal", "normal (the paper's Gaussian rule) or fit (zero fraction = sparsity)",
                            lambda v: v in ("fit", "normal"), "fit or normal"),
    }

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self.dither = Dither(seed=1)  # the torch path's noise, offsets of its own: fx16 rounds what it prunes
        self.rng = np.random.default_rng(1)  # the fused kernel's starts
        self.zeros = torch.zeros((), dtype=torch.float64)
        self.entries = 0
        self.saved = torch.zeros((), dtype=torch.float64)
        self.forward_flops = 0.0
        self.backward_flops = 0.0

    def _prune(self, layer: nn.Conv2d, first: bool):
        def prune(g: Tensor, owned: bool) -> Tensor:
            pruned, zero = self._pruned(g, owned)
            self.zeros += zero
            self.entries += g.numel()
            # backward of a conv: input gradient (skipped for the first layer) + weight gradient,
            # each about its forward FLOPs, and both proportional to the density of g
            forward = 2.0 * g.numel() * layer.in_channels // layer.groups * layer.kernel_size[0] * layer.kernel_size[1]
            backward = forward * (1 if first else 2)
            self.forward_flops += forward
            self.backward_flops += backward
            self.saved += backward * zero / g.numel()
            return pruned
        return prune

    def _threshold(self, g: Tensor) -> float:
        g = g.detach()
        if self.values["threshold"] == "fit":
            flat = g.reshape(-1)
            sample = flat[torch.randint(len(flat), (min(SAMPLE, len(flat)),), device=flat.device)].abs()
            return fit_threshold(sample, self.values["sparsity"])
        return normal_threshold(g, self.values["sparsity"])  # any layout: no flattening copy

    def _pruned(self, g: Tensor, owned: bool = False) -> tuple[Tensor, Tensor | int]:
        """g pruned at this layer's threshold (in place where ``owned``), and the number of
        zeros it now holds."""
        tau = self._threshold(g)
        if tau <= 0:
            return g, (g == 0).sum()
        out = g if owned else torch.empty_like(g)
        if kernels.fusable(g, out):
            return out, kernels.prune_stochastic(g, kernels.starts(self.rng), tau, out)  # one pass
        pruned = stochastic_prune(g, tau, self.dither.like(g))
        return pruned, (pruned == 0).sum()

    def apply(self, event: Event, state: TrainState) -> None:
        if event is Event.INIT:
            convs = [m for m in state.model.modules() if isinstance(m, nn.Conv2d)]
            for i, layer in enumerate(convs):
                self.hooks.gradient_stage(layer, self._prune(layer, first=i == 0), self.order)
        elif event is Event.FIT_END:
            self.teardown(state)

    def report(self) -> dict[str, Any]:
        density = 1 - float(self.zeros) / self.entries if self.entries else 1.0
        training = self.forward_flops + self.backward_flops
        return {"target_density": 1 - self.values["sparsity"], "density": density,
                "threshold_rule": self.values["threshold"],
                "backward_flops_saved_fraction": float(self.saved) / self.backward_flops if self.backward_flops else 0.0,
                "conv_training_flops_saved_fraction": float(self.saved) / training if training else 0.0,
                "training_flops_saved": float(self.saved),
                "note": "emulated: dense kernels did the full work; the saving is what sparse kernels would skip"}
