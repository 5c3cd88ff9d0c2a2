"""``mobile``: MobileNetV2-style networks of inverted-residual stages.

The network is a small table, as in torchvision's ``mobilenetv2.py``: a stem convolution,
five stages of inverted-residual blocks (expand 1x1 -> depthwise kxk -> project 1x1), a 1x1
head convolution, global pooling and a classifier. The first block of a stage changes width
and resolution and has no skip connection; the others add their input back. Unlike
MobileNetV2, a block with expansion 1 keeps its expand convolution: that makes every growth
move between genomes function-preserving (see :meth:`MobileSpace.inherit`).
Each stage has four genes - depth (blocks), expansion ratio, kernel size and width - and the
stem and head widths are genes too, plus one global ``norm`` gene: ``bn`` (every convolution
followed by BatchNorm, the MobileNetV2 recipe) or ``none`` (convolutions with a bias and no
normalisation, for normalisation-free methods such as a standardization loss):
4 * 3 * 144**5 * 2, about 1.4e12 architectures.

Strides adapt to the input: the stem downsamples only inputs of 64 pixels or more, and
stages 2-5 each halve the feature map while it stays at least 4 pixels wide. So 28x28 runs
its stages at 28-14-7-4-4, 32x32 at 32-16-8-4-4 and 96x96 at 48-24-12-6-6.

Genome string (timm-style, round-trips through :meth:`MobileSpace.parse`)::

    stem16-ir_r1_k3_e1_c16-ir_r2_k3_e6_c24-ir_r2_k5_e6_c32-ir_r3_k3_e6_c64-ir_r1_k3_e6_c96-head256

A genome without normalisation ends in ``-nonorm``; strings without that token mean ``bn``,
so strings (and Optuna params without a ``norm`` entry) written before the gene existed still
parse to the same networks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cached_property
from typing import Any

import torch
from torch import Tensor, nn

from automl.nn import net2net
from automl.core.errors import CannotInherit, InvalidGenomeError
from automl.core.genome import Genome
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
NORMS = ["bn", "none"]
NO_NORM_TOKEN = "nonorm"
MIN_FEATURE_SIZE = 4
_BLOCK = re.compile(r"^ir_r(\d+)_k(\d+)_e(\d+)_c(\d+)$")


def conv_bn_act(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1,
                act: bool = True, norm: bool = True) -> nn.Sequential:
    """Convolution (no bias) -> BatchNorm -> optional ReLU6; without ``norm``, a convolution
    with a bias -> optional ReLU6 (index 0 is always the convolution)."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(c_out))
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: expand 1x1, depthwise kxk, linear project 1x1, optional skip."""

    def __init__(self, c_in: int, c_out: int, stride: int, expansion: int, kernel: int,
                 residual: bool, norm: bool = True) -> None:
        super().__init__()
        hidden = c_in * expansion
        if residual and (stride != 1 or c_in != c_out):
            raise ValueError("a residual block needs stride 1 and equal input and output widths")
        self.use_residual = residual
        self.expand = conv_bn_act(c_in, hidden, 1, norm=norm)
        self.depthwise = conv_bn_act(hidden, hidden, kernel, stride, groups=hidden, norm=norm)
        self.project = conv_bn_act(hidden, c_out, 1, act=False, norm=norm)

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


def norm_of(genome: Genome) -> str:
    """The genome's normalisation: its ``norm`` gene, ``bn`` where the space has none."""
    return genome.get("norm", "bn")


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
    """``mobile``: every network has BatchNorm (no ``norm`` gene, as before the gene existed,
    so genome keys and studies stay valid). ``mobile-norm`` (:class:`MobileNormSpace`) adds
    the ``norm`` gene for normalisation-free methods."""

    name = "mobile"
    description = "MobileNetV2-like inverted-residual stages (depth, expansion, kernel, width)"
    norms: tuple[str, ...] = ("bn",)

    @cached_property
    def _genes(self) -> dict[str, list[Any]]:
        genes: dict[str, list[Any]] = {"stem": list(STEM_WIDTHS)}
        for s in range(1, STAGES + 1):
            genes[f"s{s}_depth"] = list(DEPTHS)
            genes[f"s{s}_expand"] = list(EXPANSIONS)
            genes[f"s{s}_kernel"] = list(KERNELS)
            genes[f"s{s}_width"] = list(STAGE_WIDTHS[s - 1])
        genes["head"] = list(HEAD_WIDTHS)
        if len(self.norms) > 1:
            genes["norm"] = list(self.norms)
        return genes

    def genes(self) -> dict[str, list[Any]]:
        return self._genes

    def build(self, genome: Genome, in_shape: tuple[int, int, int], num_classes: int) -> MobileNet:
        self.validate(genome)
        channels, height, width = in_shape
        stem_stride, strides = stage_strides(height, width)
        norm = norm_of(genome) == "bn"
        stem = conv_bn_act(channels, genome["stem"], 3, stem_stride, norm=norm)
        c_in = genome["stem"]
        stages = []
        for s, stride in enumerate(strides, start=1):
            c_out = genome[f"s{s}_width"]
            blocks = []
            for b in range(genome[f"s{s}_depth"]):
                blocks.append(InvertedResidual(c_in, c_out, stride if b == 0 else 1,
                                               genome[f"s{s}_expand"], genome[f"s{s}_kernel"], residual=b > 0,
                                               norm=norm))
                c_in = c_out
            stages.append(nn.Sequential(*blocks))
        head = conv_bn_act(c_in, genome["head"], 1, norm=norm)
        model = MobileNet(stem, stages, head, genome["head"], num_classes)
        if not norm:
            _init_without_norm(model)
        return model

    def inherit(self, parent: MobileNet, parent_genome: Genome, child_genome: Genome,
                in_shape: tuple[int, int, int], num_classes: int, generator: torch.Generator | None = None,
                noise: float = 0.0) -> tuple[MobileNet, list[str]]:
        """The child's model with weights inherited from the trained parent (Net2Net).

        Growing moves - wider stem, stages, expansion or head, more blocks, larger kernels -
        keep the parent's function exactly (with ``noise`` 0); shrinking moves keep the most
        important channels, blocks and centre taps. Returns the model and the moves applied.
        Parent and child must share the ``norm`` gene: no weight map turns a network with
        BatchNorm into one without (or back) in both train and eval mode, so a change of
        ``norm`` raises CannotInherit and the evaluator trains the child from scratch.
        """
        self.validate(parent_genome)
        if norm_of(parent_genome) != norm_of(child_genome):
            raise CannotInherit(
                f"cannot inherit across a norm change ({norm_of(parent_genome)} -> {norm_of(child_genome)})")
        child = self.build(child_genome, in_shape, num_classes)
        moves: list[str] = []

        def note(what: str, old: int, new: int) -> None:
            if new > old:
                moves.append(f"{what} widen {old}->{new}")
            elif new < old:
                moves.append(net2net.lossy(f"{what} shrink {old}->{new}"))

        with torch.no_grad():
            stem = net2net.channel_map(parent_genome["stem"], child_genome["stem"],
                                       net2net.importance([_scale(parent.stem)]), generator)
            note("stem", parent_genome["stem"], child_genome["stem"])
            net2net.copy_conv(child.stem[0], parent.stem[0], stem, net2net.identity_map(in_shape[0]), noise, generator)
            _copy_norm(child.stem, parent.stem, stem)
            incoming = stem
            for s, (old_stage, new_stage) in enumerate(zip(parent.stages, child.stages), start=1):
                width = net2net.channel_map(
                    parent_genome[f"s{s}_width"], child_genome[f"s{s}_width"],
                    net2net.importance(_scale(block.project) for block in old_stage), generator)
                note(f"s{s} width", parent_genome[f"s{s}_width"], child_genome[f"s{s}_width"])
                note(f"s{s} expand", parent_genome[f"s{s}_expand"], child_genome[f"s{s}_expand"])
                old_kernel, new_kernel = parent_genome[f"s{s}_kernel"], child_genome[f"s{s}_kernel"]
                if new_kernel != old_kernel:
                    move = f"s{s} kernel {old_kernel}->{new_kernel}"
                    moves.append(move if new_kernel > old_kernel else net2net.lossy(move))
                sources = _block_sources(old_stage, len(new_stage))
                if len(new_stage) > len(old_stage):
                    moves.append(f"s{s} deepen {len(old_stage)}->{len(new_stage)}")
                elif len(new_stage) < len(old_stage):
                    moves.append(net2net.lossy(f"s{s} drop blocks {len(old_stage)}->{len(new_stage)}"))
                for b, (source, block) in enumerate(zip(sources, new_stage)):
                    if source is None:  # Net2DeeperNet: a new block that adds exactly zero
                        net2net.make_identity(_scale(block.project))
                        continue
                    _inherit_block(block, old_stage[source], incoming if b == 0 else width, width, generator, noise)
                incoming = width
            head = net2net.channel_map(parent_genome["head"], child_genome["head"],
                                       net2net.importance([_scale(parent.head)]), generator)
            note("head", parent_genome["head"], child_genome["head"])
            net2net.copy_conv(child.head[0], parent.head[0], head, incoming, noise, generator)
            _copy_norm(child.head, parent.head, head)
            net2net.copy_linear(child.classifier, parent.classifier, head)
        return child, moves

    def format(self, genome: Genome) -> str:
        parts = [f"stem{genome['stem']}"]
        for s in range(1, STAGES + 1):
            parts.append(f"ir_r{genome[f's{s}_depth']}_k{genome[f's{s}_kernel']}"
                         f"_e{genome[f's{s}_expand']}_c{genome[f's{s}_width']}")
        parts.append(f"head{genome['head']}")
        if norm_of(genome) == "none":
            parts.append(NO_NORM_TOKEN)
        return "-".join(parts)

    def make(self, values: Mapping[str, Any]) -> Genome:
        """As :meth:`SearchSpace.make`; in ``mobile-norm`` a missing ``norm`` means ``bn``
        (genomes of ``mobile`` read as the same networks), in ``mobile`` only ``bn`` exists."""
        values = dict(values)
        norm = values.pop("norm", "bn")
        if "norm" in self.genes():
            values["norm"] = norm
        elif norm != "bn":
            raise InvalidGenomeError(f"gene 'norm' = {norm!r}: space {self.name!r} has BatchNorm only "
                                     f"(search 'mobile-norm' for networks without normalisation)")
        return super().make(values)

    def parse(self, text: str) -> Genome:
        if "=" in text:  # the generic gene=value form is accepted too
            return super().parse(text)
        parts = text.strip().split("-")
        norm = "bn"
        if parts and parts[-1] == NO_NORM_TOKEN:
            norm, parts = "none", parts[:-1]
        if len(parts) != STAGES + 2 or not parts[0].startswith("stem") or not parts[-1].startswith("head"):
            raise InvalidGenomeError(
                f"mobile genome {text!r} must read stemW-ir_rD_kK_eE_cW (x{STAGES})-headW[-{NO_NORM_TOKEN}]"
            )
        values: dict[str, Any] = {"stem": _int(parts[0][4:], "stem"), "head": _int(parts[-1][4:], "head"),
                                  "norm": norm}
        for s, block in enumerate(parts[1:-1], start=1):
            match = _BLOCK.match(block)
            if not match:
                raise InvalidGenomeError(f"stage {s} of genome {text!r}: {block!r} is not ir_rD_kK_eE_cW")
            depth, kernel, expand, width = map(int, match.groups())
            values.update({f"s{s}_depth": depth, f"s{s}_kernel": kernel,
                           f"s{s}_expand": expand, f"s{s}_width": width})
        return self.make(values)


