"""The first generation: random genomes, no two alike."""

from __future__ import annotations

import numpy as np


def balanced_sample(n_choices: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random rows with every gene's values spread evenly over them (a Latin-hypercube-like
    design for categorical genes): a small population then covers each choice, the cheapest and
    the largest included. Rows may repeat; :mod:`.duplicates` drops repeats."""
    columns = []
    for k in n_choices:
        balanced = np.concatenate([rng.permutation(int(k)) for _ in range(-(-n // int(k)))])
        columns.append(rng.permutation(balanced[:n]))
    return np.stack(columns, axis=1).astype(int) if n else np.zeros((0, len(n_choices)), dtype=int)


def uniform_sample(n_choices: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` rows drawn uniformly per gene (Dvolver's initial population)."""
    return rng.integers(np.asarray(n_choices), size=(n, len(n_choices))).astype(int)


SAMPLERS = {"balanced": balanced_sample, "uniform": uniform_sample}
