"""The SearchSpace contract every space implements (see DESIGN.md).

Genes have a kind. An **ordinal** gene lists its choices from small to large (widths, depths,
kernel sizes): constraint repair steps it down, and Net2Net growth follows the order. A
**nominal** gene names operation types with no order (a separable convolution or a pooling):
repair swaps in choices by their cost (:meth:`SearchSpace.choice_costs`), never by list
position. This module imports no torch, so searching a plain dict space needs none.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from automl.core.errors import CannotInherit, InvalidGenomeError
from automl.core.genome import Genome

if TYPE_CHECKING:  # torch is imported by the spaces that build models, not by the contract
    from torch import nn


ORDINAL = "ordinal"
NOMINAL = "nominal"
GENE_KINDS = (ORDINAL, NOMINAL)


class SearchSpace(ABC):
    """A finite, categorical space of architectures.

    Subclasses set ``name`` and ``description``, return their genes from :meth:`genes` and
    build models in :meth:`build`; spaces with nominal genes say so in :meth:`gene_kinds`.
    Sampling, validation, integer encoding (for pymoo) and the default string form are
    shared here.
    """

    name: str = ""
    description: str = ""

    @abstractmethod
    def genes(self) -> dict[str, list[Any]]:
        """Gene name -> its legal values, in a fixed order (small to large for ordinal genes)."""

    def gene_kinds(self) -> dict[str, str]:
        """Gene name -> ``"ordinal"`` or ``"nominal"``; every gene is ordinal unless a space says
        otherwise."""
        return {gene: ORDINAL for gene in self.genes()}

    def choice_costs(self, gene: str) -> list[float]:
        """A relative cost per choice of ``gene``, what constraint repair lowers. Ordinal genes
        cost their position; nominal genes should override this with their operations' cost."""
        return [float(i) for i in range(len(self.genes()[gene]))]

    def build(self, genome: Genome, in_shape: tuple[int, int, int], num_classes: int) -> "nn.Module":
        """The model for ``genome`` on inputs of shape (C, H, W). Spaces that only describe
        genomes (a dict space for the Python API) build nothing."""
        raise InvalidGenomeError(f"space {self.name!r} describes genomes but builds no models")

    def inherit(self, parent: "nn.Module", parent_genome: Genome, child_genome: Genome,
                in_shape: tuple[int, int, int], num_classes: int, generator=None,
                noise: float = 0.0) -> tuple["nn.Module", list[str]]:
        """The child's model with weights inherited from a trained parent (Net2Net), and the
        moves applied. Contract: when every gene of the child sits at the same or a later
        position in its choice list than the parent's (choices are ordered small to large),
        the child computes exactly what the parent computes. A space that cannot make a move
        raises :class:`automl.core.errors.CannotInherit`; the evaluator then trains the child
        from scratch and records why."""
        raise CannotInherit(f"space {self.name!r} cannot warm-start children")

    def presets(self) -> dict[str, str]:
        """Named genomes (published architectures): name -> genome string. Wherever a genome
        string of this space is accepted, a preset name is too (see :meth:`preset`)."""
        return {}

    # -- shared behaviour -------------------------------------------------------------------

    @property
    def gene_names(self) -> list[str]:
        return list(self.genes())

    def size(self) -> int:
        """Number of distinct genomes."""
        return math.prod(len(choices) for choices in self.genes().values())

    def sample(self, rng: np.random.Generator) -> Genome:
        """A uniformly random genome."""
        genes = self.genes()
        return Genome(self.name, tuple((g, c[int(rng.integers(len(c)))]) for g, c in genes.items()))

    def make(self, values: Mapping[str, Any]) -> Genome:
        """A validated genome from a gene -> value mapping (all genes required)."""
        genes = self.genes()
        missing = [g for g in genes if g not in values]
        if missing:
            raise InvalidGenomeError(f"space {self.name!r}: genome misses genes {missing}")
        genome = Genome.from_dict(self.name, values, list(genes))
        unknown = sorted(set(values) - set(genes))
        if unknown:
            raise InvalidGenomeError(f"space {self.name!r} has no gene {unknown[0]!r}")
        self.validate(genome)
        return genome

    def validate(self, genome: Genome) -> None:
        """Raise a user-facing error naming the first bad gene and value."""
        genes = self.genes()
        if genome.space != self.name:
            raise InvalidGenomeError(f"genome belongs to space {genome.space!r}, not {self.name!r}")
        for gene, value in genome.genes:
            if gene not in genes:
                raise InvalidGenomeError(f"space {self.name!r} has no gene {gene!r}")
            if value not in genes[gene]:
                raise InvalidGenomeError(
                    f"gene {gene!r} cannot be {value!r}; choices are {genes[gene]}"
                )
        if [g for g, _ in genome.genes] != list(genes):
            raise InvalidGenomeError(f"space {self.name!r}: genes must be exactly {list(genes)}")

    def encode(self, genome: Genome) -> np.ndarray:
        """Genome -> vector of choice indices (pymoo's integer representation)."""
        genes = self.genes()
        return np.array([genes[g].index(v) for g, v in genome.genes], dtype=int)

    def decode(self, x: Sequence[int]) -> Genome:
        """Vector of choice indices -> genome."""
        genes = self.genes()
        return Genome(self.name, tuple((g, c[int(i)]) for (g, c), i in zip(genes.items(), x)))

    def format(self, genome: Genome) -> str:
        """Human-readable canonical string; :meth:`parse` inverts it."""
        return ",".join(f"{g}={v}" for g, v in genome.genes)

    def parse(self, text: str) -> Genome:
        """Inverse of :meth:`format`; raises a user-facing error on malformed text."""
        genes = self.genes()
        values: dict[str, Any] = {}
        for part in filter(None, text.split(",")):
            name, sep, raw = part.partition("=")
            if not sep:
                raise InvalidGenomeError(f"genome part {part!r} is not gene=value")
            name = name.strip()
            if name not in genes:
                raise InvalidGenomeError(f"space {self.name!r} has no gene {name!r}")
            values[name] = self._choice_from_text(name, raw.strip())
        return self.make(values)

    def preset(self, name: str) -> Genome:
        """The genome of the preset ``name``; a user-facing error lists the known ones."""
        presets = self.presets()
        if name not in presets:
            known = ", ".join(sorted(presets)) or "none"
            raise InvalidGenomeError(f"space {self.name!r} has no preset {name!r} (presets: {known})")
        return self.parse(presets[name])

    def _choice_from_text(self, gene: str, raw: str) -> Any:
        for choice in self.genes()[gene]:
            if str(choice) == raw:
                return choice
        raise InvalidGenomeError(f"gene {gene!r} cannot be {raw!r}; choices are {self.genes()[gene]}")

    def smallest(self) -> Genome:
        """The cheapest genome: every ordinal gene at its first choice, every nominal gene at its
        cheapest (:meth:`choice_costs`). Constraint checks start here: if it breaks
        --max-flops/--max-params, nothing in the space meets them."""
        return Genome(self.name, tuple((gene, choices[int(np.argmin(self.choice_costs(gene)))])
                                       for gene, choices in self.genes().items()))

    def distance(self, a: Genome, b: Genome) -> int:
        """Number of genes that differ (Hamming distance)."""
        return sum(va != vb for (_, va), (_, vb) in zip(a.genes, b.genes))


class DictSpace(SearchSpace):
    """A space given as a plain mapping gene -> choices (for the Python API)."""

    def __init__(self, genes: Mapping[str, Sequence[Any]], name: str = "custom") -> None:
        if not genes:
            raise InvalidGenomeError("a search space needs at least one gene")
        for gene, choices in genes.items():
            if len(choices) == 0:
                raise InvalidGenomeError(f"gene {gene!r} has no choices")
            if len(set(map(str, choices))) != len(choices):
                raise InvalidGenomeError(f"gene {gene!r} has duplicate choices {list(choices)}")
        self.name = name
        self._genes = {str(g): list(c) for g, c in genes.items()}

    def genes(self) -> dict[str, list[Any]]:
        return self._genes