@torch.no_grad()
def _init_without_norm(model: MobileNet) -> None:
    """Signal-preserving initialisation for a network without BatchNorm.

    PyTorch's default convolution init shrinks activations by about sqrt(3) per layer; with
    nothing to re-normalise them the signal all but vanishes after a dozen layers and the net
    hardly learns. Here convolutions followed by ReLU6 get He-normal weights (fan-in), linear
    projections unit gain, biases zero, and the projection of every residual block starts at
    zero, so each block starts as the identity (as in Fixup / SkipInit) and depth does not
    compound the variance.
    """
    for layer in (model.stem, model.head, *(block.expand for stage in model.stages for block in stage),
                  *(block.depthwise for stage in model.stages for block in stage)):
        nn.init.kaiming_normal_(layer[0].weight, nonlinearity="relu")
        nn.init.zeros_(layer[0].bias)
    for stage in model.stages:
        for block in stage:
            conv = block.project[0]
            if block.use_residual:
                nn.init.zeros_(conv.weight)
            else:
                nn.init.kaiming_normal_(conv.weight, nonlinearity="linear")
            nn.init.zeros_(conv.bias)


def _block_sources(stage: nn.Sequential, depth: int) -> list[int | None]:
    """Which parent block each child block inherits from (None: a new identity block).

    Deeper: all parent blocks, then identities. Shallower: the first block (it changes width
    and stride) and the others whose last BatchNorm scales are largest, in their order.
    """
    if depth >= len(stage):
        return [*range(len(stage)), *([None] * (depth - len(stage)))]
    scores = [float(_scale(stage[b].project).weight.abs().mean()) for b in range(1, len(stage))]
    keep = sorted(sorted(range(1, len(stage)), key=lambda b: -scores[b - 1])[:depth - 1])
    return [0, *keep]


