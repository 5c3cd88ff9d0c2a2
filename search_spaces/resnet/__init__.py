"""``resnet``: four stages of basic or bottleneck residual blocks (torchvision's layout).

Genes: ``block`` (basic or bottleneck; nominal), ``stem`` (stem width), ``kernel`` (of the
blocks' spatial convolutions) and per stage ``s{1..4}_depth`` and ``s{1..4}_width`` (the
stage's planes; a bottleneck stage carries 4x as many channels). Presets ``resnet18``,
``resnet34`` and ``resnet50`` build torchvision's models exactly (same layers, parameters and
FLOPs). Genome string::

    basic-stem64-k3-d2.2.2.2-w64.128.256.512
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import TYPE_CHECKING, Any

from automl.core.errors import InvalidGenomeError
from automl.core.genome import Genome
from search_spaces.base import NOMINAL, ORDINAL, SearchSpace

if TYPE_CHECKING:
    import torch
    from torch import nn

STAGES = 4
BLOCKS = ["basic", "bottleneck"]
STEMS = [16, 32, 64]
KERNELS = [3, 5]
DEPTHS = [1, 2, 3, 4, 6]
WIDTHS = [[16, 32, 48, 64], [32, 64, 96, 128], [64, 128, 192, 256], [128, 256, 384, 512]]
# multiply-adds per pixel of a middle block of the first stage at 64 planes (torchvision's):
# basic 2 x 3x3 x 64 x 64, bottleneck 256->64 + 3x3 64->64 + 64->256
BLOCK_COSTS = {"basic": 2 * 9 * 64 * 64, "bottleneck": 256 * 64 + 9 * 64 * 64 + 64 * 256}
PRESETS = {
    "resnet18": "basic-stem64-k3-d2.2.2.2-w64.128.256.512",
    "resnet34": "basic-stem64-k3-d3.4.6.3-w64.128.256.512",
    "resnet50": "bottleneck-stem64-k3-d3.4.6.3-w64.128.256.512",
}
_GENOME = re.compile(r"^(\w+)-stem(\d+)-k(\d+)-d([\d.]+)-w([\d.]+)$")


class ResNetSpace(SearchSpace):
    name = "resnet"
    description = "ResNet stages of basic or bottleneck blocks (depth, width per stage; stem, kernel)"

    @cached_property
    def _genes(self) -> dict[str, list[Any]]:
        genes: dict[str, list[Any]] = {"block": list(BLOCKS), "stem": list(STEMS), "kernel": list(KERNELS)}
        for s in range(1, STAGES + 1):
            genes[f"s{s}_depth"] = list(DEPTHS)
            genes[f"s{s}_width"] = list(WIDTHS[s - 1])
        return genes

    def genes(self) -> dict[str, list[Any]]:
        return self._genes

    def gene_kinds(self) -> dict[str, str]:
        return {gene: NOMINAL if gene == "block" else ORDINAL for gene in self._genes}

    def choice_costs(self, gene: str) -> list[float]:
        if gene == "block":
            return [float(BLOCK_COSTS[b]) for b in BLOCKS]
        return super().choice_costs(gene)

    def presets(self) -> dict[str, str]:
        return dict(PRESETS)

    def build(self, genome: Genome, in_shape: tuple[int, int, int], num_classes: int) -> "nn.Module":
        from search_spaces.resnet.model import build_resnet

        self.validate(genome)
        return build_resnet(genome["block"], genome["stem"], genome["kernel"],
                            [genome[f"s{s}_depth"] for s in range(1, STAGES + 1)],
                            [genome[f"s{s}_width"] for s in range(1, STAGES + 1)], in_shape, num_classes)

    def inherit(self, parent: "nn.Module", parent_genome: Genome, child_genome: Genome,
                in_shape: tuple[int, int, int], num_classes: int, generator: "torch.Generator | None" = None,
                noise: float = 0.0) -> tuple["nn.Module", list[str]]:
        """Wider stem and stages, deeper stages and larger kernels keep the function (see the
        inherit module); a change of block type raises CannotInherit."""
        from search_spaces.resnet.inherit import inherit

        self.validate(parent_genome)
        child = self.build(child_genome, in_shape, num_classes)
        return child, inherit(child, parent, parent_genome, child_genome, generator, noise)

    def format(self, genome: Genome) -> str:
        depths = ".".join(str(genome[f"s{s}_depth"]) for s in range(1, STAGES + 1))
        widths = ".".join(str(genome[f"s{s}_width"]) for s in range(1, STAGES + 1))
        return f"{genome['block']}-stem{genome['stem']}-k{genome['kernel']}-d{depths}-w{widths}"

    def parse(self, text: str) -> Genome:
        """The genome string, a preset name (``resnet50``) or the generic gene=value form."""
        text = PRESETS.get(text.strip(), text.strip())
        if "=" in text:
            return super().parse(text)
        match = _GENOME.match(text)
        if not match:
            raise InvalidGenomeError(f"resnet genome {text!r} must read BLOCK-stemW-kK-dD.D.D.D-wW.W.W.W")
        block, stem, kernel, depths, widths = match.groups()
        depths_, widths_ = depths.split("."), widths.split(".")
        if len(depths_) != STAGES or len(widths_) != STAGES or not all(map(str.isdigit, depths_ + widths_)):
            raise InvalidGenomeError(f"resnet genome {text!r} needs {STAGES} depths and {STAGES} widths")
        values: dict[str, Any] = {"block": block, "stem": int(stem), "kernel": int(kernel)}
        for s in range(1, STAGES + 1):
            values[f"s{s}_depth"], values[f"s{s}_width"] = int(depths_[s - 1]), int(widths_[s - 1])
        return self.make(values)
