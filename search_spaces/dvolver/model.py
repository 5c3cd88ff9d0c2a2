"""NASNet networks from a ``dvolver`` genotype, in PyTorch (our code, following the structure of
TensorFlow's ``nasnet.py``/``nasnet_utils.py`` that Dvolver trains).

Operations: ``sepK`` is ReLU -> separable KxK -> BN, twice (stride on the first); ``avg3``/``max3``
pool 3x3 (average without the padding), followed by a 1x1 convolution + BN where the channels
must change; ``id`` passes its input, or ReLU -> strided 1x1 -> BN where it must reduce or
change channels. In a reduction cell, operations on the two cell inputs use stride 2.

A cell projects the previous cell's output (ReLU -> 1x1 -> BN, state 0) and brings the cell
before that to the same shape (state 1: a factorized reduction where it is twice as large,
otherwise ReLU -> 1x1 -> BN), runs its blocks and concatenates its output states, reducing
those whose shape differs. One deviation from TensorFlow, which passes state 1 unprojected when
its channel count happens to equal the cell's width: we always project it, so every state of a
cell carries the same channels (what Net2Net widening needs); NASNet-A never hits that case.

Macro structure: inputs of 64 pixels or more get NASNet's ImageNet stem (3x3 stride-2 valid
convolution to 32 channels, then two reduction cells of F/4 and F/2 filters); smaller inputs
the CIFAR stem (3x3 convolution to 3F channels). Then three stages of N normal cells with F, 2F
and 4F filters, a reduction cell before the second and third, ReLU, global pooling and a linear
classifier (NASNet's auxiliary head and dropout are training aids and are left out).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as fn

from search_spaces.dvolver.genotype import KERNELS, Cell

IMAGENET_STEM_MIN_SIZE = 64
IMAGENET_STEM_FILTERS = 32
CIFAR_STEM_MULTIPLIER = 3


def relu_conv_bn(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.ReLU(), nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))


class SepConv(nn.Module):
    """NASNet's ``separable_KxK_2``: (ReLU -> depthwise KxK -> pointwise 1x1 -> BN) twice."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.dw1 = nn.Conv2d(c_in, c_in, kernel, stride, kernel // 2, groups=c_in, bias=False)
        self.pw1 = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.dw2 = nn.Conv2d(c_out, c_out, kernel, 1, kernel // 2, groups=c_out, bias=False)
        self.pw2 = nn.Conv2d(c_out, c_out, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)

    def forward(self, x: Tensor) -> Tensor:
        x = self.bn1(self.pw1(self.dw1(fn.relu(x))))
        return self.bn2(self.pw2(self.dw2(fn.relu(x))))


class Pool(nn.Module):
    """3x3 average (padding not counted) or max pooling, then 1x1 + BN if channels change."""

    def __init__(self, kind: str, c_in: int, c_out: int, stride: int, project: bool) -> None:
        super().__init__()
        self.pool = (nn.AvgPool2d(3, stride, 1, count_include_pad=False) if kind == "avg3"
                     else nn.MaxPool2d(3, stride, 1))
        self.proj = nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out)) if project else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(x)
        return x if self.proj is None else self.proj(x)


class Identity(nn.Module):
    """The identity, or ReLU -> strided 1x1 -> BN where it must reduce or change channels."""

    def __init__(self, c_in: int, c_out: int, stride: int, project: bool) -> None:
        super().__init__()
        self.proj = relu_conv_bn(c_in, c_out, stride) if project or stride > 1 else None

    def forward(self, x: Tensor) -> Tensor:
        return x if self.proj is None else self.proj(x)


class FactorizedReduce(nn.Module):
    """Halve the resolution without losing pixels: two strided 1x1 convolutions, the second on
    the input shifted by one pixel, concatenated, then BN (stride 1: one 1x1 convolution + BN)."""

    def __init__(self, c_in: int, c_out: int, stride: int, relu: bool) -> None:
        super().__init__()
        self.relu = relu
        self.stride = stride
        half = c_out // 2 if stride > 1 else c_out
        self.path1 = nn.Conv2d(c_in, half, 1, bias=False)
        self.path2 = nn.Conv2d(c_in, c_out - half, 1, bias=False) if stride > 1 else None
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: Tensor) -> Tensor:
        if self.relu:
            x = fn.relu(x)
        if self.path2 is None:
            return self.bn(self.path1(x))
        shifted = fn.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.path1(x[:, :, ::2, ::2]), self.path2(shifted[:, :, ::2, ::2])], 1))


def make_op(op: str, c_in: int, c_out: int, stride: int, project: bool) -> nn.Module:
    if op.startswith("sep"):
        return SepConv(c_in, c_out, KERNELS[op], stride)
    if op in ("avg3", "max3"):
        return Pool(op, c_in, c_out, stride, project)
    return Identity(c_in, c_out, stride, project)


