"""Test problems for ``bench engine``: categorical, two objectives, no training - so search
quality can be compared over many seeds in seconds. Each entry: genes (name -> choices), the
evaluate function, the objectives and the hypervolume reference point."""

from __future__ import annotations

import math as m

import numpy as np

def _levels(genome: dict, n: int) -> list[float]:
    return [genome[f"x{i}"] / 7 for i in range(n)]


def _zdt(genome: dict, n: int, shape: str) -> dict[str, float]:
    """ZDT1/ZDT2 on a grid of 8 levels per gene: f1 = x0, g from the rest."""
    x = _levels(genome, n)
    g = 1 + 9 * sum(x[1:]) / (n - 1)
    ratio = x[0] / g
    f2 = g * (1 - (m.sqrt(ratio) if shape == "convex" else ratio**2))
    return {"f1": x[0], "f2": f2}


def _nas_like(genome: dict) -> dict[str, float]:
    """A NAS-shaped problem: cost grows with depth x width x kernel per stage, error falls
    with capacity with diminishing returns and penalises bottlenecks between stages."""
    cost, capacity, prev, bottleneck = 0.0, 0.0, None, 0.0
    for s in range(5):
        depth, width, kernel = genome[f"d{s}"], genome[f"w{s}"], genome[f"k{s}"]
        stage = depth * width * (kernel / 3) ** 2 * (0.5 ** s)
        cost += stage
        capacity += m.log1p(depth * width * (1 + 0.15 * (kernel - 3)))
        if prev is not None and width < prev:
            bottleneck += (prev - width) / prev
        prev = width
    error = 1 / (1 + 0.35 * capacity) + 0.05 * bottleneck
    return {"error": error, "cost": cost}


def _nk_tables(genes: int = 12, k: int = 2, alleles: int = 4, seed: int = 12345):
    rng = np.random.default_rng(seed)
    return [rng.random((genes,) + (alleles,) * (k + 1)) for _ in range(2)]


_NK = _nk_tables()


def _nk(genome: dict, genes: int = 12, k: int = 2) -> dict[str, float]:
    """Two NK landscapes (Kauffman) on the same genes: each gene's contribution depends on
    its k neighbours too, so the problem is epistatic - hard for additive models."""
    x = [genome[f"x{i}"] for i in range(genes)]
    values = {}
    for o, table in enumerate(_NK):
        total = sum(table[i][(x[i], *[x[(i + 1 + j) % genes] for j in range(k)])] for i in range(genes))
        values[f"f{o}"] = -float(total / genes)
    return values


PROBLEMS = {
    "zdt1": ({f"x{i}": list(range(8)) for i in range(12)}, lambda g: _zdt(g, 12, "convex"),
             [("f1", "min"), ("f2", "min")], [1.1, 11.0]),
    "zdt2": ({f"x{i}": list(range(8)) for i in range(12)}, lambda g: _zdt(g, 12, "concave"),
             [("f1", "min"), ("f2", "min")], [1.1, 11.0]),
    "nas": ({**{f"d{s}": [1, 2, 3, 4] for s in range(5)}, **{f"w{s}": [8, 16, 24, 32, 48] for s in range(5)},
             **{f"k{s}": [3, 5, 7] for s in range(5)}}, _nas_like,
            [("error", "min"), ("cost", "min")], [1.0, 800.0]),
    "nk": ({f"x{i}": list(range(4)) for i in range(12)}, _nk, [("f0", "min"), ("f1", "min")], [0.0, 0.0]),
}
