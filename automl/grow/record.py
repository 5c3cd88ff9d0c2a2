"""A grown tree in an Optuna study: one trial per node training, the tree as a study attribute.

Each training of a node (the root on task 1, the root's output layer on each later task, a
branch retrained or searched) is a COMPLETE trial: the node's genes as params, values
``[accuracy, flops]`` (validation accuracy on the node's own classes or outputs, its forward
FLOPs), and user attributes that say which node, task and classes, the seconds and training
effort it took, where it was warm-started from and (for a searched branch) its search's
candidates; the node's weights are the trial's artifact. The study attribute ``tree`` holds
the tree's current structure; each node names the trial that holds its current weights.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from optuna.trial import TrialState

from automl.core import attrs
from automl.core.pareto import DEFAULT_OBJECTIVES
from automl.grow.grower import Grower, NodeTraining, RootSource
from automl.grow.structure import TREE_ATTR, Tree, TreeError
from automl.store.study import StudyStore

ROLE = "tree_role"  # trial attribute: which part of the tree the trial trained
NODE = "tree_node"
TASK = "tree_task"


class TreeStudy:
    """Records a growing tree into a new study (refusing an existing name)."""

    def __init__(self, store: StudyStore) -> None:
        self.store = store

    @classmethod
    def create(cls, name: str, storage: str | None, settings: dict[str, Any]) -> TreeStudy:
        return cls(StudyStore.create(name, storage, DEFAULT_OBJECTIVES, {**settings, "mode": "grow"},
                                     if_exists="choose another --tree-study"))

    def record(self, training: NodeTraining) -> int:
        space_genes = {g: list(c) for g, c in _space(self.store).genes().items()}
        label = _space(self.store).format(training.genome)
        trial = self.store.start(training.genome, space_genes,
                                 {attrs.KEY: f"{training.node}@{training.task}:{training.genome.key()}",
                                  attrs.GENOME: label, ROLE: training.role, NODE: training.node,
                                  TASK: training.task})
        facts = {attrs.FLOPS: training.flops, attrs.MFLOPS: training.flops / 1e6,
                 attrs.PARAMS: sum(p.numel() for p in training.model.parameters()),
                 attrs.SECONDS: training.seconds, "effort": training.effort, "classes": training.classes,
                 **{k: v for k, v in training.extra.items() if k != "warm_start_from"}}
        if training.extra.get("warm_start_from") is not None:
            facts[attrs.WARM_START_FROM] = training.extra["warm_start_from"]
        frozen = self.store.complete(trial, {"accuracy": training.accuracy, "flops": float(training.flops)}, facts,
                                     training.model.state_dict())
        return frozen.number

    def save(self, tree: Tree) -> None:
        self.store.study.set_user_attr(TREE_ATTR, tree.as_dict())


def _space(store: StudyStore):
    import search_spaces

    return search_spaces.get(store.settings["space"])


def grow_into_study(grower: Grower, study: str, storage: str | None, settings: dict[str, Any],
                    progress: Callable[[str], None] = lambda text: None) -> tuple[StudyStore, list[dict[str, Any]]]:
    """Run ``grower`` over its stream, recording every node training and the tree after each
    task in a new study (created only now: a grower is built, and its input checked, first)."""
    recorder = TreeStudy.create(study, storage, settings)
    grower.on_training = recorder.record
    reports = []
    for number in range(1, len(grower.tasks) + 1):
        progress(f"task {number}/{len(grower.tasks)}: classes "
                 f"{', '.join(grower.data.class_names[c] for c in grower.tasks[number - 1])}")
        reports.append(grower.step(number))
        recorder.save(grower.tree)
    recorder.store.study.set_user_attr("grow_reports", json.loads(json.dumps(reports, default=float)))
    return recorder.store, reports


def root_from_trial(study: str, storage: str | None, number: int) -> RootSource:
    """The root model of a search's trial: its genome, stored weights and the study's classes."""
    import search_spaces

    store = StudyStore.open(study, storage)
    trial = next((t for t in store.trials() if t.number == number), None)
    if trial is None or trial.state != TrialState.COMPLETE:
        raise TreeError(f"study {study!r} has no finished trial {number}")
    settings = store.settings
    data = settings.get("data") or {}
    if "space" not in settings or "class_names" not in data or "input_shape" not in data:
        raise TreeError(f"study {study!r} records no space or data description (was it made by automl search?)")
    if settings.get("mode") == "grow":
        raise TreeError(f"study {study!r} holds a grown tree; grow from a search's trial or an exported model")
    space = search_spaces.get(settings["space"])
    return RootSource(space, space.make(trial.params), store.download_weights(trial), list(data["class_names"]),
                      tuple(data["input_shape"]), f"study {study!r} trial {number}")
