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

Their uniform numbers are made in the loop by a counter hash, u_i = hash(s + i) / 2^64 (two
multiply-xorshift rounds, as SplitMix64 finalises), with a 63-bit start s drawn afresh for
every tensor and call: as fast as reading pre-drawn noise in cache, and it no longer moves a
third of each pass's bytes. A plain Weyl sequence (u_i = frac(s + i x 0.618)) was faster still
but nearly repeats at Fibonacci lags and drifts slowly along a channels-last channel, so
neighbouring pixels were rounded alike and their errors added up instead of cancelling: the
fx16+sparsegrad pair lost 16-20 more points of accuracy at 0.5 epochs (4 candidates, one seed).

The kernels are serial on purpose: numba's parallel layer brings a second OpenMP thread pool
beside torch's, and two pools spinning for the same cores slowed the training they sit in.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import torch
from torch import Tensor

# multipliers of the counter hash (odd 64-bit constants of SplitMix64's kind)
MIX_1, MIX_2 = 0x9E3779B97F4A7C15, 0xD6E8FEB86659FD93


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


def round_fixed_point(x: Tensor, start: int, integer_bits: int, fraction_bits: int,
                      out: Tensor) -> tuple[int, int]:
    """``out`` = x stochastically rounded to <IL, FL> (up where u < its fraction of a step; saturated), in
    one pass, with u the :func:`uniform` numbers from ``start``; ``out`` may be ``x``. Returns
    how many values saturated and how many nonzero values became zero."""
    eps = 2.0 ** -fraction_bits
    steps = 2.0 ** (integer_bits - 1) / eps
    kernels = _compiled()
    bounds = (1.0 / eps, eps, -steps, steps - 1)
    if out is x:  # one array: vectorised (two overlapping arrays make the compiler fall back to scalar code)
        saturated, flushed = kernels.round_fixed_point_in_place(_flat(x), start, *bounds)
    else:
        saturated, flushed = kernels.round_fixed_point(_flat(x), _flat(out), start, *bounds)
    return int(saturated), int(flushed)


def mean_abs(g: Tensor) -> float:
    """Mean |g| in one pass (accumulated in float64)."""
    n = g.numel()
    return float(_compiled().sum_abs(_flat(g))) / n if n else 0.0


def prune_stochastic(g: Tensor, start: int, tau: float, out: Tensor) -> int:
    """``out`` = g pruned as :func:`accelerators.sparsegrad.stochastic_prune` does (keep
    |g| >= u * tau, as sign(g) * max(|g|, tau); else 0), in one pass, with u the
    :func:`uniform` numbers from ``start``; ``out`` may be ``g``. Returns the zeros made."""
    if out is g:
        return int(_compiled().prune_stochastic_in_place(_flat(g), start, tau))
    return int(_compiled().prune_stochastic(_flat(g), _flat(out), start, tau))


def uniform(like: Tensor, start: int) -> Tensor:
    """The U[0, 1) numbers the kernels give the values of ``like`` (in memory order) from
    ``start``, as a tensor shaped and laid out like it (for the tests and the record)."""
    values = np.empty(like.numel(), dtype=np.float32)
    _compiled().fill_uniform(values, start)
    flat = torch.from_numpy(values).to(like.device)
    return flat.as_strided(like.shape, like.stride()) if _dense(like) else flat.view(like.shape)


def starts(rng: np.random.Generator) -> int:
    """A fresh start of the hash's counter for one tensor (63 bits: two tensors' counters
    practically never overlap)."""
    return int(rng.integers(1 << 63))


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
    # Rounding and pruning draw their uniform numbers themselves (:func:`uniform`): reading
    # pre-drawn noise was a third of the bytes each pass moved.
    mix_1, mix_2, half, top = np.uint64(MIX_1), np.uint64(MIX_2), np.uint64(32), np.uint64(40)

    @njit(cache=True, inline="always")
    def uniform_at(start, i):  # unsigned 64-bit throughout: numba turns mixed signedness into floats
        h = (np.uint64(start) + np.uint64(i)) * mix_1
        h = (h ^ (h >> half)) * mix_2
        h = h ^ (h >> half)
        return np.float32(h >> top) * np.float32(2.0 ** -24)

    @njit(cache=True, nogil=True)
    def fill_uniform(out, start):
        for i in range(out.size):
            out[i] = uniform_at(start, i)

    @njit(cache=True, inline="always")
    def rounded(value, u, scale, step_size, low, high):
        # up with probability frac: floor(t + u) in float32 would round t + u itself and move a
        # value already on the grid one step for u within an ulp of 1 (the scaling by 2^FL and
        # the fraction are exact)
        steps = value * scale
        below = np.floor(steps)
        raw = below + np.float32(u < steps - below)
        step = min(max(raw, low), high)
        return step * step_size, raw != step, (step == 0) & (value != 0)

    @njit(cache=True, nogil=True)
    def round_fixed_point(x, out, start, inv_eps, eps, low, high):
        saturated = 0
        flushed = 0
        scale, step_size, low, high = np.float32(inv_eps), np.float32(eps), np.float32(low), np.float32(high)
        for i in range(x.size):
            out[i], hit_range, hit_zero = rounded(x[i], uniform_at(start, i), scale, step_size, low, high)
            saturated += hit_range
            flushed += hit_zero
        return saturated, flushed

    @njit(cache=True, nogil=True)
    def round_fixed_point_in_place(x, start, inv_eps, eps, low, high):
        saturated = 0
        flushed = 0
        scale, step_size, low, high = np.float32(inv_eps), np.float32(eps), np.float32(low), np.float32(high)
        for i in range(x.size):
            x[i], hit_range, hit_zero = rounded(x[i], uniform_at(start, i), scale, step_size, low, high)
            saturated += hit_range
            flushed += hit_zero
        return saturated, flushed

    @njit(cache=True, nogil=True, fastmath=True)
    def sum_abs(g):
        total = 0.0
        for i in range(g.size):
            total += abs(g[i])
        return total

    @njit(cache=True, inline="always")
    def pruned(value, u, tau):
        magnitude = abs(value)
        if magnitude >= u * tau:
            return (value if magnitude >= tau else math.copysign(tau, value)), 0
        return np.float32(0.0), 1

    @njit(cache=True, nogil=True)
    def prune_stochastic(g, out, start, tau):
        zeros = 0
        tau = np.float32(tau)
        for i in range(g.size):
            out[i], zero = pruned(g[i], uniform_at(start, i), tau)
            zeros += zero
        return zeros

    @njit(cache=True, nogil=True)
    def prune_stochastic_in_place(g, start, tau):
        zeros = 0
        tau = np.float32(tau)
        for i in range(g.size):
            g[i], zero = pruned(g[i], uniform_at(start, i), tau)
            zeros += zero
        return zeros

    class Kernels:
        pass

    kernels = Kernels()
    kernels.round_fixed_point, kernels.round_fixed_point_in_place = round_fixed_point, round_fixed_point_in_place
    kernels.prune_stochastic, kernels.prune_stochastic_in_place = prune_stochastic, prune_stochastic_in_place
    kernels.sum_abs, kernels.fill_uniform = sum_abs, fill_uniform
    one = np.zeros(1, dtype=np.float32)  # numba compiles (or loads) on the first call: make it here
    round_fixed_point(one, one, 1, 1.0, 1.0, -1.0, 1.0)
    round_fixed_point_in_place(one, 1, 1.0, 1.0, -1.0, 1.0)
    sum_abs(one)
    prune_stochastic(one, one, 1, 1.0)
    prune_stochastic_in_place(one, 1, 1.0)
    fill_uniform(one, 1)
    return kernels
