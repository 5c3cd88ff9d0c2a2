"""``fx16``: training in 16-bit fixed point with stochastic rounding (emulated).

Gupta, Agrawal, Gopalakrishnan & Narayanan (2015), "Deep Learning with Limited Numerical
Precision", ICML. A number in fixed point <IL, FL> has IL integer bits (sign included) and FL
fraction bits, word length WL = IL + FL; its step is eps = 2^-FL and its range
[-2^(IL-1), 2^(IL-1) - eps]. Stochastic rounding rounds x down to floor(x/eps)*eps with
probability 1 - (x - floor)/eps and up otherwise, so E[round(x)] = x and updates smaller than
eps survive on average; round-to-nearest (``rounding=nearest``, the paper's comparison) loses
them. Values outside the range saturate.

What is quantised, as in the paper: the weights (after every update, so the update itself
is carried out at the format's resolution), the activations - the outputs of every
convolution and linear layer - in the forward pass, the gradients flowing back into those
outputs, and the weight gradients before the optimizer step. Products and sums run in
float32 between roundings (the paper's MACs accumulate at higher precision too).

Emulated: quantising float tensors costs time on float hardware and saves none. The trial
reports how many values saturated or were rounded to zero (the fused kernel counts every
value; the torch path every ``STATS_EVERY``-th rounding, a sample that keeps the count off
the hot path); a fixed-point
unit of half the width would do the same number of operations (0 FLOPs saved) at roughly
half the energy and area of float32 - that is the claim this method makes, not a speed-up
measured here.

Kept cheap: on the CPU a rounding is one fused pass that makes its own uniform numbers
(:mod:`accelerators.kernels`); elsewhere a few torch passes (scale, floor, up where u is
below the fraction, clamp, scale back), with ``u`` a window of pre-drawn uniform noise (:mod:`accelerators.dither`) rather
than fresh random numbers; activations are
rounded forward by one autograd function and their gradients backward as the first stage of
the layer's gradient chain (a method after it, sparsegrad's pruning, then works in place on
the rounded copy); weights and gradients are rounded in place.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from accelerators.base import Accelerator, InvariantBroken, Option
from accelerators import kernels
from accelerators.dither import Dither
from accelerators.layers import compute_layers
from automl.core.errors import AutomlError
from automl.train.events import Event, TrainState


STATS_EVERY = 16  # roundings between two counts of saturated and flushed values
# The first of a layer's gradient stages, whatever the other methods' order: fixed-point
# hardware delivers the gradient already in the format, and other methods act on that
GRADIENT_ARRIVES = -1


def quantize(x: Tensor, integer_bits: int, fraction_bits: int, stochastic: bool = True,
             noise: Tensor | None = None, out: Tensor | None = None) -> Tensor:
    """x in fixed point <IL, FL>: stochastic or nearest rounding, then saturation.

    Stochastic rounding takes x / eps up with probability equal to its fraction of a step
    (u < fraction, u ~ U[0, 1)), so E[round(x)] = x; written as ``floor(x / eps + u)`` the
    float32 sum would itself round and move a value already on the grid for u within an ulp of
    1. ``noise`` supplies u (fresh random numbers when not given); ``out=x`` rounds in place.
    """
    eps = 2.0 ** -fraction_bits
    if stochastic:
        u = torch.rand_like(x) if noise is None else noise
        scaled = torch.mul(x, 1.0 / eps, out=out)
        below = scaled.floor()
        scaled = torch.add(below, torch.lt(u, scaled.sub_(below)), out=scaled)
    else:
        scaled = torch.mul(x, 1.0 / eps, out=out).round_()
    steps = 2.0 ** (integer_bits - 1) / eps  # the range in steps: [-steps, steps - 1]
    return scaled.clamp_(-steps, steps - 1).mul_(eps)


class _RoundForward(torch.autograd.Function):
    """Rounds a layer's output in the forward pass. Rounding has no useful derivative, so the
    gradient passes straight through (as in the paper); rounding it is a gradient stage of the
    layer (:class:`accelerators.layers.GradientChain`), shared with other methods that change it."""

    @staticmethod
    def forward(ctx, x: Tensor, rounding) -> Tensor:
        return rounding(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad, None


class FixedPoint16(Accelerator):
    name = "fx16"
    kind = "emulated"
    summary = "16-bit fixed point <IL,FL> with stochastic rounding on weights, activations, gradients, updates"
    paper = "Gupta et al. 2015, Deep Learning with Limited Numerical Precision"
    order = 90  # arithmetic: after every method that changes data, model or loss
    ddp_safe = False
    ddp_note = (
        "stochastic rounding of the weights draws random numbers per rank, so the replicas' "
        "weights drift apart")
    conflicts = frozenset({"amp"})  # two number formats for the same arithmetic
    events = frozenset({Event.INIT, Event.BATCH, Event.BEFORE_STEP, Event.FIT_END})
    options = {
        "wl": Option(16, "word length in bits (IL + FL)", lambda v: 4 <= v <= 32, "4..32"),
        "fl": Option(12, "fraction bits", lambda v: 1 <= v <= 31, "1..31 and below wl"),
        "rounding": Option("stochastic", "stochastic or nearest", lambda v: v in ("stochastic", "nearest"),
                           "stochastic or nearest"),
    }

    def check(self) -> None:
        if self.values["fl"] >= self.values["wl"]:
            raise AutomlError(f"accelerator 'fx16': fl={self.values['fl']} leaves no integer bit in "
                              f"wl={self.values['wl']} (fl must be below wl)")

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self.il = self.values["wl"] - self.values["fl"]
        self.fl = self.values["fl"]
        self.stochastic = self.values["rounding"] == "stochastic"
        self.dither = Dither()  # the torch path's noise; the fused kernels draw their own from a start
        self.rng = np.random.default_rng(0)
        self.roundings = 0
        self.counts = {"values": 0, "sampled": 0, "saturated": 0, "flushed_to_zero": 0}

    def _q(self, x: Tensor, in_place: bool = False) -> Tensor:
        self.roundings += 1
        self.counts["values"] += x.numel()
        out = x if in_place else torch.empty_like(x)
        if self.stochastic and kernels.fusable(x, out):  # one pass, every value counted
            saturated, flushed = kernels.round_fixed_point(x, kernels.starts(self.rng), self.il, self.fl, out)
            self._count(x.numel(), saturated, flushed)
            return out
        noise = self.dither.like(x) if self.stochastic else None
        if self.roundings % STATS_EVERY:
            return quantize(x, self.il, self.fl, self.stochastic, noise, out=out)
        limit = 2.0 ** (self.il - 1)
        saturated, nonzero = (x.abs() >= limit).sum(), x != 0
        q = quantize(x, self.il, self.fl, self.stochastic, noise, out=out)
        self._count(x.numel(), saturated, ((q == 0) & nonzero).sum())
        return q

    def _count(self, sampled: int, saturated, flushed) -> None:
        self.counts["sampled"] += sampled
        self.counts["saturated"] += saturated
        self.counts["flushed_to_zero"] += flushed

    def _quantize_output(self, module, inputs, output: Tensor) -> Tensor:
        return _RoundForward.apply(output, self._q) if module.training else output

    def _quantize_gradient(self, grad: Tensor, owned: bool) -> Tensor:
        return self._q(grad, in_place=owned)

    @torch.no_grad()
    def _quantize_weights(self, state: TrainState) -> None:
        for parameter in state.model.parameters():
            self._q(parameter.data, in_place=True)

    def apply(self, event: Event, state: TrainState) -> None:
        if event is Event.INIT:
            for layer in compute_layers(state.model):
                self.hooks.forward_hook(layer, self._quantize_output)
                self.hooks.gradient_stage(layer, self._quantize_gradient, GRADIENT_ARRIVES)
            self._quantize_weights(state)
        elif event is Event.BATCH:
            self._quantize_weights(state)  # the previous update, at the format's resolution
        elif event is Event.BEFORE_STEP:
            with torch.no_grad():
                for parameter in state.model.parameters():
                    if parameter.grad is not None:
                        self._q(parameter.grad, in_place=True)
        elif event is Event.FIT_END:
            self._quantize_weights(state)
            self.teardown(state)

    def check_invariants(self, event: Event, state: TrainState) -> None:
        """In the forward pass every weight is a number of the format (on the grid, in range)
        and products and sums run in float32 between roundings, as the emulation claims."""
        if event is not Event.LOSS:
            return  # the update itself moves weights off the grid until the next BATCH
        if state.outputs.dtype != torch.float32:
            raise InvariantBroken(f"fx16: the forward pass computed in {state.outputs.dtype}, not float32")
        eps, limit = 2.0 ** -self.fl, 2.0 ** (self.il - 1)
        for name, p in state.model.named_parameters():
            steps = p.detach() / eps
            if not torch.equal(steps, steps.round()) or p.abs().max() > limit:
                raise InvariantBroken(f"fx16: weight {name} is off the <{self.il},{self.fl}> grid in the forward pass")

    def report(self) -> dict[str, Any]:
        total = max(int(self.counts["sampled"]), 1)
        return {"format": f"<{self.il},{self.fl}>", "rounding": self.values["rounding"],
                "values_quantized": int(self.counts["values"]),
                "values_sampled_for_fractions": int(self.counts["sampled"]),
                "saturated_fraction": int(self.counts["saturated"]) / total,
                "flushed_to_zero_fraction": int(self.counts["flushed_to_zero"]) / total,
                "training_flops_saved": 0.0,
                "note": "emulated: same operation count at 16 instead of 32 bits; no time saved here"}
