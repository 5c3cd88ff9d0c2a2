"""Fused CPU kernels for the emulated methods: fixed-point rounding and gradient pruning.

Why: fx16 rounds every activation, gradient and weight of every step, and sparsegrad prunes
every convolution's output gradient. Written as torch operations, a rounding is four passes
over the tensor and a pruning seven (absolute value, threshold, compare, clamp, copy sign,
select, count); on a CPU those passes, not the arithmetic, made the emulation cost 1.5-2x the
plain training. Here each is one pass (pruning: two, the threshold needs the mean first),
compiled by numba on first use and cached on disk (``cache=True``: about two seconds once
per machine). Float32 tensors on the CPU take this path; anything else (CUDA, other dtypes,
tensors that are not one dense block) take the torch operations in the callers, which do
the same arithmetic.

The kernels are serial on purpose: numba's parallel layer brings a second OpenMP thread pool
beside torch's, and two pools spinning for the same cores slowed the training they sit in.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import torch
from torch import Tensor


def fusable(*tensors: Tensor) -> bool:
    """Whether the fused kernels can run on these tensors: float32 on the CPU, each one dense
    block (in order or channels-last, as the trainer's activations are) laid out like the
    first, so that value i of one meets value i of the others; and numba is installed."""
    first = tensors[0]
    return (all(t.device.type == "cpu" and t.dtype == torch.float32 and _dense(t)
                and t.shape == first.shape and _layout(t) == _layout(first) for t in tensors)
            and _compiled() is not None)


def _layout(t: Tensor) -> tuple[int, ...]:
    """The strides that place its values in memory (a dimension of size 1 places nothing)."""
    return tuple(stride for size, stride in zip(t.shape, t.stride()) if size > 1)


def _dense(t: Tensor) -> bool:
    return t.is_contiguous() or (t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last))


def round_fixed_point(x: Tensor, noise: Tensor, integer_bits: int, fraction_bits: int,
                      out: Tensor) -> tuple[int, int]:
    """``out`` = x stochastically rounded to <IL, FL> (``floor(x / eps + u)``, saturated), in
    one pass; ``out`` may be ``x``. Returns how many values saturated and how many nonzero
    values became zero."""
    eps = 2.0 ** -fraction_bits
    steps = 2.0 ** (integer_bits - 1) / eps
    kernels = _compiled()
    saturated, flushed = kernels.round_fixed_point(_flat(x), _flat(noise), _flat(out), 1.0 / eps, eps,
                                                   -steps, steps - 1)
    return int(saturated), int(flushed)


def mean_abs(g: Tensor) -> float:
    """Mean |g| in one pass (accumulated in float64)."""
    n = g.numel()
    return float(_compiled().sum_abs(_flat(g))) / n if n else 0.0


def prune_stochastic(g: Tensor, noise: Tensor, tau: float, out: Tensor) -> int:
    """``out`` = g pruned as :func:`accelerators.sparsegrad.stochastic_prune` does (keep
    |g| >= u * tau, as sign(g) * max(|g|, tau); else 0), in one pass. Returns the zeros made."""
    return int(_compiled().prune_stochastic(_flat(g), _flat(noise), _flat(out), tau))


def load() -> bool:
    """Compile or load the kernels now (once per process; benchmarks call it before timing).
    Whether numba is there to run them."""
    return _compiled() is not None


def _flat(t: Tensor):
    """The values of a dense tensor as one numpy vector, in memory order (no copy)."""
    return t.detach().as_strided((t.numel(),), (1,)).numpy()


@cache
def _compiled():
    """The numba kernels, compiled (or loaded from numba's cache) on first use; None without numba."""
    try:
        from numba import njit
    except ImportError:  # pragma: no cover - numba is a dependency; the torch path still works
        return None

    # Branch-free bodies in float32, as torch computes them: the compiler turns each loop into
    # SIMD code (the branchy float64 version ran 1.7x slower and differed from torch's rounding
    # in one value in a million); the sum may reorder its additions (fastmath), 4x faster.
    @njit(cache=True, nogil=True)
    def round_fixed_point(x, u, out, inv_eps, eps, low, high):
        saturated = 0
        flushed = 0
        scale, step_size = np.float32(inv_eps), np.float32(eps)
        low, high = np.float32(low), np.float32(high)
        for i in range(x.size):
            value = x[i]
            raw = np.floor(value * scale + u[i])
            step = min(max(raw, low), high)
            saturated += raw != step
            flushed += (step == 0) & (value != 0)
            out[i] = step * step_size
        return saturated, flushed

    @njit(cache=True, nogil=True, fastmath=True)
    def sum_abs(g):
        total = 0.0
        for i in range(g.size):
            total += abs(g[i])
        return total

    @njit(cache=True, nogil=True)
    def prune_stochastic(g, u, out, tau):
        zeros = 0
        for i in range(g.size):
            value = g[i]
            magnitude = abs(value)
            if magnitude >= u[i] * tau:
                out[i] = value if magnitude >= tau else math.copysign(tau, value)
            else:
                out[i] = 0.0
                zeros += 1
        return zeros

    class Kernels:
        pass

    kernels = Kernels()
    kernels.round_fixed_point, kernels.sum_abs, kernels.prune_stochastic = round_fixed_point, sum_abs, prune_stochastic
    one = np.zeros(1, dtype=np.float32)  # numba compiles (or loads) on the first call: make it here
    round_fixed_point(one, one, one, 1.0, 1.0, -1.0, 1.0)
    sum_abs(one)
    prune_stochastic(one, one, one, 1.0)
    return kernels
