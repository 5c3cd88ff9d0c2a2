"""The fused CPU kernels do what the torch operations they replace do."""

import numpy as np
import torch

from accelerators import kernels
from accelerators.fx16 import quantize
from accelerators.sparsegrad import stochastic_prune

STEP = 2.0 ** -12


def test_fixed_point_rounding_matches_the_torch_operations():
    torch.manual_seed(0)
    x = torch.randn(64, 16, 7, 7)  # within the range <4, 12> (+-8) but for the rows set below
    x[0, 0] = 20.0  # saturates high
    x[0, 1] = -20.0  # and low
    x[0, 2, 0] = 0.1 * STEP  # may flush to zero
    noise = kernels.uniform(x, 12345)
    assert kernels.fusable(x, x)
    expected = quantize(x, 4, 12, noise=noise)
    out = torch.empty_like(x)
    saturated, flushed = kernels.round_fixed_point(x, 12345, 4, 12, out)
    differ = (out != expected)
    # the kernel computes x / eps + u in float64, torch in float32 (whose sum is rounded again
    # to float32): they part by one step, for a few values in 10,000
    assert differ.float().mean() < 1e-3 and ((out - expected).abs()[differ] <= STEP).all()
    assert saturated == 2 * 7 * 7
    assert flushed == int(((expected == 0) & (x != 0)).sum())
    assert torch.equal(out / STEP, torch.round(out / STEP))


def test_fixed_point_rounding_in_place_stays_unbiased_value_by_value():
    rng = np.random.default_rng(2)
    x = torch.full((1000, 32), 0.3 * STEP)
    x[::2] = -1.7 * STEP
    total = torch.zeros_like(x)
    for _ in range(400):
        y = x.clone()
        kernels.round_fixed_point(y, kernels.starts(rng), 4, 12, y)
        assert torch.equal(y / STEP, torch.round(y / STEP))
        total += y
    error = (total / 400 - x) / STEP  # each value's mean over fresh starts: 400 draws, sd about 0.02
    assert error.abs().max() < 0.12 and abs(error.mean().item()) < 0.005


def test_the_kernels_uniform_numbers_are_uniform_and_the_same_as_the_torch_path():
    x = torch.empty(64, 24, 14, 14).contiguous(memory_format=torch.channels_last)
    u = kernels.uniform(x, 987654321)
    assert u.stride() == x.stride() and u.min() >= 0 and u.max() < 1
    counts = torch.histc(u, bins=10, min=0, max=1) / u.numel()
    assert (counts - 0.1).abs().max() < 0.002  # uniform over [0, 1)
    flat = u.permute(0, 2, 3, 1).reshape(-1)  # memory order: a channel's pixels are 24 apart
    for lag in (1, 24, 34, 55, 24 * 14):
        assert abs(torch.corrcoef(torch.stack([flat[:-lag], flat[lag:]]))[0, 1]) < 0.01  # no pattern
    g = torch.randn_like(x) * 1e-3
    out = torch.empty_like(g)
    kernels.prune_stochastic(g, 987654321, 1e-3, out)
    assert torch.equal(out, stochastic_prune(g, 1e-3, u))


def test_pruning_matches_the_torch_operations_and_counts_its_zeros():
    torch.manual_seed(1)
    g = torch.randn(32, 8, 9, 9) * 1e-3
    g[0, 0, 0, 0] = 0.0
    expected = stochastic_prune(g, 1e-3, kernels.uniform(g, 7))
    out = torch.empty_like(g)
    zeros = kernels.prune_stochastic(g, 7, 1e-3, out)
    assert torch.equal(out, expected)
    assert zeros == int((expected == 0).sum()) > 0
    in_place = g.clone()
    assert kernels.prune_stochastic(in_place, 7, 1e-3, in_place) == zeros
    assert torch.equal(in_place, expected)


def test_mean_abs_and_what_is_not_fused():
    g = torch.randn(10_000, dtype=torch.float64).float()
    assert abs(kernels.mean_abs(g) - g.abs().mean().item()) < 1e-6
    assert not kernels.fusable(g.double())
    assert not kernels.fusable(torch.randn(8, 8).t())  # not one dense block in order
    assert not kernels.fusable(g, torch.rand(5))
    nchw = torch.randn(4, 3, 5, 5)
    nhwc = nchw.contiguous(memory_format=torch.channels_last)
    assert kernels.fusable(nhwc, torch.empty_like(nhwc)) and not kernels.fusable(nhwc, nchw)
    pooled = torch.randn(4, 3, 1, 1)  # memory order is the same in either layout
    assert kernels.fusable(pooled.contiguous(memory_format=torch.channels_last), pooled)


def test_channels_last_tensors_are_rounded_value_by_value():
    x = torch.randn(8, 6, 5, 5).contiguous(memory_format=torch.channels_last)
    noise = kernels.uniform(x, 3)
    out = torch.empty_like(x)
    kernels.round_fixed_point(x, 3, 4, 12, out)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert (out != quantize(x, 4, 12, noise=noise)).float().mean() < 1e-3  # each value met its own noise
