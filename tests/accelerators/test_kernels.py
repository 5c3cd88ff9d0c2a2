"""The fused CPU kernels do what the torch operations they replace do."""

import torch

from accelerators import kernels
from accelerators.dither import Dither
from accelerators.fx16 import quantize
from accelerators.sparsegrad import stochastic_prune

STEP = 2.0 ** -12


def test_fixed_point_rounding_matches_the_torch_operations():
    torch.manual_seed(0)
    x = torch.randn(64, 16, 7, 7)  # within the range <4, 12> (+-8) but for the rows set below
    x[0, 0] = 20.0  # saturates high
    x[0, 1] = -20.0  # and low
    x[0, 2, 0] = 0.1 * STEP  # may flush to zero
    noise = Dither(seed=0).like(x)
    assert kernels.fusable(x, noise, x)
    expected = quantize(x, 4, 12, noise=noise)
    out = torch.empty_like(x)
    saturated, flushed = kernels.round_fixed_point(x, noise, 4, 12, out)
    differ = (out != expected)
    # the kernel computes x / eps + u in float64, torch in float32 (whose sum is rounded again
    # to float32): they part by one step, for a few values in 10,000
    assert differ.float().mean() < 1e-3 and ((out - expected).abs()[differ] <= STEP).all()
    assert saturated == 2 * 7 * 7
    assert flushed == int(((expected == 0) & (x != 0)).sum())
    assert torch.equal(out / STEP, torch.round(out / STEP))


def test_fixed_point_rounding_in_place_stays_unbiased():
    dither = Dither(seed=2)
    x = torch.full((1000, 32), 0.3 * STEP)
    total = torch.zeros_like(x)
    for _ in range(200):
        y = x.clone()
        kernels.round_fixed_point(y, dither.like(y), 4, 12, y)
        total += y
    assert abs((total / 200).mean().item() - 0.3 * STEP) < 0.02 * STEP


def test_pruning_matches_the_torch_operations_and_counts_its_zeros():
    torch.manual_seed(1)
    g = torch.randn(32, 8, 9, 9) * 1e-3
    g[0, 0, 0, 0] = 0.0
    noise = Dither(seed=1).like(g)
    expected = stochastic_prune(g, 1e-3, noise)
    out = torch.empty_like(g)
    zeros = kernels.prune_stochastic(g, noise, 1e-3, out)
    assert torch.equal(out, expected)
    assert zeros == int((expected == 0).sum()) > 0


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
    noise = Dither(seed=3).like(x)
    out = torch.empty_like(x)
    kernels.round_fixed_point(x, noise, 4, 12, out)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert (out != quantize(x, 4, 12, noise=noise)).float().mean() < 1e-3  # each value met its own noise
