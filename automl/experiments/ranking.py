"""How well a cheap ranking of candidates keeps the reference ranking: Kendall's tau, and the
share of the reference's accuracy-vs-FLOPs Pareto front it keeps. Read both against the
ceiling seed noise leaves (the reference re-run under other seeds, scored the same way)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from automl.core.pareto import non_dominated


def kendall_tau(values: Sequence[float], reference: Sequence[float]) -> float:
    """Kendall's tau-b (nan where one side is constant)."""
    from scipy.stats import kendalltau

    return float(kendalltau(values, reference).statistic)


def front(accuracies: Sequence[float], mflops: Sequence[float]) -> set[int]:
    """Candidates on the (accuracy up, FLOPs down) Pareto front."""
    return {int(i) for i in non_dominated(np.column_stack([-np.asarray(accuracies), np.asarray(mflops)]))}


def agreement(accuracies: Sequence[float], reference: Sequence[float], mflops: Sequence[float]) -> dict[str, float]:
    """Kendall's tau of ``accuracies`` against ``reference`` and ``front_recall``: the share of
    the reference's Pareto front (accuracy vs FLOPs) also on this ranking's front."""
    wanted = front(reference, mflops)
    return {"kendall_tau": kendall_tau(accuracies, reference),
            "front_recall": len(wanted & front(accuracies, mflops)) / len(wanted)}
