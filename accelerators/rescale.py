"""``rescale``: train first at low resolution with small kernels, then rescale them.

de Gusmao, Francini, Lepsoy & Magli (2016), "Fast Training of Convolutional Neural Networks
via Kernel Rescaling". Convolution commutes with spatial scaling: if the input is stretched
by s, the same response is obtained (stretched) by stretching the kernel by s and dividing it
by s^2. So a network can be pre-trained on images downscaled by s with kernels about s times
smaller, and its kernels rescaled to full size to continue training at full resolution.

What this implements, on any model whose spatial convolutions are ``nn.Conv2d``:

- SETUP: every spatial convolution (kernel k > 1, depthwise included) gets a low-resolution
  kernel of size k_low = the odd size nearest k / s but never below 3 (5 and 7 become 3; a 3x3
  kernel stays 3x3), initialised by shrinking its initial kernel (area interpolation, times
  (k/k_low)^2 so the response is kept); 1x1 convolutions and the classifier are
  resolution-free and kept. A 1x1 low-resolution kernel (what k / s gives for k = 3) would
  filter nothing spatially for the whole first phase and come back as a box kernel - it cost
  7-13 points of accuracy - so 3x3 kernels keep their size and are applied to the finer grid
  after the switch, as a network trained at one resolution is applied at another.
- BATCH, during the first phase: the batch is average-pooled by s (area downscaling), so
  every layer works on 1/s^2 of the positions - the real saving.
- When to switch (``when``): ``plateau`` (default), as the paper leaves it to training
  progress - at the first step after a tenth of the budget where the mean task loss of the
  last window (5% of the steps, at least 5) improved by less than ``tolerance`` on the window
  before it, and at the latest after the ``switch`` fraction of the steps; ``fixed`` - exactly
  after the ``switch`` fraction.
- At the switch: each kernel is resized to k x k by bilinear interpolation and multiplied by
  (k_low / k)^2 - the paper's rescaling with its scale normalisation (a kernel stretched by
  k/k_low covers (k/k_low)^2 as many input samples). The optimizer's momentum buffers are
  rescaled by the same linear map, so the optimizer carries on without a rebuild; training
  continues at full resolution. If training ends earlier, the switch happens at FIT_END, so
  the model evaluated and stored always has its genome's shapes.

The property test checks the rescaling (3 -> 5 or 7) on smooth inputs, where the scaling
law holds.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from accelerators.base import Accelerator, InvariantBroken, Option
from automl.train.events import Event, TrainState
from automl.nn.flops import count_flops, training_flops


MIN_KERNEL = 3  # the smallest kernel that still filters spatially


def low_kernel_size(k: int, scale: int) -> int:
    """The odd kernel size nearest k / scale (ties go up), at least 3 (and at most k)."""
    target = k / scale
    candidates = range(min(k, MIN_KERNEL), k + 1, 2)
    return min(candidates, key=lambda c: (abs(c - target), -c))


def loss_plateaued(losses: list[float], window: int, tolerance: float) -> bool:
    """Whether the mean loss of the last ``window`` steps fell by less than ``tolerance``
    (relative) against the ``window`` steps before them."""
    if len(losses) < 2 * window:
        return False
    before = sum(losses[-2 * window:-window]) / window
    now = sum(losses[-window:]) / window
    return before <= 0 or (before - now) / before < tolerance


def _keep_sum(resized: Tensor, original: Tensor) -> Tensor:
    """Spread the difference of the kernel sums evenly over the taps, so the response to a
    constant input (the DC gain) is exactly the original's; still a linear map."""
    size = resized.shape[-1] * resized.shape[-2]
    gap = original.sum(dim=(-2, -1), keepdim=True) - resized.sum(dim=(-2, -1), keepdim=True)
    return resized + gap / size


def shrink_kernel(weight: Tensor, size: int) -> Tensor:
    """Downscale kernels (out, in, k, k) to size x size: area interpolation times (k/size)^2
    (a tap of the small kernel stands for (k/size)^2 taps), DC gain kept exactly."""
    k = weight.shape[-1]
    if size == k:
        return weight.clone()
    return _keep_sum(F.interpolate(weight, size=(size, size), mode="area") * (k / size) ** 2, weight)


def rescale_kernel(weight: Tensor, size: int) -> Tensor:
    """Upscale kernels (out, in, k_low, k_low) to size x size: bilinear interpolation divided
    by the area ratio (size/k_low)^2 - the paper's scale normalisation - DC gain kept exactly."""
    k_low = weight.shape[-1]
    if size == k_low:
        return weight.clone()
    stretched = F.interpolate(weight, size=(size, size), mode="bilinear", align_corners=False)
    return _keep_sum(stretched * (k_low / size) ** 2, weight)


def downscale(images: Tensor, scale: int) -> Tensor:
    """Area downscaling by ``scale`` (ceil of the size, so odd sizes keep their border)."""
    h, w = images.shape[-2:]
    return F.adaptive_avg_pool2d(images, (math.ceil(h / scale), math.ceil(w / scale)))


def spatial_convolutions(model: nn.Module) -> list[nn.Conv2d]:
    return [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size[0] > 1]


