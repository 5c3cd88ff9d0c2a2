"""Reference networks: whole small CNNs the calibration trains a few steps of, so the cost
model's level is set by operators running *in a network*, not alone.

Why: the micro-benchmarks time one layer at a time, cycling through a few inputs. In a
network the same operators run at a different pace - caches hold other layers' activations,
the allocator reuses blocks, autograd interleaves phases - and how different depends on the
CPU: on one machine whole steps ran 1.15-1.5x faster than the sum of their micro-benchmarked
operators, on another ~1.2x slower. The per-operator rates keep the *relative* costs (kernel,
stride, width, format); these networks give the *level*. They are built here from plain
layers, in the three families the shipped spaces draw from (inverted residuals with depthwise
convolutions, basic and bottleneck residual blocks, NASNet-style cells of separable
convolutions and pooling), and are never a search's candidates.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

INPUT_SHAPE = (1, 28, 28)  # the embedded data's images, which the shipped spaces' candidates are sized for


def _bn_act(channels: int, act: type[nn.Module] = nn.ReLU) -> list[nn.Module]:
    return [nn.BatchNorm2d(channels), act(inplace=True)]


class _InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(cin, mid, 1, bias=False), *_bn_act(mid, nn.ReLU6)]
        layers += [nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False), *_bn_act(mid, nn.ReLU6),
                   nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


class _Residual(nn.Module):
    """A basic (two 3x3) or bottleneck (1x1, 3x3, 1x1 x4) block with a projection shortcut."""

    def __init__(self, cin: int, width: int, stride: int, bottleneck: bool) -> None:
        super().__init__()
        cout = width * 4 if bottleneck else width
        if bottleneck:
            layers = [nn.Conv2d(cin, width, 1, bias=False), *_bn_act(width),
                      nn.Conv2d(width, width, 3, stride, 1, bias=False), *_bn_act(width),
                      nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        else:
            layers = [nn.Conv2d(cin, width, 3, stride, 1, bias=False), *_bn_act(width),
                      nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width)]
        self.body = nn.Sequential(*layers)
        self.shortcut = (nn.Identity() if stride == 1 and cin == cout else
                         nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


def _separable(channels: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, kernel, stride, kernel // 2, groups=channels,
                                              bias=False),
                         nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels))


class _Cell(nn.Module):
    """Four blocks summing two operations each (separable convolutions, pooling, identity),
    concatenated and projected back to ``channels``: a NASNet cell's operators and data flow."""

    def __init__(self, channels: int, stride: int) -> None:
        super().__init__()
        c = channels
        pool = {"avg": nn.AvgPool2d(3, stride, 1, count_include_pad=False), "max": nn.MaxPool2d(3, stride, 1)}
        self.pairs = nn.ModuleList([
            nn.ModuleList([_separable(c, 3, stride), _separable(c, 5, stride)]),
            nn.ModuleList([pool["avg"], _separable(c, 7, stride)]),
            nn.ModuleList([pool["max"], _separable(c, 3, stride)]),
            nn.ModuleList([_separable(c, 5, stride), pool["avg"]]),
        ])
        self.project = nn.Sequential(nn.ReLU(), nn.Conv2d(4 * c, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([a(x) + b(x) for a, b in self.pairs], dim=1))


def _network(stem: int, body: list[nn.Module], width: int, in_channels: int, classes: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(in_channels, stem, 3, 1, 1, bias=False), *_bn_act(stem), *body,
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, classes))


def reference_networks(in_channels: int = 1, classes: int = 10) -> dict[str, nn.Module]:
    """The reference networks by name, two sizes per family, for 28x28 inputs (a few tens to a
    few hundred milliseconds per training step of 64 on one CPU core)."""
    ir = _InvertedResidual
    return {
        "inverted-residual-s": _network(8, [ir(8, 8, 3, 1, 1), ir(8, 16, 5, 2, 3), ir(16, 16, 3, 1, 3),
                                            ir(16, 24, 7, 2, 3)], 24, in_channels, classes),
        "inverted-residual-m": _network(16, [ir(16, 16, 3, 1, 1), ir(16, 24, 5, 2, 6), ir(24, 24, 5, 1, 6),
                                             ir(24, 40, 3, 2, 6), ir(40, 40, 7, 1, 6), ir(40, 64, 3, 1, 6)],
                                        64, in_channels, classes),
        "basic-residual": _network(16, [_Residual(16, 16, 1, False), _Residual(16, 32, 2, False),
                                        _Residual(32, 64, 2, False), _Residual(64, 64, 1, False)],
                                   64, in_channels, classes),
        "bottleneck-residual": _network(32, [_Residual(32, 16, 2, True), _Residual(64, 32, 2, True),
                                             _Residual(128, 32, 1, True)], 128, in_channels, classes),
        "cells-s": _network(12, [_Cell(12, 1), _Cell(12, 2), _Cell(12, 2)], 12, in_channels, classes),
        "cells-m": _network(24, [_Cell(24, 2), _Cell(24, 1), _Cell(24, 2)], 24, in_channels, classes),
    }


def training_step(model: nn.Module, dtype: torch.dtype, device: torch.device, batch: int = 64, copies: int = 8
                  ) -> Callable[[], object]:
    """One training step of ``model`` as the trainer runs it (channels-last, cross-entropy
    with label smoothing, SGD with Nesterov momentum and a one-cycle schedule), in ``dtype``,
    cycling through ``copies`` batches of random images."""
    model = model.to(device=device, dtype=dtype, memory_format=torch.channels_last).train()
    batches = [torch.randn(batch, *INPUT_SHAPE, device=device, dtype=dtype).contiguous(
        memory_format=torch.channels_last) for _ in range(copies)]
    labels = torch.randint(0, 10, (batch,), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.01, total_steps=10**6)
    turn = itertools.cycle(batches)

    def step() -> None:
        loss = F.cross_entropy(model(next(turn)), labels, label_smoothing=0.1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    return step
