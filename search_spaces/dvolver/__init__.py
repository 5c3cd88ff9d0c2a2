"""``dvolver``: NASNet-style networks of normal and reduction cells, the space Dvolver searches.

Genes, notation and presets are in :mod:`search_spaces.dvolver.genotype`, the networks in
:mod:`search_spaces.dvolver.model`, Net2Net in :mod:`search_spaces.dvolver.inherit`.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from automl.core.genome import Genome
from search_spaces.base import NOMINAL, ORDINAL, SearchSpace
from search_spaces.dvolver import genotype
from search_spaces.dvolver.genotype import NO_CAT, PRESETS, op_cost

if TYPE_CHECKING:
    import torch
    from torch import nn


class DvolverSpace(SearchSpace):
    """``N`` and ``F`` (ordinal) and two cells of five blocks (inputs, operations: nominal)."""

    name = "dvolver"
    description = "NASNet cells as in Dvolver: 2 x 5 blocks (inputs, sep3/5/7, avg/max pool, id), N cells, F filters"

    @cached_property
    def _genes(self) -> dict[str, list[Any]]:
        return genotype.gene_choices()

    def genes(self) -> dict[str, list[Any]]:
        return self._genes

    def gene_kinds(self) -> dict[str, str]:
        return {gene: ORDINAL if gene in ("N", "F") else NOMINAL for gene in self._genes}

    def choice_costs(self, gene: str) -> list[float]:
        """Operations cost their multiply-adds per output value (:func:`genotype.op_cost`); an
        extra concatenated state costs one (it widens the next cell's input); inputs cost alike."""
        choices = self._genes[gene]
        if gene.endswith(("_op0", "_op1")):
            return [op_cost(op) for op in choices]
        if gene.endswith("_cat"):
            return [0.0 if c == NO_CAT else 1.0 for c in choices]
        if gene.endswith(("_in0", "_in1")):
            return [0.0] * len(choices)
        return super().choice_costs(gene)

    def presets(self) -> dict[str, str]:
        return dict(PRESETS)

    def build(self, genome: Genome, in_shape: tuple[int, int, int], num_classes: int) -> "nn.Module":
        from search_spaces.dvolver.model import build_nasnet

        self.validate(genome)
        return build_nasnet(genotype.cell_of(genome, "n"), genotype.cell_of(genome, "r"), genome["N"],
                            genome["F"], in_shape, num_classes)

    def inherit(self, parent: "nn.Module", parent_genome: Genome, child_genome: Genome,
                in_shape: tuple[int, int, int], num_classes: int, generator: "torch.Generator | None" = None,
                noise: float = 0.0) -> tuple["nn.Module", list[str]]:
        """More filters keep the function exactly; more cells and changed operations or inputs
        keep what matches and are labelled not function-preserving (see the inherit module)."""
        from search_spaces.dvolver.inherit import inherit

        self.validate(parent_genome)
        child = self.build(child_genome, in_shape, num_classes)
        moves = inherit(child, parent, parent_genome, child_genome, generator, noise)
        return child, moves

    def format(self, genome: Genome) -> str:
        return genotype.format_genotype(genome)

    def parse(self, text: str) -> Genome:
        """The readable notation, a preset name (``nasnet-a``) or the generic gene=value form."""
        text = text.strip()
        if text in PRESETS:
            text = PRESETS[text]
        if "=" in text:
            return super().parse(text)
        return self.make(genotype.parse_genotype(text))
