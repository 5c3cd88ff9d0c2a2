"""``gradapprox``: approximate the gradient by computing weight gradients for a random
subset of layers each step (unbiased by rescaling).

Wang & Nelaturu (2019), "Accelerated CNN Training Through Gradient Approximation", explore
three approximations of the backward pass and report >7% wall-clock speed-ups on CIFAR-10;
their method definitions could not be retrieved (only the abstract is reachable from here),
so this is the closest well-defined variant of the idea, documented exactly:

every step, each convolution except the first has its weight gradient skipped with
probability ``p``: its weight stops requiring a gradient for that step, so autograd never
runs the weight-gradient convolution (the input gradient still flows, so earlier layers are
unaffected). The weight gradients that are computed are multiplied by 1 / (1 - p), which
makes each one an unbiased estimate of the true gradient; a skipped weight takes no step.
The classifier and normalisation parameters are always exact. Only weights that train when
INIT comes are drawn: one another method froze (``ssf``'s dictionary structure) stays frozen
and gets no gradient.

A skipped weight-gradient convolution is about a third of that layer's training work, so at
p = 0.5 the convolutions do about a sixth less: a real wall-clock saving where the backward
pass dominates; the benchmark measures it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from accelerators.base import Accelerator, Option
from automl.train.events import Event, TrainState


class GradientApproximation(Accelerator):
    name = "gradapprox"
    kind = "wall-clock"
    summary = "skip each conv's weight gradient with probability p per step, rescale the rest (unbiased)"
    paper = "Wang & Nelaturu 2019, Accelerated CNN Training Through Gradient Approximation (variant)"
    order = 60  # gradients
    ddp_safe = False
    ddp_note = (
        "the layers whose weight gradient is skipped are drawn per rank; DDP's all-reduce needs "
        "the same parameters to have gradients on every rank")
    events = frozenset({Event.INIT, Event.BATCH, Event.BEFORE_STEP, Event.FIT_END})
    options = {
        "p": Option(0.5, "probability of skipping a layer's weight gradient", lambda v: 0.0 <= v < 1.0, "0 <= p < 1"),
        "unbiased": Option(True, "rescale computed weight gradients by 1/(1-p)"),
    }

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self.layers: list[nn.Conv2d] = []
        self.skipped: list[bool] = []
        self.decisions = 0
        self.skips = 0
        self.saved = 0.0

    def _record(self, index: int):
        def hook(module: nn.Conv2d, inputs, output: Tensor) -> None:
            if module.training and self.skipped and self.skipped[index]:
                k = module.kernel_size[0] * module.kernel_size[1]
                self.saved += 2.0 * output.numel() * module.in_channels // module.groups * k
        return hook

    def apply(self, event: Event, state: TrainState) -> None:
        if event is Event.INIT:
            convs = [m for m in state.model.modules() if isinstance(m, nn.Conv2d)][1:]
            self.layers = [m for m in convs if m.weight.requires_grad]  # never unfreeze what another froze
            for i, layer in enumerate(self.layers):
                self.hooks.forward_hook(layer, self._record(i))
        elif event is Event.BATCH:
            draws = torch.rand(len(self.layers)) < self.values["p"]
            self.skipped = draws.tolist()
            for layer, skip in zip(self.layers, self.skipped):
                layer.weight.requires_grad_(not skip)
            self.decisions += len(self.layers)
            self.skips += int(draws.sum())
        elif event is Event.BEFORE_STEP:
            scale = 1.0 / (1.0 - self.values["p"]) if self.values["unbiased"] else 1.0
            for layer, skip in zip(self.layers, self.skipped):
                if skip:
                    layer.weight.requires_grad_(True)
                    layer.weight.grad = None  # no gradient: the optimizer leaves it this step
                elif layer.weight.grad is not None and scale != 1.0:
                    layer.weight.grad.mul_(scale)
        elif event is Event.FIT_END:
            self.teardown(state)

    def teardown(self, state: TrainState) -> None:
        """Every drawn weight trains again (a candidate that died between BATCH and
        BEFORE_STEP left some switched off), and the recording hooks go."""
        for layer in self.layers:
            layer.weight.requires_grad_(True)
        self.hooks.remove()

    def report(self) -> dict[str, Any]:
        return {"skipped_fraction": self.skips / self.decisions if self.decisions else 0.0,
                "training_flops_saved": self.saved,
                "note": "weight-gradient convolutions not run (a real saving, measured by the benchmark)"}
