"""``s3pool``: stochastic spatial sampling in place of stride-2 downsampling (a regularizer).

Zhai, Wu, Kumar, Cheng, Lu, Zhang & Feris (2017), "S3Pool: Pooling with Stochastic Spatial
Sampling" (CVPR). The paper splits pooling in two steps: (1) a 2x2 max pool with stride 1,
which keeps the resolution, and (2) downsampling. S3Pool replaces the regular step 2 (keep
the top-left pixel of every 2x2 window) by a random one: the map is cut into grids of g x g
pixels and, in each grid, g/2 rows and g/2 columns are drawn at random (without replacement,
kept in order); the output keeps the selected rows and columns, so the downsampling factor
stays 2 but the sampling is irregular - a distortion that acts as implicit data augmentation.

What is implemented, exactly: every ``nn.Conv2d`` with stride 2 (in ``mobile``: the depthwise
convolution of each stage's first block, and the stem at >= 64 pixels) runs at stride 1 and
is followed by S3Pool: after the whole conv-BN-ReLU6 unit when the convolution opens an
``nn.Sequential`` (so the max pool sees activations, as in the paper), else right after the
convolution. Step 1 pads the right and bottom edge with -inf so the max pool keeps the size.
Step 2, in training, draws one set of rows and columns per forward pass (shared by the batch
and the channels, as in the authors' code) from grids of ``grid`` pixels; a last, partial grid
of r pixels gives ceil(r/2). So an n-pixel side becomes ceil(n/2) pixels - the size the
stride-2 convolution gives - for odd and even n.

At test time (eval mode) step 2 is its expectation: each output pixel is the expected value
of the pixel the random draw would pick, a fixed linear map per side (the j-th of k ordered
draws from L positions lands on position r with probability C(r, j) C(L-1-r, k-1-j) / C(L, k)).
For the default ``grid=2`` this is exactly 2x2 average pooling with stride 2, the test-time
form the paper (and its code) uses; for larger grids it is the exact expectation rather than
the paper's average pooling. Deterministic, so two evaluations agree.

The pooling stays in the trained model: the trainer's BatchNorm recalibration and its
validation accuracy after FIT_END (and any later use of ``TrainResult.model``) see the
test-time S3Pool. The pools are modules without parameters or buffers and the convolutions
keep their weights, so the state dict has the genome's keys and shapes; but a network built
from the genome and loaded with these weights computes the plain stride-2 convolution, which
is close to, not equal to, the trained function (a Net2Net child starts from it and trains on).

Not implemented: the paper's pooling layers in networks that pool (``mobile`` downsamples with
strided convolutions only). Cost: the replaced convolutions (and the BN and activation after
them) run at 4x the positions; report() gives the extra forward FLOPs per sample. ``kind`` is
``regularizer``: it changes what is learned and saves no work (``training_flops_saved`` 0).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from accelerators.base import Accelerator, Option
from automl.train.events import Event, TrainState
from automl.nn.flops import count_flops


def output_size(n: int) -> int:
    """What a stride-2 convolution with padding k // 2 (odd k) makes of n pixels."""
    return -(-n // 2)


def _grids(n: int, grid: int) -> list[tuple[int, int, int]]:
    """(offset, length, picks) of each grid along an n-pixel side."""
    out = []
    for offset in range(0, n, grid):
        length = min(grid, n - offset)
        out.append((offset, length, -(-length // 2)))
    return out


def sample_positions(n: int, grid: int, device: torch.device | None = None) -> Tensor:
    """Random, ordered positions: ceil(L/2) of each grid of L pixels (ceil(n/2) in all)."""
    picks = []
    for offset, length, k in _grids(n, grid):
        chosen = torch.randperm(length)[:k].sort().values
        picks.append(chosen + offset)
    return torch.cat(picks).to(device)


@lru_cache(maxsize=256)
def _expectation(n: int, grid: int) -> Tensor:
    """(ceil(n/2), n) matrix: row i is the distribution of the position output i samples."""
    matrix = torch.zeros(output_size(n), n, dtype=torch.float64)
    row = 0
    for offset, length, k in _grids(n, grid):
        total = math.comb(length, k)
        for j in range(k):
            for r in range(length):
                matrix[row + j, offset + r] = math.comb(r, j) * math.comb(length - 1 - r, k - 1 - j) / total
        row += k
    return matrix


class S3Pool(nn.Module):
    """Max pool 2x2 at stride 1, then random (training) or expected (eval) 2x downsampling."""

    def __init__(self, grid: int = 2) -> None:
        super().__init__()
        self.grid = grid

    def forward(self, x: Tensor) -> Tensor:
        x = F.max_pool2d(F.pad(x, (0, 1, 0, 1), value=float("-inf")), 2, stride=1)
        height, width = x.shape[-2:]
        if self.training:
            rows = sample_positions(height, self.grid, x.device)
            cols = sample_positions(width, self.grid, x.device)
            return x.index_select(2, rows).index_select(3, cols)
        rows = _expectation(height, self.grid).to(x.device, x.dtype)
        cols = _expectation(width, self.grid).to(x.device, x.dtype)
        return torch.einsum("ih,nchw,jw->ncij", rows, x, cols)

    def hook(self, module: nn.Module, inputs: Any, output: Tensor) -> Tensor:
        """Forward hook form, for a strided convolution that does not open a Sequential."""
        return self(output)

    def extra_repr(self) -> str:
        return f"grid={self.grid}"


def _replaceable(conv: nn.Conv2d) -> bool:
    k = conv.kernel_size
    return (conv.stride == (2, 2) and k[0] % 2 == 1 and k[1] % 2 == 1
            and conv.padding == (k[0] // 2, k[1] // 2) and conv.dilation == (1, 1))


def install(model: nn.Module, grid: int) -> int:
    """Turn every stride-2 convolution of ``model`` into stride 1 + S3Pool; returns how many."""
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if not (isinstance(child, nn.Conv2d) and _replaceable(child)):
                continue
            child.stride = (1, 1)
            pool = S3Pool(grid)
            if isinstance(parent, nn.Sequential) and name == "0":
                parent.append(pool)  # after the conv's norm and activation
            else:
                child.s3pool = pool  # a child module without state: the state dict is unchanged
                child.register_forward_hook(pool.hook)
            replaced += 1
    return replaced


class StochasticSpatialSampling(Accelerator):
    name = "s3pool"
    kind = "regularizer"
    summary = "random spatial sampling instead of stride-2 downsampling in training, its expectation at test"
    paper = "Zhai et al. 2017, S3Pool: Pooling with Stochastic Spatial Sampling (CVPR)"
    order = 20  # model
    ddp_safe = True
    ddp_note = (
        "adds parameter-free modules at INIT; each rank's random sampling only changes its local "
        "gradient")
    # wae trains the model on half-resolution codes: a stride-2 layer then meets a map too small
    # for its sampling grid and the run fails (the all-pairs composition test); refused, not fixed
    conflicts = frozenset({"wae"})
    events = frozenset({Event.INIT})
    options = {
        "grid": Option(2, "grid size g: g/2 rows and columns are drawn from each g x g grid",
                       lambda v: v >= 2 and v % 2 == 0, "an even number >= 2"),
    }

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self.replaced = 0
        self.flops_before = 0
        self.flops_after = 0


    def apply(self, event: Event, state: TrainState) -> None:
        if event is Event.INIT:
            self.flops_before = count_flops(state.model, state.input_shape)
            self.replaced = install(state.model, self.values["grid"])
            self.flops_after = count_flops(state.model, state.input_shape)

    def report(self) -> dict[str, Any]:
        extra = self.flops_after - self.flops_before
        return {"layers_replaced": self.replaced, "grid": self.values["grid"],
                "extra_forward_flops_per_sample": float(extra),
                "extra_forward_fraction": extra / self.flops_before if self.flops_before else 0.0,
                "training_flops_saved": 0.0}