class KernelRescaling(Accelerator):
    name = "rescale"
    kind = "wall-clock"
    summary = "train at 1/s resolution with smaller kernels, then rescale kernels and finish at full size"
    paper = "de Gusmao et al. 2016, Fast Training of CNNs via Kernel Rescaling"
    order = 20  # data and model: after subset, before methods that act inside layers
    ddp_safe = False
    ddp_note = "swaps in new kernel parameters at the switch; a DDP wrapper keeps reducing the old ones"
    events = frozenset({Event.SETUP, Event.BATCH, Event.LOSS, Event.FIT_END})
    # wae and s3pool also change the input's or the maps' resolution; ssf's frozen structure
    # would be stretched and unfrozen at the switch (new kernel Parameters train)
    conflicts = frozenset({"wae", "s3pool", "ssf"})
    options = {
        "scale": Option(2, "downscaling factor of the first phase", lambda v: 2 <= v <= 4, "2..4"),
        "switch": Option(0.5, "fraction of the steps run at low resolution (with when=plateau: at most)",
                         lambda v: 0.0 < v < 1.0, "0 < switch < 1"),
        "when": Option("plateau", "plateau (when the low-resolution loss stops falling) or fixed",
                       lambda v: v in ("plateau", "fixed"), "plateau or fixed"),
        "tolerance": Option(0.02, "plateau: relative loss improvement per window below which to switch",
                            lambda v: 0.0 <= v < 1.0, "0 <= tolerance < 1"),
    }

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self.full_sizes: dict[nn.Conv2d, int] = {}
        self.switched_at: int | None = None
        self.low_steps = 0
        self.flops_full = 0
        self.flops_low = 0
        self.batch_size = 0
        self.losses: list[float] = []

    def apply(self, event: Event, state: TrainState) -> None:
        if event is Event.SETUP:
            self._to_low_resolution(state)
        elif event is Event.LOSS:
            if self.switched_at is None and self.values["when"] == "plateau":
                self.losses.append(float(state.loss.detach()))
        elif event is Event.BATCH:
            if self.switched_at is None and self._time_to_switch(state):
                self._to_full_resolution(state)
            if self.switched_at is None:
                state.inputs = downscale(state.inputs, self.values["scale"])
                self.low_steps += 1
                self.batch_size = len(state.targets)
        elif event is Event.FIT_END and self.switched_at is None:
            self._to_full_resolution(state)

    def check_invariants(self, event: Event, state: TrainState) -> None:
        """Before the switch every batch is downscaled and kernels are small; after it, the
        genome's kernel sizes are back."""
        low = self.switched_at is None
        for conv, k in self.full_sizes.items():
            if (conv.kernel_size[0] == k) == low and low_kernel_size(k, self.values["scale"]) != k:
                raise InvariantBroken(f"rescale: a {k}x{k} kernel has size {conv.kernel_size[0]} at {event.name}")
        if event is Event.LOSS and low:
            expected = math.ceil(state.input_shape[-1] / self.values["scale"])
            if state.inputs.shape[-1] != expected:
                raise InvariantBroken(f"rescale: low-resolution batch is {state.inputs.shape[-1]} wide, not {expected}")

    def teardown(self, state: TrainState) -> None:
        """A candidate that died in the low-resolution phase gets its genome's kernels back."""
        if self.full_sizes and self.switched_at is None:
            self._to_full_resolution(state)

    def state_dict(self) -> dict[str, Any]:
        return {"switched_at": self.switched_at, "low_steps": self.low_steps}

    def _time_to_switch(self, state: TrainState) -> bool:
        if state.step >= round(self.values["switch"] * state.total_steps):
            return True
        if self.values["when"] != "plateau" or state.step < state.total_steps // 10:
            return False
        return loss_plateaued(self.losses, max(5, state.total_steps // 20), self.values["tolerance"])

    def _to_low_resolution(self, state: TrainState) -> None:
        scale = self.values["scale"]
        c, h, w = state.input_shape
        self.flops_full = count_flops(state.model, state.input_shape)
        with torch.no_grad():
            for conv in spatial_convolutions(state.model):
                k = conv.kernel_size[0]
                small = low_kernel_size(k, scale)
                self.full_sizes[conv] = k
                conv.weight = nn.Parameter(shrink_kernel(conv.weight, small))
                conv.kernel_size, conv.padding = (small, small), (small // 2, small // 2)
        self.flops_low = count_flops(state.model, (c, math.ceil(h / scale), math.ceil(w / scale)))

    def _to_full_resolution(self, state: TrainState) -> None:
        """Rescale every kernel into a new Parameter, swapped into the optimizer's parameter
        groups with its momentum buffer rescaled by the same linear map (so the optimizer and
        the schedule carry on without a rebuild)."""
        swapped: dict[nn.Parameter, nn.Parameter] = {}
        with torch.no_grad():
            for conv, k in self.full_sizes.items():
                old = conv.weight
                conv.weight = nn.Parameter(rescale_kernel(old, k).contiguous(
                    memory_format=torch.channels_last if old.is_contiguous(memory_format=torch.channels_last)
                    else torch.contiguous_format))
                conv.kernel_size, conv.padding = (k, k), (k // 2, k // 2)
                swapped[old] = conv.weight
            if state.optimizer is not None:
                for group in state.optimizer.param_groups:
                    group["params"] = [swapped.get(p, p) for p in group["params"]]
                for old, new in swapped.items():
                    buffers = state.optimizer.state.pop(old, {})
                    if buffers.get("momentum_buffer") is not None:
                        buffers["momentum_buffer"] = rescale_kernel(buffers["momentum_buffer"],
                                                                    new.shape[-1])
                    if buffers:
                        state.optimizer.state[new] = buffers
        self.switched_at = state.step

    def report(self) -> dict[str, Any]:
        saved = training_flops(self.flops_full - self.flops_low, self.low_steps * self.batch_size)
        return {"scale": self.values["scale"], "when": self.values["when"], "low_resolution_steps": self.low_steps,
                "switched_at_step": self.switched_at, "forward_flops_full": self.flops_full,
                "forward_flops_low": self.flops_low, "training_flops_saved": float(saved)}
