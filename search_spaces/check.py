"""The contract check a user's space must pass before a search uses it.

Each rule is checked in order and the first broken one is reported as one line that names it,
so a mistake in a space file reads like any other user mistake (exit code 2), not a traceback
from deep inside a search.
"""

from __future__ import annotations

import numpy as np

from automl.core.errors import AutomlError
from search_spaces.base import GENE_KINDS, SearchSpace

CHECK_SHAPE = (1, 28, 28)
CHECK_CLASSES = 10
_PARAM_TYPES = (bool, int, float, str, type(None))  # what an Optuna categorical parameter holds


class ContractError(AutomlError):
    """A user's space breaks the SearchSpace contract."""


def check_space(space: SearchSpace, label: str | None = None) -> None:
    """Raise :class:`ContractError` naming the first rule ``space`` breaks."""
    label = label or repr(getattr(space, "name", "?"))

    def broken(rule: str) -> ContractError:
        return ContractError(f"space {label} breaks the SearchSpace contract: {rule}")

    if not isinstance(space.name, str) or not space.name or ":" in space.name:
        raise broken("`name` must be a non-empty string without ':'")
    genes = space.genes()
    if not isinstance(genes, dict) or not genes:
        raise broken("genes() must return a non-empty dict gene -> choices")
    for gene, choices in genes.items():
        _check_gene(gene, choices, broken)
    kinds = space.gene_kinds()
    if set(kinds) != set(genes) or any(kind not in GENE_KINDS for kind in kinds.values()):
        raise broken(f"gene_kinds() must give every gene one of {list(GENE_KINDS)}")
    for gene, choices in genes.items():
        costs = space.choice_costs(gene)
        if len(costs) != len(choices) or not all(isinstance(c, (int, float)) for c in costs):
            raise broken(f"choice_costs({gene!r}) must give one number per choice")
    genome = space.sample(np.random.default_rng(0))
    try:
        space.validate(genome)
        same = space.parse(space.format(genome)) == genome
    except AutomlError as error:
        raise broken(f"a sampled genome must validate and round-trip through format/parse ({error})") from None
    if not same:
        raise broken("parse(format(genome)) must give the genome back")
    _check_build(space, genome, broken)


def _check_gene(gene, choices, broken) -> None:
    if not isinstance(gene, str) or not gene:
        raise broken(f"gene names must be non-empty strings, got {gene!r}")
    if not isinstance(choices, list) or not choices:
        raise broken(f"gene {gene!r} must have a non-empty list of choices")
    if not all(isinstance(c, _PARAM_TYPES) for c in choices):
        raise broken(f"gene {gene!r}: choices must be str, int, float, bool or None (they are Optuna params)")
    if len({str(c) for c in choices}) != len(choices):
        raise broken(f"gene {gene!r}: choices must be unique as text, got {choices}")


def _check_build(space: SearchSpace, genome, broken) -> None:
    import torch
    from torch import nn

    try:
        model = space.build(genome, CHECK_SHAPE, CHECK_CLASSES)
    except AutomlError as error:
        raise broken(f"build() must build a model for a sampled genome ({error})") from None
    if not isinstance(model, nn.Module):
        raise broken(f"build() must return a torch.nn.Module, got {type(model).__name__}")
    with torch.no_grad():
        out = model.eval()(torch.zeros(2, *CHECK_SHAPE))
    if tuple(getattr(out, "shape", ())) != (2, CHECK_CLASSES):
        raise broken(f"build(genome, {CHECK_SHAPE}, {CHECK_CLASSES}) must map a (2, *shape) batch to "
                     f"(2, {CHECK_CLASSES}) logits, got {tuple(getattr(out, 'shape', ()))}")
