"""Candidates for the benchmarks: genomes sampled under a FLOPs limit, spread over the FLOPs
range the way a search's front is, mutated the way the engine's children are - and the untimed
warm-up run every timed comparison starts with."""

from __future__ import annotations

from typing import Any

import numpy as np

from automl.data.datasets import Dataset
from automl.nn.flops import model_cost
from automl.train.loop import TrainConfig, train


class FlopsCost:
    """Forward FLOPs of a genome's model on ``data``, measured once per genome."""

    def __init__(self, space: Any, data: Dataset) -> None:
        self.space, self.data = space, data
        self._known: dict[Any, float] = {}

    def __call__(self, genome: Any) -> float:
        if genome not in self._known:
            build = lambda: self.space.build(genome, self.data.input_shape, self.data.num_classes)  # noqa: E731
            self._known[genome] = float(model_cost(build, self.data.input_shape)[0])
        return self._known[genome]


def sample_under(space: Any, rng: np.random.Generator, limit: float | None, cost) -> Any:
    """A random genome, repaired (as the engine does) until it fits under ``limit`` FLOPs."""
    from automl.engine.search import repair_row

    n_choices = np.array([len(c) for c in space.genes().values()])
    x = rng.integers(n_choices)
    if limit is not None:
        x = repair_row(x, n_choices, lambda row: max(0.0, cost(space.decode(row)) / limit - 1), rng)
    genome = space.decode(x)
    if limit is not None and cost(genome) > limit:
        raise ValueError("no genome under the FLOPs limit")
    return genome


def mutate(space: Any, genome: Any, k: int, rng: np.random.Generator, limit: float | None, cost) -> Any:
    """The genome with ``k`` genes changed to other legal values (as the engine's mutation)."""
    n_choices = np.array([len(c) for c in space.genes().values()])
    for _ in range(1000):
        x = space.encode(genome).copy()
        for j in rng.choice(len(x), size=k, replace=False):
            other = int(rng.integers(n_choices[j] - 1))
            x[j] = other if other < x[j] else other + 1
        child = space.decode(x)
        if limit is None or cost(child) <= limit:
            return child
    raise ValueError("no mutated genome under the FLOPs limit")


def stratified(space: Any, rng: np.random.Generator, count: int, limit: float | None, cost) -> list:
    """``count`` genomes spread evenly over log-FLOPs, from near the space's smallest genome up
    to ``limit``: a search compares candidates along its whole front, tiny to large. Each genome
    of a pool of 10 x ``count`` is sampled under its own log-uniform FLOPs cap (plain random
    genomes crowd just under ``limit``); evenly spaced quantiles of the pool are returned."""
    genes = space.genes()
    smallest = cost(space.decode(np.zeros(len(genes), dtype=int)))
    largest = limit if limit is not None else cost(space.decode(np.array([len(c) - 1 for c in genes.values()])))
    low, high = np.log(1.5 * smallest), np.log(largest)
    pool = [sample_under(space, rng, float(np.exp(rng.uniform(low, high))) if high > low else limit, cost)
            for _ in range(10 * count)]
    sampled = sorted(pool, key=cost)
    return [sampled[int((i + 0.5) * len(sampled) / count)] for i in range(count)]


def shuffled_candidates(space: Any, data: Dataset, count: int, limit: float | None, seed: int) -> tuple[list, FlopsCost]:
    """``count`` stratified genomes in shuffled order (a search meets them in no FLOPs order),
    with the cost function that measured them."""
    rng = np.random.default_rng(seed)
    cost = FlopsCost(space, data)
    genomes = stratified(space, rng, count, limit, cost)
    return [genomes[i] for i in rng.permutation(len(genomes))], cost


def warm_up(space: Any, data: Dataset, genome: Any, epochs: float = 0.25, seed: int = 0) -> None:
    """An untimed training run: a process's first training pays one-off start-up costs (thread
    pools, kernels) that would otherwise be charged to whatever a benchmark times first - the
    emulated methods' too: their fused kernels are loaded once per process (a search pays that
    once, not per candidate)."""
    from accelerators import kernels

    kernels.load()
    train(space.build(genome, data.input_shape, data.num_classes), data, TrainConfig(epochs=epochs), seed=seed)
