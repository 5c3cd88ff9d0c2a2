"""``mobile``: MobileNetV2-style networks of inverted-residual stages.

The network is a small table, as in torchvision's ``mobilenetv2.py``: a stem convolution,
five stages of inverted-residual blocks (expand 1x1 -> depthwise kxk -> project 1x1, with a
skip connection when shapes allow), a 1x1 head convolution, global pooling and a classifier.
Each stage has four genes - depth (blocks), expansion ratio, kernel size and width - and the
stem and head widths are genes too: 4 * 3 * 144**5, about 7e11 architectures.

Strides adapt to the input: the stem downsamples only inputs of 64 pixels or more, and
stages 2-5 each halve the feature map while it stays at least 4 pixels wide. So 28x28 runs
its stages at 28-14-7-4-4, 32x32 at 32-16-8-4-4 and 96x96 at 48-24-12-6-6.

Genome string (timm-style, round-trips through :meth:`MobileSpace.parse`)::

    stem16-ir_r1_k3_e1_c16-ir_r2_k3_e6_c24-ir_r2_k5_e6_c32-ir_r3_k3_e6_c64-ir_r1_k3_e6_c96-head256
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Any

from torch import Tensor, nn

from automl.errors import InvalidGenomeError
from automl.genome import Genome
from search_spaces.base import SearchSpace

STAGES = 5
DEPTHS = [1, 2, 3, 4]
EXPANSIONS = [1, 3, 6]
KERNELS = [3, 5, 7]
STAGE_WIDTHS = [
    [8, 12, 16, 24],
    [16, 24, 32, 40],
    [24, 32, 48, 64],
    [32, 48, 64, 96],
    [48, 64, 96, 128],
]
STEM_WIDTHS = [8, 16, 24, 32]
HEAD_WIDTHS = [128, 256, 512]
MIN_FEATURE_SIZE = 4
_BLOCK = re.compile(r"^ir_r(\d+)_k(\d+)_e(\d+)_c(\d+)$")


def conv_bn_act(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1,
                act: bool = True) -> nn.Sequential:
    """Convolution (no bias) -> BatchNorm -> optional ReLU6."""
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: expand 1x1 (skipped at ratio 1), depthwise kxk, linear project 1x1."""

    def __init__(self, c_in: int, c_out: int, stride: int, expansion: int, kernel: int) -> None:
        super().__init__()
        hidden = c_in * expansion
        self.use_residual = stride == 1 and c_in == c_out
        self.expand = conv_bn_act(c_in, hidden, 1) if expansion != 1 else nn.Identity()
        self.depthwise = conv_bn_act(hidden, hidden, kernel, stride, groups=hidden)
        self.project = conv_bn_act(hidden, c_out, 1, act=False)

    def forward(self, x: Tensor) -> Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.use_residual else out


class MobileNet(nn.Module):
    """Stem -> stages of inverted residuals -> head -> pool -> classifier."""

    def __init__(self, stem: nn.Module, stages: list[nn.Sequential], head: nn.Module,
                 head_width: int, num_classes: int) -> None:
        super().__init__()
        self.stem = stem
        self.stages = nn.ModuleList(stages)
        self.head = head
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(head_width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        x = self.pool(self.head(x)).flatten(1)
        return self.classifier(x)


def stage_strides(height: int, width: int) -> tuple[int, list[int]]:
    """Stem stride and per-stage strides for an input of the given size."""
    size = min(height, width)
    stem_stride = 2 if size >= 64 else 1
    size = -(-size // stem_stride)
    strides = [1]
    for _ in range(1, STAGES):
        halved = -(-size // 2)
        if halved >= MIN_FEATURE_SIZE:
            strides.append(2)
            size = halved
        else:
            strides.append(1)
    return stem_stride, strides


class MobileSpace(SearchSpace):
    name = "mobile"
    description = "MobileNetV2-like inverted-residual stages (depth, expansion, kernel, width)"

    @cached_property
    def _genes(self) -> dict[str, list[Any]]:
        genes: dict[str, list[Any]] = {"stem": list(STEM_WIDTHS)}
        for s in range(1, STAGES + 1):
            genes[f"s{s}_depth"] = list(DEPTHS)
            genes[f"s{s}_expand"] = list(EXPANSIONS)
            genes[f"s{s}_kernel"] = list(KERNELS)
            genes[f"s{s}_width"] = list(STAGE_WIDTHS[s - 1])
        genes["head"] = list(HEAD_WIDTHS)
        return genes

    def genes(self) -> dict[str, list[Any]]:
        return self._genes

    def build(self, genome: Genome, in_shape: tuple[int, int, int], num_classes: int) -> MobileNet:
        self.validate(genome)
        channels, height, width = in_shape
        stem_stride, strides = stage_strides(height, width)
        stem = conv_bn_act(channels, genome["stem"], 3, stem_stride)
        c_in = genome["stem"]
        stages = []
        for s, stride in enumerate(strides, start=1):
            c_out = genome[f"s{s}_width"]
            blocks = []
            for b in range(genome[f"s{s}_depth"]):
                blocks.append(InvertedResidual(c_in, c_out, stride if b == 0 else 1,
                                               genome[f"s{s}_expand"], genome[f"s{s}_kernel"]))
                c_in = c_out
            stages.append(nn.Sequential(*blocks))
        head = conv_bn_act(c_in, genome["head"], 1)
        return MobileNet(stem, stages, head, genome["head"], num_classes)

    def format(self, genome: Genome) -> str:
        parts = [f"stem{genome['stem']}"]
        for s in range(1, STAGES + 1):
            parts.append(f"ir_r{genome[f's{s}_depth']}_k{genome[f's{s}_kernel']}"
                         f"_e{genome[f's{s}_expand']}_c{genome[f's{s}_width']}")
        parts.append(f"head{genome['head']}")
        return "-".join(parts)

    def parse(self, text: str) -> Genome:
        if "=" in text:  # the generic gene=value form is accepted too
            return super().parse(text)
        parts = text.strip().split("-")
        if len(parts) != STAGES + 2 or not parts[0].startswith("stem") or not parts[-1].startswith("head"):
            raise InvalidGenomeError(
                f"mobile genome {text!r} must read stemW-ir_rD_kK_eE_cW (x{STAGES})-headW"
            )
        values: dict[str, Any] = {"stem": _int(parts[0][4:], "stem"), "head": _int(parts[-1][4:], "head")}
        for s, block in enumerate(parts[1:-1], start=1):
            match = _BLOCK.match(block)
            if not match:
                raise InvalidGenomeError(f"stage {s} of genome {text!r}: {block!r} is not ir_rD_kK_eE_cW")
            depth, kernel, expand, width = map(int, match.groups())
            values.update({f"s{s}_depth": depth, f"s{s}_kernel": kernel,
                           f"s{s}_expand": expand, f"s{s}_width": width})
        return self.make(values)


def _int(text: str, gene: str) -> int:
    if not text.isdigit():
        raise InvalidGenomeError(f"gene {gene!r} cannot be {text!r}; it is a channel count")
    return int(text)
