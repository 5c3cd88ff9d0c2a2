"""``automl ablate``: which accelerators combine.

The same candidates are trained plain, with each method alone and with each allowed pair
(triples on request), interleaved in one process after a warm-up (see
:mod:`automl.experiments.interleaved`). A combination is read against its singles: if the
methods were independent, the pair's speed-up would be the product of theirs and its accuracy
change the sum of theirs. ``speedup_interaction`` = measured / product (> 1: they help each
other, < 1: they get in each other's way); ``accuracy_interaction`` = measured - sum (in
accuracy, negative: the pair loses more than its parts). Pairs the registry refuses are listed
with the reason and not trained.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from automl.core.errors import AutomlError
from automl.experiments import combos
from automl.experiments.interleaved import PLAIN, SHARED_NOTE, ceiling, compare, run_interleaved

MAX_SIZES = (2, 3)


def methods_of(only: str | None) -> list[str]:
    """The single methods to combine: ``--only`` (specs with options allowed) or every
    registered accelerator; refused with one line when the choice cannot be ablated."""
    import accelerators

    methods = combos.split_entries(only) if only else accelerators.names()
    joined = [m for m in methods if "+" in m]
    if joined:
        raise AutomlError(f"ablate --only takes single methods and builds the combinations itself; got {joined[0]!r}")
    for method in methods:  # an unknown name or a bad option is the first thing to say
        combos.parse(method)
    if len(methods) < 2:
        raise AutomlError(f"ablate needs at least two methods to combine, got {len(methods)}")
    twice = sorted({m for m in methods if methods.count(m) > 1})
    if twice:
        raise AutomlError(f"ablate --only names {twice[0]!r} twice")
    return methods


def interaction(entry: str, table: dict[str, dict[str, Any]]) -> dict[str, float]:
    """A combination against its singles (see the module docstring)."""
    singles = [table[m] for m in combos.members(entry)]
    expected_speedup = math.prod(s["measured_speedup"] for s in singles)
    expected_delta = sum(s["accuracy_delta_mean"] for s in singles)
    row = table[entry]
    return {"expected_speedup": expected_speedup,
            "speedup_interaction": row["measured_speedup"] / expected_speedup,
            "expected_accuracy_delta": expected_delta,
            "accuracy_interaction": row["accuracy_delta_mean"] - expected_delta}


def pair_matrix(methods: list[str], table: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Method x method matrices for the heat-map: speed-up (diagonal: the method alone),
    speed-up interaction and accuracy interaction (diagonal: none); None where refused."""

    def cell(i: int, j: int, key: str) -> float | None:
        if i == j:
            return table[methods[i]].get(key) if key == "measured_speedup" else None
        pair = "+".join(sorted((methods[i], methods[j]), key=methods.index))
        return table[pair][key] if pair in table else None

    keys = ("measured_speedup", "speedup_interaction", "accuracy_interaction", "kendall_tau")
    return {"methods": methods, **{key: [[cell(i, j, key) for j in range(len(methods))]
                                         for i in range(len(methods))] for key in keys}}


def ablate(only: str | None = None, candidates: int = 4, seeds: int = 2, max_size: int = 2, epochs: float = 0.5,
           max_flops: float | None = 10e6, seed: int = 0, progress=None,
           stage: Callable[[str], None] = lambda line: None,
           on_run: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Singles and combinations of ``only``'s methods on the same candidates and seeds.
    ``stage`` hears what will run before the first candidate's line, minutes later;
    ``on_run(done, total)`` after every training run."""
    if max_size not in MAX_SIZES:
        raise AutomlError(f"--max-size must be 2 or 3, got {max_size}")
    methods = methods_of(only)
    allowed, refused = combos.combinations(methods, max_size)
    entries = 1 + len(methods) + len(allowed)
    stage(f"{candidates} candidates x {entries} entries (plain, {len(methods)} alone, {len(allowed)} combined; "
          f"{len(refused)} refused) x {seeds} seed(s), {epochs:g} epoch(s) each, plus {seeds} plain seed(s) "
          f"for the noise ceiling: {candidates * (entries + 1) * seeds} runs")
    measured = run_interleaved([*methods, *allowed], candidates, epochs, max_flops, seed, seeds, progress, on_run)
    runs = measured["runs"]
    noise = ceiling(runs[PLAIN], measured["noise_runs"])
    table: dict[str, dict[str, Any]] = {}
    for entry in [*methods, *allowed]:
        row = compare(runs[entry], runs[PLAIN])
        table[entry] = {"kind": combos.kind(entry), "size": len(combos.members(entry)), **row,
                        "tau_below_ceiling": noise["seed_noise"]["kendall_tau"] - row["kendall_tau"]}
    for entry in allowed:
        table[entry].update(interaction(entry, table))
    return {"benchmark": "ablate", "methods": methods, "max_size": max_size, "candidates": candidates,
            "epochs": epochs, "max_flops": max_flops, "seed": seed, "seeds": seeds, "table": table,
            "refused": refused, "pairs": pair_matrix(methods, table), "runs": runs, **noise,
            "note": SHARED_NOTE + "; speedup_interaction = measured speed-up / product of the singles' "
                    "(> 1: better together than apart); accuracy_interaction = accuracy change - sum of the "
                    "singles' changes; tau_below_ceiling = seed-noise tau - the entry's tau"}
