"""``approx``: approximate tensor operations by column-row sampling (CRS).

Adelman & Silberstein (2018), "Faster Neural Network Training with Approximate Tensor
Operations". A product A @ B is a sum of outer products over the inner dimension; CRS keeps
k of them. For a convolution the inner dimension is the input channels: the output is the
sum over input channels i of conv(x[:, i], W[:, i]). Channel i scores
s_i = ||x[:, i]|| * ||W[:, i]|| (Frobenius norms). Two ways to keep k = ratio * C channels:

- ``method=topk`` (default; the paper's best, deterministic): the k highest scores, no
  scaling. With k = C it is exact;
- ``method=crs``: k draws with replacement from p_i = 0.9 * s_i / sum(s) + 0.1 / C (the
  uniform mix of the authors' code), each scaled by 1 / (k * p_i): an unbiased estimate.

The smaller product runs in the forward pass during training and autograd differentiates
through it, so the backward pass shrinks too. Kept exact: the first convolution (3 input
channels carry too much), the classifier (the last linear layer), depthwise convolutions
(one input channel per output, nothing to sample) and everything at evaluation.
Linear layers other than the last are approximated the same way over input features.

As in the authors' code (adelmanm/approx), a layer never keeps fewer than ``minimal_k`` = 10
channels: narrow layers (8-16 channels in our small networks) are then computed exactly or
nearly so.

Fewer input channels make genuinely smaller dense operations, so this can save wall-clock
time - the gather of the kept channels costs some back; the benchmark measures the net.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from accelerators.base import Accelerator, Option
from accelerators.layers import compute_layers
from automl.nn.flops import training_flops
from automl.train.events import Event, TrainState


def channel_scores(x: Tensor, weight: Tensor) -> Tensor:
    """s_i = ||x[:, i]|| * ||W[:, i]|| for the inner dimension i (dim 1 of both)."""
    x_dims = [d for d in range(x.dim()) if d != 1]
    w_dims = [d for d in range(weight.dim()) if d != 1]
    return torch.linalg.vector_norm(x.detach(), dim=x_dims) * torch.linalg.vector_norm(weight.detach(), dim=w_dims)


def sample_inner(scores: Tensor, k: int, method: str) -> tuple[Tensor, Tensor | None]:
    """Indices to keep and their scales (None: no scaling)."""
    if method == "topk":
        return torch.topk(scores, k).indices, None
    total = scores.sum()
    uniform = torch.full_like(scores, 1.0 / len(scores))
    p = 0.9 * scores / total + 0.1 * uniform if total > 0 else uniform
    index = torch.multinomial(p, k, replacement=True)
    return index, 1.0 / (k * p[index])


def crs_matmul(a: Tensor, b: Tensor, k: int, method: str = "crs") -> Tensor:
    """A @ B from k sampled column-row pairs (A's columns, B's rows)."""
    scores = a.detach().norm(dim=0) * b.detach().norm(dim=1)
    index, scale = sample_inner(scores, k, method)
    columns = a[:, index] if scale is None else a[:, index] * scale
    return columns @ b[index]


class ApproximateTensorOps(Accelerator):
    name = "approx"
    kind = "wall-clock"
    summary = "column-row sampling: convolutions over a subset of input channels (top-k or CRS)"
    paper = "Adelman & Silberstein 2018, Faster Neural Network Training with Approximate Tensor Operations"
    order = 40  # model arithmetic, before losses and gradients
    ddp_safe = True
    ddp_note = (
        "each rank samples channels of its own batch: only its local gradient estimate changes, "
        "and every weight still gets a gradient to all-reduce")
    events = frozenset({Event.INIT, Event.FIT_END})
    options = {
        "ratio": Option(0.5, "fraction of input channels kept", lambda v: 0.0 < v <= 1.0, "0 < ratio <= 1"),
        "method": Option("topk", "topk (deterministic) or crs (sampled, unbiased)",
                         lambda v: v in ("topk", "crs"), "topk or crs"),
        "minimal_k": Option(10, "never keep fewer channels than this (the reference code's minimal_k)",
                            lambda v: v >= 1, ">= 1"),
    }

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self.kept = 0
        self.total = 0
        self.flops = 0.0
        self.saved = 0.0

    def _keep(self, channels: int) -> int:
        """k = ratio x channels, but never below minimal_k (nor above the channels there are):
        sampling 4 of 8 channels costs more accuracy than the little time it saves."""
        floor = min(channels, self.values["minimal_k"])
        return max(floor, min(channels, int(channels * self.values["ratio"])))

    def _conv(self, layer: nn.Conv2d):
        def forward(x: Tensor) -> Tensor:
            if not layer.training:
                return layer._conv_forward(x, layer.weight, layer.bias)
            channels = x.shape[1]
            k = self._keep(channels)
            self._count(channels, k, 2.0 * x.shape[0] * layer.out_channels * channels
                        * layer.kernel_size[0] * layer.kernel_size[1] * _out_pixels(layer, x))
            if k == channels:
                return layer._conv_forward(x, layer.weight, layer.bias)
            index, scale = sample_inner(channel_scores(x, layer.weight), k, self.values["method"])
            kept = x.index_select(1, index)
            if scale is not None:
                kept = kept * scale.view(1, -1, 1, 1)
            return F.conv2d(kept, layer.weight.index_select(1, index), layer.bias, layer.stride,
                            layer.padding, layer.dilation)
        return forward

    def _linear(self, layer: nn.Linear):
        def forward(x: Tensor) -> Tensor:
            if not layer.training:
                return F.linear(x, layer.weight, layer.bias)
            k = self._keep(layer.in_features)
            self._count(layer.in_features, k, 2.0 * x.shape[0] * layer.in_features * layer.out_features)
            if k == layer.in_features:
                return F.linear(x, layer.weight, layer.bias)
            out = crs_matmul(x, layer.weight.t(), k, self.values["method"])
            return out + layer.bias if layer.bias is not None else out
        return forward

    def _count(self, channels: int, kept: int, flops: float) -> None:
        self.kept += kept
        self.total += channels
        self.flops += training_flops(flops, 1)  # forward, input gradient, weight gradient all shrink alike
        self.saved += training_flops(flops, 1) * (1 - kept / channels)

    def apply(self, event: Event, state: TrainState) -> None:
        if event is Event.INIT:
            layers = compute_layers(state.model)
            for layer in layers[1:-1]:  # first and last layers stay exact
                if isinstance(layer, nn.Conv2d) and layer.groups == 1:
                    self.hooks.replace_forward(layer, self._conv(layer))
                elif isinstance(layer, nn.Linear):
                    self.hooks.replace_forward(layer, self._linear(layer))
        elif event is Event.FIT_END:
            self.teardown(state)

    def report(self) -> dict[str, Any]:
        return {"method": self.values["method"], "kept_channel_fraction": self.kept / self.total if self.total else 1.0,
                "approximated_flops_saved_fraction": self.saved / self.flops if self.flops else 0.0,
                "training_flops_saved": self.saved,
                "note": "fraction of the approximated layers' training FLOPs skipped; first conv, classifier "
                        "and depthwise convs stay exact"}


def _out_pixels(layer: nn.Conv2d, x: Tensor) -> int:
    h = (x.shape[2] + 2 * layer.padding[0] - layer.dilation[0] * (layer.kernel_size[0] - 1) - 1) // layer.stride[0] + 1
    w = (x.shape[3] + 2 * layer.padding[1] - layer.dilation[1] * (layer.kernel_size[1] - 1) - 1) // layer.stride[1] + 1
    return h * w
