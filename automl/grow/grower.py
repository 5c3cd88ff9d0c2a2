"""Grow a Tree-CNN over a class-incremental stream: the root first, then one task at a time.

Task 1 uses the given root model when it was trained on exactly the first task's classes, and
otherwise trains its architecture on them (starting from its weights, with a fresh output
layer); each class is a leaf of the root. Every later task: the likelihood matrix of the new
classes (:func:`automl.grow.nodes.likelihood`), their placement (:mod:`automl.grow.placement`),
then only what changed is trained - the root's output layer (in closed form by default), each
branch that received classes (fine-tuned with an enlarged output layer) and each new branch (a
short search, :mod:`automl.grow.leafsearch`, its candidates warm-started from the root or from
the largest sibling branch). The rest of the tree is untouched.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from automl.core.errors import AutomlError
from automl.core.genome import Genome
from automl.data import Dataset
from automl.data.streams import class_subset, relabel
from automl.grow import leafsearch, nodes, placement
from automl.grow.model import TreeModel
from automl.grow.scoring import score
from automl.grow.structure import ROOT, Node, Output, Tree, TreeError
from automl.nn.flops import count_flops
from automl.train.loop import TrainConfig, evaluate
from search_spaces.base import SearchSpace


WARM_STARTS = ("root", "sibling")  # what a new branch's candidates inherit from


def check_warm_start(warm_start: str) -> None:
    if warm_start not in WARM_STARTS:
        raise AutomlError(f"--leaf-warm-start must be one of {', '.join(WARM_STARTS)}, got {warm_start!r}")


def check_head_fit(head_fit: str) -> None:
    if head_fit not in nodes.HEAD_FITS:
        raise AutomlError(f"--head-fit must be one of {', '.join(nodes.HEAD_FITS)}, got {head_fit!r}")


@dataclass
class GrowSettings:
    """The paper's thresholds and child limit, and the (small) training budgets of each part."""

    alpha1: float = placement.ALPHA1
    alpha2: float = placement.ALPHA2
    max_children: int = placement.MAX_CHILDREN
    root_epochs: float = 2.0  # the root on task 1, when it was not trained on exactly those classes
    epochs: float = 1.0  # a branch that receives classes (fine-tuned)
    head_fit: str = "ridge"  # the root's output layer on cached features: "ridge" (closed form) or "sgd"
    head_epochs: float = 3.0  # "sgd": its epochs
    head_lr: float = 0.3  # "sgd": a linear layer on fixed features takes larger steps (README: bench grow)
    leaf_budget: int = 4  # candidates of a new branch's search
    leaf_epochs: float = 2.0  # a search candidate trained from scratch
    leaf_warm_epochs: float = 1.0  # a candidate warm-started (from the root, a sibling or its search parent)
    leaf_warm_start: str = "root"  # new branches inherit from the "root" or the largest "sibling" branch
    leaf_max_flops: float | None = None  # a new branch's FLOPs limit (beyond the bound around the root)
    batch_size: int = 64
    lr: float = 0.1
    seed: int = 0

    def config(self, epochs: float, lr: float | None = None) -> TrainConfig:
        return TrainConfig(epochs=epochs, batch_size=self.batch_size, lr=self.lr if lr is None else lr)


@dataclass
class RootSource:
    """The model growth starts from: its architecture, weights and the classes it was trained on."""

    space: SearchSpace
    genome: Genome
    state: dict[str, torch.Tensor]
    class_names: list[str]
    input_shape: tuple[int, int, int]
    origin: str


@dataclass
class NodeTraining:
    """One training of one node, as the study records it (one trial each)."""

    role: str  # "root", "root-output-layer", "branch" (retrained) or "new-branch" (searched)
    node: str
    task: int
    model: nn.Module
    genome: Genome
    accuracy: float
    flops: int
    seconds: float
    effort: float
    classes: list[int]
    extra: dict[str, Any] = field(default_factory=dict)