def _inherit_block(child: InvertedResidual, parent: InvertedResidual, incoming: net2net.ChannelMap,
                   outgoing: net2net.ChannelMap, generator: torch.Generator | None, noise: float) -> None:
    hidden = net2net.channel_map(parent.expand[0].out_channels, child.expand[0].out_channels,
                                 net2net.importance([_scale(parent.expand), _scale(parent.depthwise)]), generator)
    net2net.copy_conv(child.expand[0], parent.expand[0], hidden, incoming, noise, generator)
    _copy_norm(child.expand, parent.expand, hidden)
    net2net.copy_conv(child.depthwise[0], parent.depthwise[0], hidden, hidden, noise, generator)
    _copy_norm(child.depthwise, parent.depthwise, hidden)
    net2net.copy_conv(child.project[0], parent.project[0], outgoing, hidden, noise, generator)
    _copy_norm(child.project, parent.project, outgoing)


def _scale(layer: nn.Sequential) -> nn.Module:
    """The module that scales a conv_bn_act's output channels: its BatchNorm, or (without
    normalisation) the convolution itself - what channel importance and identity blocks use."""
    return layer[1] if len(layer) > 1 and isinstance(layer[1], nn.BatchNorm2d) else layer[0]


def _copy_norm(child: nn.Sequential, parent: nn.Sequential, channels: net2net.ChannelMap) -> None:
    if len(child) > 1 and isinstance(child[1], nn.BatchNorm2d):
        net2net.copy_batchnorm(child[1], parent[1], channels)


def _int(text: str, gene: str) -> int:
    if not text.isdigit():
        raise InvalidGenomeError(f"gene {gene!r} cannot be {text!r}; it is a channel count")
    return int(text)


class MobileNormSpace(MobileSpace):
    """``mobile`` plus a global ``norm`` gene: BatchNorm or no normalisation (convolutions
    with a bias). Networks without normalisation learn poorly with the default recipe unless
    a method such as ``--accelerate stdloss`` standardises them: this space is for those."""

    name = "mobile-norm"
    description = "mobile plus a norm gene: BatchNorm or none (for normalisation-free methods such as stdloss)"
    norms = tuple(NORMS)
