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
reports how many values saturated or were rounded to zero; a fixed-point unit of half the
width would do the same number of operations (0 FLOPs saved) at roughly half the energy and
area of float32 - that is the claim this method makes, not a speed-up measured here.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from accelerators.base import Accelerator, InvariantBroken, Option
from accelerators.layers import compute_layers, map_gradient
from automl.core.errors import AutomlError
from automl.train.events import Event, TrainState


def quantize(x: Tensor, integer_bits: int, fraction_bits: int, stochastic: bool = True) -> Tensor:
    """x in fixed point <IL, FL>: stochastic or nearest rounding, then saturation."""
    eps = 2.0 ** -fraction_bits
    scaled = x / eps
    if stochastic:
        floor = torch.floor(scaled)
        rounded = floor + (torch.rand_like(scaled) < (scaled - floor)).to(scaled.dtype)
    else:
        rounded = torch.round(scaled)
    limit = 2.0 ** (integer_bits - 1)
    return torch.clamp(rounded * eps, -limit, limit - eps)


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
        self.counts = {"values": 0, "saturated": 0, "flushed_to_zero": 0}

    def _q(self, x: Tensor) -> Tensor:
        q = quantize(x, self.il, self.fl, self.stochastic)
        limit = 2.0 ** (self.il - 1)
        self.counts["values"] += x.numel()
        self.counts["saturated"] += (x.abs() >= limit).sum()
        self.counts["flushed_to_zero"] += ((q == 0) & (x != 0)).sum()
        return q

    def _quantize_output(self, module, inputs, output: Tensor) -> Tensor:
        if not module.training:
            return output
        # Rounding has no useful derivative: the forward value is rounded, the backward pass
        # goes straight through (as in the paper) and its gradient is rounded in turn.
        detached = output.detach()
        rounded = output + (self._q(detached) - detached)
        return map_gradient(rounded, self._q)

    @torch.no_grad()
    def _quantize_weights(self, state: TrainState) -> None:
        for parameter in state.model.parameters():
            parameter.copy_(self._q(parameter))

    def apply(self, event: Event, state: TrainState) -> None:
        if event is Event.INIT:
            for layer in compute_layers(state.model):
                self.hooks.forward_hook(layer, self._quantize_output)
            self._quantize_weights(state)
        elif event is Event.BATCH:
            self._quantize_weights(state)  # the previous update, at the format's resolution
        elif event is Event.BEFORE_STEP:
            with torch.no_grad():
                for parameter in state.model.parameters():
                    if parameter.grad is not None:
                        parameter.grad.copy_(self._q(parameter.grad))
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
        total = max(int(self.counts["values"]), 1)
        return {"format": f"<{self.il},{self.fl}>", "rounding": self.values["rounding"],
                "values_quantized": int(self.counts["values"]),
                "saturated_fraction": int(self.counts["saturated"]) / total,
                "flushed_to_zero_fraction": int(self.counts["flushed_to_zero"]) / total,
                "training_flops_saved": 0.0,
                "note": "emulated: same operation count at 16 instead of 32 bits; no time saved here"}