class Grower:
    """Grows ``tree`` task by task; ``on_training`` sees every node training (the study records it)."""

    def __init__(self, data: Dataset, tasks: list[list[int]], source: RootSource, settings: GrowSettings,
                 device: torch.device, on_training: Callable[[NodeTraining], int | None] | None = None) -> None:
        check_source(source, data, tasks)
        placement.check_thresholds(settings.alpha1, settings.alpha2, settings.max_children)
        check_warm_start(settings.leaf_warm_start)
        check_head_fit(settings.head_fit)
        self.data, self.tasks, self.source, self.settings, self.device = data, tasks, source, settings, device
        self.space = source.space
        self.on_training = on_training or (lambda training: None)
        self.models: dict[str, nn.Module] = {}
        self.features = nodes.FeatureCache(data.train, device)  # filled from task 2 on: the root is frozen then
        self.tree = Tree(source.space.name, data.name, list(data.input_shape), list(data.class_names), {}, [],
                         thresholds={"alpha1": settings.alpha1, "alpha2": settings.alpha2,
                                     "max_children": settings.max_children})

    # -- the stream ---------------------------------------------------------------------------

    def run(self, progress: Callable[[str], None] = lambda text: None) -> list[dict[str, Any]]:
        reports = []
        for number in range(1, len(self.tasks) + 1):
            progress(f"task {number}/{len(self.tasks)}: classes "
                     f"{', '.join(self.data.class_names[c] for c in self.tasks[number - 1])}")
            reports.append(self.step(number))
        return reports

    def step(self, number: int) -> dict[str, Any]:
        """Learn task ``number`` (1-based); returns what it cost and reached: ``seconds`` is the
        wall-clock of everything learning the task took (the likelihood matrix, the branch
        searches' evaluations and bookkeeping included), ``training_seconds`` the trainings' own."""
        started = time.perf_counter()
        trainings = self._first_task() if number == 1 else self._grow(number)
        seconds = time.perf_counter() - started
        seen = self.tree.classes
        new = self.tasks[number - 1]
        old = [c for c in seen if c not in new]
        report = {"task": number, "classes": new, "outputs": [o.classes for o in self.tree.outputs],
                  "seconds": seconds, "training_seconds": sum(t.seconds for t in trainings),
                  "effort": sum(t.effort for t in trainings),
                  "trained": [{"role": t.role, "node": t.node, "seconds": t.seconds, "effort": t.effort,
                               "accuracy": t.accuracy, "classes": t.classes} for t in trainings],
                  "decisions": self.tree.history[-1]["decisions"] if number > 1 else [],
                  "accuracy": score(self.model(), self.data, seen, old, new, self.device),
                  "mflops_per_path": {k: v / 1e6 for k, v in self.path_flops().items()},
                  "mflops_mean": self.mean_flops() / 1e6}
        self.tree.tasks.append(list(new))
        return report

    def model(self) -> TreeModel:
        branches = {name: self.models[name] for _, name in self.tree.branches()}
        return TreeModel(self.tree, self.models[ROOT], branches).to(self.device).eval()

    def path_flops(self) -> dict[str, int]:
        from automl.grow.model import path_flops

        return path_flops(self.tree)

    @torch.no_grad()
    def mean_flops(self) -> float:
        """FLOPs per inference averaged over the test samples of the classes seen so far,
        each costing the root plus the branch the root routes it to."""
        seen = torch.tensor(self.tree.classes, device=self.data.test.y.device)
        x = self.data.test.x[torch.isin(self.data.test.y, seen)].to(self.device)
        root = self.models[ROOT].eval()
        route = torch.cat([root(x[i:i + 500]).argmax(dim=1) for i in range(0, len(x), 500)])
        cost = torch.tensor([self.tree.nodes[ROOT].flops + (self.tree.nodes[o.node].flops if o.node else 0)
                             for o in self.tree.outputs], dtype=torch.float64, device=route.device)
        return float(cost[route].mean()) if len(route) else 0.0

    # -- task 1 -------------------------------------------------------------------------------

    def _first_task(self) -> list[NodeTraining]:
        classes = self.tasks[0]
        names = [self.data.class_names[c] for c in classes]
        root = self.space.build(self.source.genome, self.data.input_shape, len(self.source.class_names))
        root.load_state_dict(self.source.state)
        if self.source.class_names == names:
            accuracy = evaluate(root.to(self.device), class_subset(self.data, classes).val, device=self.device)
            training = self._record(NodeTraining("root", ROOT, 1, root, self.source.genome,
                                                 accuracy, 0, 0.0, 0.0, classes,
                                                 {"trained": False, "origin": self.source.origin}))
        else:
            nodes.enlarge_output(root, [None] * len(classes), self.settings.seed)
            done = nodes.train_whole(root, class_subset(self.data, classes),
                                     self.settings.config(self.settings.root_epochs), self.settings.seed, self.device)
            training = self._record(NodeTraining("root", ROOT, 1, done.model, self.source.genome, done.accuracy, 0,
                                                 done.seconds, done.effort, classes,
                                                 {"trained": True, "origin": self.source.origin}))
        self.tree.outputs = [Output([c]) for c in classes]
        return [training]

    # -- later tasks --------------------------------------------------------------------------

    def _grow(self, number: int) -> list[NodeTraining]:
        new = self.tasks[number - 1]
        old_outputs = [list(o.classes) for o in self.tree.outputs]
        old_nodes = {j: o.node for j, o in enumerate(self.tree.outputs)}
        matrix = nodes.likelihood(self.models[ROOT], self.features, new)
        placed = placement.place(matrix, old_outputs, new, self.settings.alpha1, self.settings.alpha2,
                                 self.settings.max_children)
        self.tree.history.append({"task": number, "likelihood": matrix.round(4).tolist(),
                                  "decisions": placed.decisions})
        trainings = [self._train_root_outputs(number, placed)]
        outputs = []
        for j, classes in enumerate(placed.outputs):
            source = placed.sources[j]
            node = old_nodes.get(source) if source is not None else None
            if len(classes) > 1 and j in placed.received(old_outputs):
                if node is None:
                    node = self.tree.new_node_name()
                    trainings.append(self._search_branch(number, node, classes))
                else:
                    trainings.append(self._retrain_branch(number, node, classes))
            outputs.append(Output(list(classes), node if len(classes) > 1 else None))
        self.tree.outputs = outputs
        for name in [n for n in self.tree.nodes if n != ROOT and n not in {o.node for o in outputs}]:
            del self.tree.nodes[name]  # a branch merged away (its classes live in the surviving one)
        return trainings

    def _train_root_outputs(self, number: int, placed: placement.Placement) -> NodeTraining:
        mapping = {c: j for j, classes in enumerate(placed.outputs) for c in classes}
        data = relabel(self.data, mapping)
        root, seed = self.models[ROOT], self.settings.seed + number
        features = self.features.of(root, sorted(mapping))
        if self.settings.head_fit == "ridge":
            done = nodes.fit_output_layer(root, data, placed.sources, self.device, features=features)
        else:
            config = self.settings.config(self.settings.head_epochs, self.settings.head_lr)
            done = nodes.train_output_layer(root, data, placed.sources, config, seed, self.device, features=features)
        return self._record(NodeTraining("root-output-layer", ROOT, number, done.model, self.source.genome,
                                         done.accuracy, 0, done.seconds, done.effort,
                                         sorted(mapping), {"outputs": placed.outputs}))

    def _retrain_branch(self, number: int, name: str, classes: list[int]) -> NodeTraining:
        before = self.tree.nodes[name]
        model = nodes.enlarge_output(self.models[name], [before.classes.index(c) if c in before.classes else None
                                                         for c in classes], self.settings.seed + number)
        done = nodes.train_whole(model, class_subset(self.data, classes), self.settings.config(self.settings.epochs),
                                 self.settings.seed + number, self.device)
        genome = self.space.make(before.genes)
        return self._record(NodeTraining("branch", name, number, done.model, genome, done.accuracy, before.flops,
                                         done.seconds, done.effort, classes, {"warm_start_from": before.trial}))

    def _search_branch(self, number: int, name: str, classes: list[int]) -> NodeTraining:
        s = self.settings
        warm_from = self._root_warm_start() if s.leaf_warm_start == "root" else self._sibling()
        bounded = leafsearch.BoundedSpace(self.space, self.source.genome)
        found = leafsearch.search_node(bounded, class_subset(self.data, classes), s.config(s.leaf_epochs),
                                       budget=s.leaf_budget, warm_epochs=s.leaf_warm_epochs, max_flops=s.leaf_max_flops,
                                       warm_from=warm_from, seed=s.seed + number, device=self.device)
        extra = {"search": found.candidates, "max_flops": s.leaf_max_flops}
        chosen = next(c for c in found.candidates if c["chosen"])
        if warm_from is not None and chosen["warm_start"] == warm_from.name:
            extra["warm_start_from"] = warm_from.trial
        return self._record(NodeTraining("new-branch", name, number, found.model, found.genome, found.accuracy,
                                         found.flops, found.seconds, found.effort, classes, extra))

    def _root_warm_start(self) -> leafsearch.WarmStart:
        """The root as it is now (its output layer just retrained): trained longest and on the
        most classes, its features suit a branch better than a sibling's few-class ones
        (measured: see README, ``automl bench grow``)."""
        outputs = nodes.output_layer(self.models[ROOT])[2].out_features
        return self._warm_start(ROOT, self.source.genome, outputs)

    def _sibling(self) -> leafsearch.WarmStart | None:
        """The branch with the most classes (the latest on a tie, one found earlier in this task
        included): the new branch's warm start."""
        branches = [name for name in self.tree.nodes if name != ROOT]
        if not branches:
            return None
        name = max(branches, key=lambda n: (len(self.tree.nodes[n].classes), n))
        node = self.tree.nodes[name]
        return self._warm_start(name, self.space.make(node.genes), len(node.classes))

    def _warm_start(self, name: str, genome: Genome, outputs: int) -> leafsearch.WarmStart:
        """A copy of node ``name``'s weights as they are now (its search may not change them)."""
        state = {k: v.detach().clone() for k, v in self.models[name].state_dict().items()}
        return leafsearch.WarmStart(name, self.tree.nodes[name].trial, genome, state, outputs)

    def _record(self, training: NodeTraining) -> NodeTraining:
        model = training.model.to(self.device).eval()
        training.model = model
        flops = training.flops or count_flops(model, self.data.input_shape)
        training.flops = flops
        self.models[training.node] = model
        trial = self.on_training(training)
        self.tree.nodes[training.node] = Node(dict(training.genome), trial, int(flops),
                                              [] if training.node == ROOT else list(training.classes))
        return training


def check_source(source: RootSource, data: Dataset, tasks: list[list[int]]) -> None:
    """The root model must have been trained on this dataset's kind of input and classes, and
    every class of the stream must have training samples."""
    if tuple(source.input_shape) != tuple(data.input_shape):
        raise TreeError(f"the model ({source.origin}) takes inputs of shape {list(source.input_shape)}, "
                        f"dataset {data.name!r} has {list(data.input_shape)}")
    if data.train.x is not None:
        present = set(data.train.y.unique().tolist())
        empty = [c for task in tasks for c in task if c not in present]
        if empty:
            raise TreeError(f"class {data.class_names[empty[0]]!r} has no training samples in dataset {data.name!r}")
    unknown = [n for n in source.class_names if n not in data.class_names]
    if unknown:
        raise TreeError(f"the model ({source.origin}) was trained on class {unknown[0]!r}, which dataset "
                        f"{data.name!r} does not have: its classes do not match the data")
