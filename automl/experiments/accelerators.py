"""``bench accelerators``: each entry (one method, or ``a+b`` combined) against no
accelerator on the same candidates and seeds (see :mod:`automl.experiments.interleaved`).

Per entry: the ratio of training seconds per candidate against plain training with the same
seeds (one-off costs included: an encoder trained once and cached is paid by the first
candidate that needs it), the median ratio of seconds per epoch, the mean accuracy change,
the theoretical training FLOPs saved, and the agreement of its ranking with plain training's:
Kendall's tau and the share of the Pareto front kept.
"""

from __future__ import annotations

from typing import Any

from automl.experiments import combos
from automl.experiments.interleaved import PLAIN, SHARED_NOTE, ceiling, compare, run_interleaved


def bench_accelerators(candidates: int = 8, epochs: float = 1.0, max_flops: float | None = 20e6, seed: int = 0,
                       names=None, progress=None, seeds: int = 2) -> dict[str, Any]:
    """``names``: entries (``subset:select=diverse`` and ``fx16+sparsegrad`` allowed); default:
    every registered accelerator alone."""
    import accelerators

    entries = list(names or accelerators.names())
    for entry in entries:
        combos.parse(entry)  # refused before anything trains
    measured = run_interleaved(entries, candidates, epochs, max_flops, seed, seeds, progress)
    runs = measured["runs"]
    table = {}
    for entry in entries:
        row = compare(runs[entry], runs[PLAIN])
        table[entry] = {"kind": combos.kind(entry), **row, "reading": reading(combos.kind(entry), row["seconds_ratio"])}
    return {"benchmark": "accelerators", "candidates": candidates, "epochs": epochs, "max_flops": max_flops,
            "seed": seed, "seeds": seeds, "table": table, "runs": runs,
            **ceiling(runs[PLAIN], measured["noise_runs"]), "note": SHARED_NOTE}


def reading(kind: str, ratio: float) -> str:
    """One honest sentence on what a seconds ratio means for an entry of this kind."""
    kinds = kind.split("+")
    if kinds == ["emulated"]:
        return f"emulated: costs {ratio:.2f}x the time here; its saving is theoretical only"
    measured = f"measured {1 / ratio:.2f}x speed-up" if ratio < 1 else f"no saving on this machine: {ratio:.2f}x the time"
    if "emulated" in kinds:
        return f"{measured}; the emulated part's saving is theoretical only"
    if "wall-clock" in kinds or len(kinds) > 1:
        return measured
    return f"{kind}: {ratio:.2f}x the time"
