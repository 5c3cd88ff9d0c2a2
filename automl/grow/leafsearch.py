"""A new branch's architecture comes from a short search: what makes growth a *search* mode.

The engine (NSGA-II over accuracy vs FLOPs) runs on the branch's classes alone, with a small
budget, over the tree's space bounded by the root (:class:`BoundedSpace`): each ordinal gene
at most the root's choice, nominal genes at the root's. A branch separates a few classes, so
it needs no more than the root; the bound keeps every candidate cheaper than the root without
the constraint repair a FLOPs limit needs (``max_flops`` may still be given). A bounded space
no larger than the budget is evaluated whole (a root of the smallest genes leaves one). Each
candidate the engine does not warm-start itself starts from a trained network of the tree - the
root (the default: trained longest, on the most classes) or the largest sibling branch - through
the space's Net2Net ``inherit`` (shrinking moves keep the most important channels; a fresh output
layer for its own classes), and trains ``warm_epochs``; a space that cannot make the move trains
the candidate from scratch. The node is the cheapest candidate of the front within
``tolerance`` of the best validation accuracy.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from automl.core.errors import CannotInherit
from automl.core.evaluation import Evaluation, EvaluationContext
from automl.core.genome import Genome
from automl.core.pareto import DEFAULT_OBJECTIVES
from automl.data import Dataset, batches_per_epoch
from automl.evaluate.cnn import CNNEvaluator
from automl.grow.nodes import enlarge_output
from automl.engine.search import Search
from automl.store.study import StudyStore
from automl.train.loop import TrainConfig
from search_spaces.base import ORDINAL, SearchSpace


@dataclass
class WarmStart:
    """A trained network of the same tree (the root or a branch): what a new branch's
    candidates inherit their weights from."""

    name: str
    trial: int | None
    genome: Genome
    state: dict[str, torch.Tensor]
    num_classes: int


@dataclass
class FoundNode:
    genome: Genome
    model: nn.Module
    accuracy: float
    flops: int
    seconds: float  # every candidate's training, summed
    effort: float  # weights updated x samples, summed over the candidates
    candidates: list[dict[str, Any]] = field(default_factory=list)


class BoundedSpace(SearchSpace):
    """``space`` with each ordinal gene's choices cut at ``steps_up`` steps above ``center``'s
    choice and each nominal gene fixed at ``center``'s; it builds, inherits and names genomes as
    ``space`` does."""

    def __init__(self, space: SearchSpace, center: Genome, steps_up: int = 0) -> None:
        self.inner, self.name, self.description = space, space.name, f"{space.name} around a root"
        kinds = space.gene_kinds()
        self._genes = {}
        for gene, choices in space.genes().items():
            at = choices.index(center[gene])
            self._genes[gene] = list(choices[:at + 1 + steps_up]) if kinds[gene] == ORDINAL else [center[gene]]

    def genes(self) -> dict[str, list[Any]]:
        return self._genes

    def gene_kinds(self) -> dict[str, str]:
        return self.inner.gene_kinds()

    def make(self, values):
        return self.inner.make(values)

    def build(self, genome: Genome, in_shape, num_classes: int) -> nn.Module:
        return self.inner.build(genome, in_shape, num_classes)

    def inherit(self, *args: Any, **kwargs: Any):
        return self.inner.inherit(*args, **kwargs)

    def format(self, genome: Genome) -> str:
        return self.inner.format(genome)

    def parse(self, text: str) -> Genome:
        return self.inner.parse(text)


class WarmStartEvaluator(CNNEvaluator):
    """The CNN evaluator, warm-starting from a node of the tree where the engine offers no parent;
    it also records the samples each candidate trained on (for the training effort)."""

    def __init__(self, *args: Any, warm_from: WarmStart | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.warm_from = warm_from

    def warm_start(self, genome: Genome, context: EvaluationContext | None, seed: int):
        model, attrs = super().warm_start(genome, context, seed)
        if model is not None or self.warm_from is None or self.warm_epochs is None:
            return model, attrs
        parent = self.space.build(self.warm_from.genome, self.data.input_shape, self.warm_from.num_classes)
        parent.load_state_dict(self.warm_from.state)
        enlarge_output(parent, [None] * self.data.num_classes, seed)  # its classes are not ours
        try:
            model, moves = self.space.inherit(parent, self.warm_from.genome, genome, self.data.input_shape,
                                              self.data.num_classes, torch.Generator().manual_seed(seed))
        except CannotInherit as why:
            return None, {**attrs, "scratch_reason": f"not warm-started from node {self.warm_from.name}: {why}"}
        return model, {"warm_start_from_node": self.warm_from.name, "warm_start_from_trial": self.warm_from.trial,
                       "transforms": moves}

    def __call__(self, genome: Genome, context: EvaluationContext | None = None) -> Evaluation:
        evaluation = super().__call__(genome, context)
        steps = round(evaluation.attrs["epochs"] * batches_per_epoch(self.data.train, self.config.batch_size))
        evaluation.attrs["samples"] = steps * self.config.batch_size
        return evaluation


def search_node(space: SearchSpace, data: Dataset, config: TrainConfig, *, budget: int, warm_epochs: float,
                max_flops: float | None, warm_from: WarmStart | None, seed: int, device: torch.device,
                tolerance: float = 0.01) -> FoundNode:
    """Search a branch's architecture on ``data`` (the branch's classes) over ``space`` (bound it
    with :class:`BoundedSpace`); return the chosen node."""
    with tempfile.TemporaryDirectory(prefix="automl-grow-") as tmp:
        store = StudyStore.create("branch-search", "memory", DEFAULT_OBJECTIVES, {"space": space.name},
                                  artifacts=Path(tmp))
        evaluator = WarmStartEvaluator(space, data, config, seed=seed, device=device, warm_epochs=warm_epochs,
                                       warm_from=warm_from, predict_seconds=False)
        whole = space.size() <= budget  # evaluate every genome (random order, no repeats)
        search = Search(space, evaluator, store, budget=min(budget, space.size()), seed=seed,
                        strategy="random" if whole else "nsga2", population=max(2, budget // 2),
                        violation=evaluator.violation(max_flops, None),
                        known=lambda genome: {"flops": evaluator.cost(genome)[0]})
        result = search.run()
        done = [c for c in result.candidates if c.values is not None and c.trial is not None]
        if not done:
            raise RuntimeError("every candidate of the branch search failed")
        best = max(c.values["accuracy"] for c in result.front)
        chosen = min((c for c in result.front if c.values["accuracy"] >= best - tolerance),
                     key=lambda c: (c.values["flops"], -c.values["accuracy"]))
        trial = store.study.trials[chosen.trial]
        model = evaluator.build(chosen.genome)
        model.load_state_dict(store.download_weights(trial))
    candidates = [{"genome": c.attrs.get("genome"), "accuracy": c.values["accuracy"], "mflops": c.attrs.get("mflops"),
                   "seconds": c.attrs.get("seconds"), "samples": c.attrs.get("samples"),
                   "warm_start": c.attrs.get("warm_start_from_node") or c.attrs.get("warm_start_from"),
                   "chosen": c is chosen} for c in done]
    return FoundNode(chosen.genome, model, chosen.values["accuracy"], int(chosen.values["flops"]),
                     seconds=sum(float(c.attrs.get("seconds", 0.0)) for c in done),
                     effort=sum(float(c.attrs["params"]) * float(c.attrs["samples"]) for c in done),
                     candidates=candidates)