class NASCell(nn.Module):
    """One normal or reduction cell. ``c_prev_prev`` None: the cell before the previous one does
    not exist (first cell after the stem) and state 1 is the previous output, unprojected."""

    def __init__(self, cell: Cell, width: int, c_prev: int, c_prev_prev: int | None,
                 reduction: bool, prev_prev_larger: bool) -> None:
        super().__init__()
        self.cell = cell
        self.width = width
        self.reduction = reduction
        self.base = relu_conv_bn(c_prev, width)
        if c_prev_prev is None:
            self.pre, c_state1 = None, c_prev
        elif prev_prev_larger:
            self.pre, c_state1 = FactorizedReduce(c_prev_prev, width, 2, relu=True), width
        else:
            self.pre, c_state1 = relu_conv_bn(c_prev_prev, width), width
        self.foreign = self.pre is None  # state 1 is not in the cell's channels
        ops = []
        for block in cell.blocks:
            for state, op in ((block.in0, block.op0), (block.in1, block.op1)):
                stride = 2 if reduction and state < 2 else 1
                foreign = state == 1 and self.foreign
                ops.append(make_op(op, c_state1 if state == 1 else width, width, stride, foreign))
        self.ops = nn.ModuleList(ops)
        self.fixes = nn.ModuleDict()
        for state in cell.outputs():
            if state < 2 and (reduction or (state == 1 and self.foreign)):
                c_in = c_state1 if state == 1 else width
                self.fixes[str(state)] = FactorizedReduce(c_in, width, 2 if reduction else 1, relu=False)
        self.out_channels = width * len(cell.outputs())

    def forward(self, prev: Tensor, prev_prev: Tensor | None) -> Tensor:
        states = [self.base(prev), prev if self.pre is None else self.pre(prev_prev)]
        for b, block in enumerate(self.cell.blocks):
            states.append(self.ops[2 * b](states[block.in0]) + self.ops[2 * b + 1](states[block.in1]))
        outputs = [self.fixes[str(s)](states[s]) if str(s) in self.fixes else states[s] for s in self.cell.outputs()]
        return torch.cat(outputs, 1)


class NASNet(nn.Module):
    """Stem -> cells (each reads the two previous outputs) -> ReLU -> pool -> classifier.

    ``roles[i]`` names the width group of cell ``i`` (``stem0``, ``stem1``, ``stage0`` ...):
    cells of one role share their width, and Net2Net one channel map per role."""

    def __init__(self, stem: nn.Sequential, cells: list[NASCell], roles: list[str], num_classes: int) -> None:
        super().__init__()
        self.stem = stem
        self.cells = nn.ModuleList(cells)
        self.roles = roles
        self.classifier = nn.Linear(cells[-1].out_channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        prev, prev_prev = self.stem(x), None
        for cell in self.cells:
            prev, prev_prev = cell(prev, prev_prev), prev
        return self.classifier(fn.adaptive_avg_pool2d(fn.relu(prev), 1).flatten(1))


def stem_width(filters: int, imagenet: bool) -> int:
    return IMAGENET_STEM_FILTERS if imagenet else CIFAR_STEM_MULTIPLIER * filters


def plan(cells_per_stage: int, filters: int, imagenet: bool) -> list[tuple[str, bool, int]]:
    """(role, reduction, width) of every cell in order."""
    cells = [("stem0", True, filters // 4), ("stem1", True, filters // 2)] if imagenet else []
    for stage in range(3):
        width = filters * 2 ** stage
        if stage:
            cells.append((f"stage{stage}", True, width))
        cells += [(f"stage{stage}", False, width)] * cells_per_stage
    return cells


def build_nasnet(normal: Cell, reduce: Cell, cells_per_stage: int, filters: int,
                 in_shape: tuple[int, int, int], num_classes: int) -> NASNet:
    channels, height, width = in_shape
    imagenet = min(height, width) >= IMAGENET_STEM_MIN_SIZE
    c_stem = stem_width(filters, imagenet)
    stem = (nn.Sequential(nn.Conv2d(channels, c_stem, 3, 2, 0, bias=False), nn.BatchNorm2d(c_stem)) if imagenet
            else nn.Sequential(nn.Conv2d(channels, c_stem, 3, 1, 1, bias=False), nn.BatchNorm2d(c_stem)))
    cells: list[NASCell] = []
    roles: list[str] = []
    c_prev, c_prev_prev, prev_reduced = c_stem, None, False
    for role, reduction, cell_width in plan(cells_per_stage, filters, imagenet):
        cell = NASCell(reduce if reduction else normal, cell_width, c_prev, c_prev_prev, reduction, prev_reduced)
        cells.append(cell)
        roles.append(role)
        c_prev, c_prev_prev, prev_reduced = cell.out_channels, c_prev, reduction
    return NASNet(stem, cells, roles, num_classes)
