"""Uniform noise for stochastic rounding on the torch path (GPUs, other dtypes), cheap enough to
use on every tensor of every step. (On the CPU the fused kernels of :mod:`accelerators.kernels`
make their own.)

Stochastic rounding (fx16) and stochastic pruning (sparsegrad) need one uniform random number
per value, and drawing them is what made their emulation slow: ``torch.rand_like`` costs more
than the rounding itself on a CPU. One large block of U[0, 1) numbers is drawn per device and
process, and each :class:`Dither` hands out windows of it at random offsets of its own. Each
value still meets a uniform number that does not depend on the value, so rounding stays unbiased
(E[floor(x + u)] = x); what is given up is independence between two windows that overlap,
which matters to neither method (each draws a fresh offset per tensor and step).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

BLOCK = 1 << 22  # 4M floats (16 MiB) per device: larger than any activation of our spaces at batch 64
BLOCK_SEED = 0


_BLOCKS: dict[torch.device, Tensor] = {}  # one block per device for the whole process


def _block(device: torch.device, block: int) -> Tensor:
    """The process's pre-drawn noise on ``device`` (twice ``block`` long: any window fits).
    Drawn once and shared by every Dither: drawing it cost a short trial as much as its
    roundings (32 MiB of random numbers per accelerator and trial)."""
    noise = _BLOCKS.get(device)
    if noise is None or len(noise) < 2 * block:
        generator = torch.Generator().manual_seed(BLOCK_SEED)
        noise = torch.rand(2 * block, generator=generator).to(device)
        _BLOCKS[device] = noise
    return noise


class Dither:
    """Windows of one pre-drawn block of U[0, 1) numbers, at random offsets of its own."""

    def __init__(self, seed: int = 0, block: int = BLOCK) -> None:
        self.block = block
        self.rng = np.random.default_rng(seed)

    def like(self, x: Tensor) -> Tensor:
        """Uniform noise shaped like ``x`` (a view of the block, no copy where it fits)."""
        n = x.numel()
        if n > self.block:  # a tensor larger than the block: draw it directly
            return torch.rand(x.shape, device=x.device, dtype=x.dtype)
        start = int(self.rng.integers(self.block))
        window = _block(x.device, self.block)[start:start + n]
        if window.dtype != x.dtype:
            window = window.to(x.dtype)
        if x.is_contiguous():
            return window.view(x.shape)
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
            return window.as_strided(x.shape, x.stride())  # same layout as x: one dense pass
        return window.view(x.shape).contiguous(memory_format=torch.preserve_format)
