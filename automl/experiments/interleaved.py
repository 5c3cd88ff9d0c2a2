"""The same candidates trained plain and with each accelerator entry, interleaved in one
process after an untimed warm-up - the protocol ``bench accelerators`` and ``ablate`` share.

Every candidate is trained under ``seeds`` seeds, plain and with each entry, and rankings
compare mean accuracies: at a short budget one run is a noisy draw (a candidate's accuracy
moves by points between seeds), and tau between two single runs mixes what a method changes
with that noise. Plain training under ``seeds`` other seeds, scored against the reference
exactly as a method is, gives the ceiling seed noise leaves. What one search run sees - an
entry's first seed against plain training's first seed - is kept as the single-seed tau,
next to its own ceiling (two single plain runs).
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import search_spaces
from automl.data import load_dataset
from automl.experiments import combos
from automl.experiments.candidates import shuffled_candidates, warm_up
from automl.experiments.ranking import agreement, kendall_tau
from automl.nn.flops import training_flops
from automl.train.loop import TrainConfig, train

NOISE_SEED_OFFSET = 1000
PLAIN = "none"


class _Fitter:
    """Trains one genome under one seed with one entry; earlystop's peers live on one board
    per entry and seed, as if each seed were a search of its own."""

    def __init__(self, space, data, config: TrainConfig, cache: Path) -> None:
        self.space, self.data, self.config, self.cache = space, data, config, cache
        self.boards: dict[tuple[str, int], Any] = {}

    def __call__(self, genome, run_seed: int, entry: str = PLAIN, k: int = 0):
        from accelerators.earlystop import MemoryBoard

        chosen = combos.parse(entry) if entry != PLAIN else []
        for method in chosen:
            if isinstance(getattr(method, "board", None), MemoryBoard):
                method.board = self.boards.setdefault((entry, k), MemoryBoard())
        torch.manual_seed(run_seed)
        model = self.space.build(genome, self.data.input_shape, self.data.num_classes)
        return train(model, self.data, self.config, seed=run_seed, accelerators=chosen, cache_dir=self.cache)


def _mean_row(genome_text: str, mflops: float, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"genome": genome_text, "mflops": mflops,
            "accuracy": statistics.mean(r["accuracy"] for r in rows),
            "accuracies": [r["accuracy"] for r in rows],
            "seconds": statistics.mean(r["seconds"] for r in rows),
            "epochs": statistics.mean(r["epochs"] for r in rows),
            "seconds_per_epoch": statistics.mean(r["seconds"] / r["epochs"] for r in rows),
            "flops_saved_fraction": statistics.mean(r["flops_saved_fraction"] for r in rows),
            "reports": rows[0]["reports"]}


def run_interleaved(entries: list[str], candidates: int, epochs: float, max_flops: float | None, seed: int,
                    seeds: int, progress=None, on_run: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Train ``candidates`` genomes (spread over log-FLOPs, shuffled) plain and with each entry
    under ``seeds`` seeds, interleaved; then plain under ``seeds`` other seeds (the ceiling).
    ``progress(done, total, latest)`` is called once per candidate, ``on_run(done, total)``
    after every training run."""
    if seeds < 1:
        raise ValueError("seeds must be >= 1")
    space = search_spaces.get("mobile")
    data = load_dataset()
    genomes, cost = shuffled_candidates(space, data, candidates, max_flops, seed)
    runs: dict[str, list[dict[str, Any]]] = {entry: [] for entry in [PLAIN, *entries]}
    noise_runs: list[list[float]] = []  # per candidate: plain accuracies under the other seeds
    warm_up(space, data, genomes[0], min(epochs, 0.25), seed)
    config = TrainConfig(epochs=epochs)
    trained_samples = epochs * (len(data.train) // config.batch_size * config.batch_size)  # drop_last batches
    with tempfile.TemporaryDirectory() as cache:  # one-off artifacts (wae's encoder), shared by candidates
        fitter = _Fitter(space, data, config, Path(cache))
        total, done = candidates * seeds * (len(runs) + 1), 0

        def fit(*args):
            nonlocal done
            result = fitter(*args)
            done += 1
            if on_run is not None:
                on_run(done, total)
            return result

        for c, genome in enumerate(genomes):
            plain_flops = training_flops(cost(genome), trained_samples)
            per_seed: dict[str, list[dict[str, Any]]] = {entry: [] for entry in runs}
            for k in range(seeds):
                for entry in runs:
                    result = fit(genome, seed + c + NOISE_SEED_OFFSET * k, entry, k)
                    saved = sum(r.get("training_flops_saved", 0.0) for r in result.accelerators.values())
                    per_seed[entry].append({"accuracy": result.accuracy, "seconds": result.seconds,
                                            "epochs": result.epochs, "flops_saved_fraction": saved / plain_flops,
                                            "reports": result.accelerators})
            for entry, rows in per_seed.items():
                runs[entry].append(_mean_row(space.format(genome), cost(genome) / 1e6, rows))
            noise_runs.append([fit(genome, seed + c + NOISE_SEED_OFFSET * k).accuracy for k in range(seeds, 2 * seeds)])
            if progress is not None:
                progress(c + 1, candidates, {entry: rows[-1] for entry, rows in runs.items()})
    return {"runs": runs, "noise_runs": noise_runs}


def compare(rows: list[dict[str, Any]], base: list[dict[str, Any]]) -> dict[str, Any]:
    """An entry's rows against plain training's, candidate by candidate."""
    ratio = sum(r["seconds"] for r in rows) / sum(b["seconds"] for b in base)
    accuracies = [r["accuracy"] for r in rows]
    reference = [b["accuracy"] for b in base]
    return {
        "seconds_ratio": ratio,
        "measured_speedup": 1 / ratio,
        "seconds_per_epoch_ratio": statistics.median(r["seconds_per_epoch"] / b["seconds_per_epoch"]
                                                     for r, b in zip(rows, base)),
        "accuracy_delta_mean": statistics.mean(a - r for a, r in zip(accuracies, reference)),
        "theoretical_training_flops_saved": statistics.mean(r["flops_saved_fraction"] for r in rows),
        **agreement(accuracies, reference, [b["mflops"] for b in base]),
        "kendall_tau_single_seed": kendall_tau([r["accuracies"][0] for r in rows],
                                               [b["accuracies"][0] for b in base]),
    }


def ceiling(base: list[dict[str, Any]], noise_runs: list[list[float]]) -> dict[str, Any]:
    """What seed noise alone keeps: plain training under other seeds scored as an entry is."""
    reference = [b["accuracy"] for b in base]
    noise = [statistics.mean(accuracies) for accuracies in noise_runs]
    return {"reference_accuracy": reference, "noise_runs": noise_runs, "noise_accuracy": noise,
            "seed_noise": agreement(noise, reference, [b["mflops"] for b in base]),
            "seed_to_seed_kendall_tau": kendall_tau([n[0] for n in noise_runs],
                                                    [b["accuracies"][0] for b in base])}


SHARED_NOTE = ("every candidate is trained under `seeds` seeds, plain and with each entry (a+b: both methods "
               "at once); seconds_ratio = training seconds with the entry / without, summed over the same "
               "candidates and seeds (< 1 is faster; one-off costs included); seconds_per_epoch_ratio = median "
               "over candidates; theoretical_training_flops_saved = fraction of 3 x forward FLOPs x samples of "
               "the plain run the methods skip, summed over an entry's methods (real for wall-clock methods, on "
               "exploiting hardware only for emulated ones); kendall_tau = candidates ranked by mean accuracy "
               "over the seeds with the entry vs plain (the reference); front_recall = share of the reference's "
               "accuracy-vs-FLOPs Pareto front also on the entry's front; seed_noise = plain training under as "
               "many other seeds, scored the same way (the ceiling seed noise leaves); kendall_tau_single_seed = "
               "the entry's first seed vs plain's first seed (what one search run sees), "
               "seed_to_seed_kendall_tau = its ceiling (two single plain runs)")
