"""What ``automl spaces show`` prints: a space's genes, size and presets, and a genome's cost."""

from __future__ import annotations

import re

from typing import Any

from automl.core.errors import AutomlError
from automl.core.genome import Genome
from search_spaces.base import SearchSpace


def read_genome(space: SearchSpace, text: str) -> Genome:
    """A genome string of ``space`` or the name of one of its presets."""
    return space.preset(text) if text.strip() in space.presets() else space.parse(text)


def parse_shape(text: str, option: str = "--input") -> tuple[int, int, int]:
    """``C,H,W`` or ``CxHxW`` -> (C, H, W): every command takes either spelling."""
    parts = [p.strip() for p in re.split(r"[,xX]", text)]
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise AutomlError(f"{option} {text!r} must read C,H,W (or CxHxW) with positive integers, e.g. 3,224,224")
    return int(parts[0]), int(parts[1]), int(parts[2])


def describe(space: SearchSpace, genome_text: str | None = None, in_shape: tuple[int, int, int] = (1, 28, 28),
             num_classes: int = 10) -> dict[str, Any]:
    """Genes (choices, kind, and per-choice cost for nominal genes), size, presets; for a
    genome also its string, forward FLOPs and parameters at ``in_shape``."""
    kinds = space.gene_kinds()
    genes = []
    for gene, choices in space.genes().items():
        row: dict[str, Any] = {"gene": gene, "kind": kinds[gene], "choices": list(choices)}
        if kinds[gene] == "nominal":
            row["costs"] = space.choice_costs(gene)
        genes.append(row)
    result: dict[str, Any] = {"space": space.name, "description": space.description, "size": space.size(),
                              "genes": genes, "presets": space.presets()}
    if genome_text is not None:
        if num_classes < 1:
            raise AutomlError(f"--classes must be at least 1, got {num_classes}")
        from automl.nn.flops import model_cost

        genome = read_genome(space, genome_text)
        # counted on the meta device: any input size costs no memory (and big ones no minutes)
        flops, params = model_cost(lambda: space.build(genome, in_shape, num_classes), in_shape)
        result["genome"] = {"string": space.format(genome), "input": list(in_shape), "classes": num_classes,
                            "flops": flops, "mflops": flops / 1e6, "params": params}
    return result
