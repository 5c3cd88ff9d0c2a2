"""``subset``: train every candidate on a class-balanced fraction of the training split.

Less training data is the bluntest fidelity reduction a search can make (the cheap end of
multi-fidelity NAS, e.g. Klein et al. 2017, "Fast Bayesian Optimization of Machine Learning
Hyperparameters on Large Datasets"): each epoch sees ``fraction`` of the images, so it costs
about ``fraction`` of the time, and what matters is whether candidates keep their ranking.
The validation split is untouched, so accuracies stay comparable across candidates.

What it does, at SETUP: from every class it keeps round(fraction x count) images (at least
one), so class proportions are those of the full split. Which images:

- ``select=random`` (default): a random sample, fixed by the search's seed (``seed`` option,
  not the candidate's), so every candidate sees the same images and rankings compare alike;
- ``select=diverse``: a cheap coverage criterion - per class, greedy k-centre (farthest-point)
  selection on 8x8 average-pooled images, starting from the image nearest the class mean. It
  spreads the subset over each class's appearance instead of sampling its dense middle twice.

The one-off selection cost is measured and reported; it runs inside the training clock.
Works on in-memory splits (the embedded data and any set small enough to be held).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from accelerators.base import Accelerator, InvariantBroken, Option
from automl.data import Split
from automl.core.errors import AutomlError
from automl.train.events import Event, TrainState
from automl.nn.flops import count_flops, training_flops

POOLED = 8  # side of the thumbnails the diverse criterion compares


def class_counts(labels: np.ndarray, fraction: float) -> dict[int, int]:
    """Images kept per class: round(fraction x count), at least one."""
    classes, counts = np.unique(labels, return_counts=True)
    return {int(c): max(1, int(round(fraction * n))) for c, n in zip(classes, counts)}


def random_subset(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    keep = [rng.choice(np.flatnonzero(labels == c), size=k, replace=False)
            for c, k in class_counts(labels, fraction).items()]
    return np.sort(np.concatenate(keep))


def farthest_points(features: Tensor, k: int) -> list[int]:
    """Greedy k-centre: start nearest the mean, then repeatedly add the point farthest from
    the chosen ones (a 2-approximation of the minimax cover)."""
    first = int(torch.cdist(features.mean(0, keepdim=True), features)[0].argmin())
    chosen = [first]
    distance = torch.cdist(features[first:first + 1], features)[0]
    for _ in range(k - 1):
        nxt = int(distance.argmax())
        chosen.append(nxt)
        distance = torch.minimum(distance, torch.cdist(features[nxt:nxt + 1], features)[0])
    return chosen


def diverse_subset(images: Tensor, labels: np.ndarray, fraction: float) -> np.ndarray:
    size = (min(POOLED, images.shape[-2]), min(POOLED, images.shape[-1]))
    thumbs = F.adaptive_avg_pool2d(images.float().cpu(), size).flatten(1)
    keep = []
    for c, k in class_counts(labels, fraction).items():
        members = np.flatnonzero(labels == c)
        picked = farthest_points(thumbs[torch.from_numpy(members)], k)
        keep.append(members[picked])
    return np.sort(np.concatenate(keep))


class Subset(Accelerator):
    name = "subset"
    kind = "fidelity"
    summary = "train on a class-balanced fraction of the training split (random or diverse)"
    paper = "less training data as a fidelity (e.g. Klein et al. 2017, Fast Bayesian Optimization on Large Datasets)"
    order = 10  # data: first
    ddp_safe = True
    ddp_note = "chooses the training images at SETUP from its own seed, the same on every rank"
    events = frozenset({Event.SETUP, Event.FIT_END})
    options = {
        "fraction": Option(0.5, "fraction of each class's training images kept", lambda v: 0.0 < v <= 1.0,
                           "0 < fraction <= 1"),
        "select": Option("random", "random or diverse (k-centre on thumbnails)",
                         lambda v: v in ("random", "diverse"), "random or diverse"),
        "seed": Option(0, "seed of the random choice (shared by all candidates)", lambda v: v >= 0, ">= 0"),
    }

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self.full = 0
        self.kept = 0
        self.selection_seconds = 0.0
        self.forward_flops = 0
        self.samples_trained = 0

    def apply(self, event: Event, state: TrainState) -> None:
        if event is Event.SETUP:
            split = state.train
            if split.x is None:
                raise AutomlError("accelerator 'subset' needs an in-memory training split "
                                  "(this data set is streamed from disk)")
            started = time.perf_counter()
            labels = split.y.cpu().numpy()
            if self.values["select"] == "random":
                index = random_subset(labels, self.values["fraction"], self.values["seed"])
            else:
                index = diverse_subset(split.x, labels, self.values["fraction"])
            chosen = torch.from_numpy(index).to(split.y.device)
            state.train = Split(x=split.x[chosen], y=split.y[chosen])
            self.selection_seconds = time.perf_counter() - started
            self.full, self.kept = len(split), len(index)
            self.forward_flops = count_flops(state.model, state.input_shape)
        elif event is Event.FIT_END:
            self.samples_trained = state.step * state.config.batch_size

    def check_invariants(self, event: Event, state: TrainState) -> None:
        """What subset dropped stays dropped: training draws from at most the kept images."""
        if len(state.train) > self.kept:
            raise InvariantBroken(f"subset: training draws from {len(state.train)} images, {self.kept} were kept")

    def report(self) -> dict[str, Any]:
        fraction = self.kept / self.full if self.full else 1.0
        # the full split would have taken 1/fraction as many samples for the same epochs
        skipped = self.samples_trained * (1 / fraction - 1) if fraction > 0 else 0.0
        return {"select": self.values["select"], "images_kept": self.kept, "images_full": self.full,
                "fraction_kept": fraction, "selection_seconds": self.selection_seconds,
                "training_flops_saved": training_flops(self.forward_flops, skipped)}
