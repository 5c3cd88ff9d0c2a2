"""Uniform noise for stochastic rounding, cheap enough to use on every tensor of every step.

Stochastic rounding (fx16) and stochastic pruning (sparsegrad) need one uniform random number
per value, and drawing them is what made their emulation slow: ``torch.rand_like`` costs more
than the rounding itself on a CPU. A :class:`Dither` draws a large block of U[0, 1) numbers
once per device and hands out windows of it at random offsets. Each value still meets a
uniform number that does not depend on the value, so rounding stays unbiased
(E[floor(x + u)] = x); what is given up is independence between two windows that overlap,
which matters to neither method (each draws a fresh offset per tensor and step).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

BLOCK = 1 << 22  # 4M floats (16 MiB) per device: larger than any activation of our spaces at batch 64


class Dither:
    """Windows of one pre-drawn block of U[0, 1) numbers, at random offsets."""

    def __init__(self, seed: int = 0, block: int = BLOCK) -> None:
        self.block = block
        self.rng = np.random.default_rng(seed)
        self._noise: dict[torch.device, Tensor] = {}

    def _block(self, device: torch.device) -> Tensor:
        noise = self._noise.get(device)
        if noise is None:
            generator = torch.Generator().manual_seed(int(self.rng.integers(2**31)))
            noise = torch.rand(2 * self.block, generator=generator).to(device)  # twice: any window fits
            self._noise[device] = noise
        return noise

    def like(self, x: Tensor) -> Tensor:
        """Uniform noise shaped like ``x`` (a view of the block, no copy where it fits)."""
        n = x.numel()
        if n > self.block:  # a tensor larger than the block: draw it directly
            return torch.rand(x.shape, device=x.device, dtype=x.dtype)
        start = int(self.rng.integers(self.block))
        window = self._block(x.device)[start:start + n]
        if window.dtype != x.dtype:
            window = window.to(x.dtype)
        if x.is_contiguous():
            return window.view(x.shape)
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
            return window.as_strided(x.shape, x.stride())  # same layout as x: one dense pass
        return window.view(x.shape).contiguous(memory_format=torch.preserve_format)
