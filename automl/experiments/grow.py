"""``automl bench grow``: Tree-CNN growth against the usual ways to add classes, task by task.

One root is trained on the first task's classes; from it, after each later task, side by side
on the embedded data:

- ``tree``: Tree-CNN growth (:mod:`automl.grow`): only the root's output layer, the branches
  that received classes and the new branches (each found by a short search) are trained;
- ``finetune-all``: the whole root, output layer enlarged, fine-tuned on all data seen so far;
- ``finetune-new``: the same, on the new classes' data only (what forgetting looks like);
- ``scratch``: the root's architecture trained from scratch on all data seen so far.

Per method and task: test accuracy on all classes seen, on the old and on the new ones;
training effort as the paper defines it (weights updated x samples trained) and wall-clock
seconds of learning the task (for the tree: the likelihood matrix, the branch searches' model
building, evaluation and bookkeeping as well as the trainings), each also relative to
``finetune-all``; forward MFLOPs per inference (for the tree,
averaged over the test samples, each costing the root plus the branch it is routed to).
The targets: effort and seconds at most half of ``finetune-all``'s at final all-class
accuracy within 2 points of it, and old-class accuracy within 2 points of before each task.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from automl.data import Dataset
from automl.data.streams import class_subset, relabel
from automl.grow.grower import Grower, GrowSettings, RootSource
from automl.grow.nodes import Trained, enlarge_output, train_whole
from automl.grow.scoring import score
from automl.nn.flops import count_flops

METHODS = ("tree", "finetune-all", "finetune-new", "scratch")
DEFAULT_TASKS = "0-4/5,6/7-9"
TARGET_RATIO = 0.5  # effort and seconds, relative to finetune-all
TARGET_POINTS = 0.02  # accuracy within 2 points


class _Baseline:
    """One of the single-network methods: its model and how it learns a task."""

    def __init__(self, method: str, root: nn.Module, build: Callable[[int], nn.Module], data: Dataset,
                 settings: GrowSettings, device: torch.device) -> None:
        self.method, self.model, self.build, self.data = method, copy.deepcopy(root), build, data
        self.settings, self.device = settings, device

    def learn(self, number: int, seen: list[int], new: list[int], epochs: float, scratch_epochs: float) -> Trained:
        seed = self.settings.seed + number
        if self.method == "scratch":
            torch.manual_seed(seed)
            return train_whole(self.build(len(seen)), class_subset(self.data, seen),
                               self.settings.config(scratch_epochs), seed, self.device)
        old = [c for c in seen if c not in new]
        model = enlarge_output(self.model, [old.index(c) if c in old else None for c in seen], seed)
        names = [self.data.class_names[c] for c in seen]
        data = (class_subset(self.data, seen) if self.method == "finetune-all" else
                relabel(self.data, {c: seen.index(c) for c in new}, names))
        return train_whole(model, data, self.settings.config(epochs), seed, self.device)


def _row(accuracy: dict, seconds: float, training_seconds: float, effort: float, mflops: float) -> dict[str, Any]:
    return {"accuracy_all": accuracy["all"], "accuracy_old": accuracy["old"], "accuracy_new": accuracy["new"],
            "seconds": seconds, "training_seconds": training_seconds, "effort": effort, "mflops": mflops}


def bench_grow(tasks: list[list[int]], data: Dataset, root_source: RootSource, settings: GrowSettings,
               epochs: float, scratch_epochs: float, device: torch.device,
               progress: Callable[[str], None] = lambda text: None,
               on_task: Callable[[dict[str, Any]], None] = lambda partial: None) -> dict[str, Any]:
    """Run every method over the stream (the root is trained on the first task from
    ``root_source``'s weights); ``on_task`` sees the result so far after each task."""
    space, genome = root_source.space, root_source.genome
    grower = Grower(data, tasks, root_source, settings, device)
    progress("task 1: the root (shared by every method)")
    first = grower.step(1)
    root = grower.models["root"]
    build = lambda classes: space.build(genome, data.input_shape, classes)  # noqa: E731
    baselines = {m: _Baseline(m, root, build, data, settings, device) for m in METHODS if m != "tree"}
    root_mflops = count_flops(root, data.input_shape) / 1e6
    rows: list[dict[str, Any]] = [{"task": 1, "classes": tasks[0], "methods": {
        m: _row(first["accuracy"], 0.0, 0.0, 0.0, root_mflops) for m in METHODS}}]
    for number in range(2, len(tasks) + 1):
        new = tasks[number - 1]
        seen = [c for task in tasks[:number] for c in task]
        progress(f"task {number}: tree")
        grown = grower.step(number)
        methods = {"tree": {**_row(grown["accuracy"], grown["seconds"], grown["training_seconds"], grown["effort"],
                                   grown["mflops_mean"]),
                            "outputs": grown["outputs"], "decisions": grown["decisions"], "trained": grown["trained"]}}
        for method, baseline in baselines.items():
            progress(f"task {number}: {method}")
            started = time.perf_counter()
            done = baseline.learn(number, seen, new, epochs, scratch_epochs)
            seconds = time.perf_counter() - started
            if method != "scratch":
                baseline.model = done.model
            accuracy = score(done.model, data, seen, [c for c in seen if c not in new], new, device)
            methods[method] = _row(accuracy, seconds, done.seconds, done.effort,
                                   count_flops(done.model, data.input_shape) / 1e6)
        rows.append({"task": number, "classes": new, "methods": methods})
        if number < len(tasks):
            on_task({"tasks": rows, "summary": summarise(rows), "tree": grower.tree.as_dict(), "partial": True})
    return {"tasks": rows, "summary": summarise(rows), "tree": grower.tree.as_dict()}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per method: growth effort and seconds summed over tasks 2.., relative to finetune-all; the
    final all-class accuracy and its gap to finetune-all; the worst old-class drop of a task."""
    grown = rows[1:]
    base = {k: sum(r["methods"]["finetune-all"][k] for r in grown) for k in ("effort", "seconds", "training_seconds")}
    final = rows[-1]["methods"]
    summary: dict[str, Any] = {}
    for method in METHODS:
        drops = [rows[i - 1]["methods"][method]["accuracy_all"] - rows[i]["methods"][method]["accuracy_old"]
                 for i in range(1, len(rows))]
        effort = sum(r["methods"][method]["effort"] for r in grown)
        seconds = sum(r["methods"][method]["seconds"] for r in grown)
        training = sum(r["methods"][method]["training_seconds"] for r in grown)
        summary[method] = {
            "effort": effort, "seconds": seconds, "training_seconds": training,
            "effort_vs_finetune_all": effort / base["effort"] if base["effort"] else None,
            "seconds_vs_finetune_all": seconds / base["seconds"] if base["seconds"] else None,
            "training_seconds_vs_finetune_all": training / base["training_seconds"] if base["training_seconds"] else None,
            "final_accuracy_all": final[method]["accuracy_all"],
            "final_gap_to_finetune_all": final[method]["accuracy_all"] - final["finetune-all"]["accuracy_all"],
            "worst_old_class_drop": max(drops), "old_class_drops": drops,
        }
    tree = summary["tree"]
    summary["targets"] = {
        "effort_at_most_half": tree["effort_vs_finetune_all"] <= TARGET_RATIO,
        "seconds_at_most_half": tree["seconds_vs_finetune_all"] <= TARGET_RATIO,
        "final_accuracy_within_2_points": tree["final_gap_to_finetune_all"] >= -TARGET_POINTS,
        "old_classes_within_2_points": tree["worst_old_class_drop"] <= TARGET_POINTS,
    }
    return summary
