"""Benchmarks, run side by side in one process and reported as ratios.

``trainer``: our trainer against a bare PyTorch loop doing the same work - same model
initialisation, data, batch size, optimizer (SGD, Nesterov), one-cycle schedule, label
smoothing, channels_last and final BatchNorm re-estimation - alternating in one process.
The ratio of samples/s shows what our loop's events, checks and bookkeeping cost. Model FLOP
utilisation is 3 x forward FLOPs x samples/s over the float32 matmul throughput measured on
this machine at the same moment.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import search_spaces
from automl.data import load_dataset
from automl.search.engine import Search
from automl.evaluate.devices import pick_device
from automl.nn.flops import count_flops, count_params, training_flops
from automl.train.loop import TrainConfig, make_optimizer, make_scheduler, recalibrate_batchnorm, train

BENCH_GENOME = "stem16-ir_r1_k3_e1_c16-ir_r2_k3_e6_c24-ir_r2_k5_e6_c32-ir_r2_k3_e6_c64-ir_r1_k3_e6_c96-head256"


def matmul_flops_per_second(device: torch.device, n: int = 1024, repeats: int = 10) -> float:
    """Best-of float32 matmul throughput (2 n^3 FLOPs per product) on ``device``."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best


def bare_loop(model: torch.nn.Module, data, config: TrainConfig, seed: int, device: torch.device) -> float:
    """The same training written as plain PyTorch; returns samples per second."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = model.to(device=device, memory_format=torch.channels_last).train()
    x, y = data.train.x, data.train.y
    n = len(y) - len(y) % config.batch_size
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config, (n // config.batch_size) * config.epochs)
    samples = 0
    started = time.perf_counter()
    for _ in range(config.epochs):
        order = torch.randperm(len(y), generator=generator).to(y.device)
        for start in range(0, n, config.batch_size):
            index = order[start:start + config.batch_size]
            inputs = x[index].contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(model(inputs), y[index], label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            samples += len(index)
    recalibrate_batchnorm(model, data.train, config.batch_size, config.bn_samples, generator, device,
                          torch.channels_last)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return samples / (time.perf_counter() - started)


def bench_trainer(genome: str = BENCH_GENOME, epochs: int = 1, rounds: int = 5, batch_size: int = 64,
                  seed: int = 0, device: str = "auto", progress=None) -> dict[str, Any]:
    """Our trainer vs the bare loop, alternating ``rounds`` times after one untimed warm-up
    run of each; medians and their ratio."""
    space = search_spaces.get("mobile")
    parsed = space.parse(genome)
    dev = pick_device(device)
    data = load_dataset().to(dev, channels_last=True)
    config = TrainConfig(epochs=epochs, batch_size=batch_size)

    def fresh_model():
        torch.manual_seed(seed)
        return space.build(parsed, data.input_shape, data.num_classes)

    model = fresh_model()
    flops = count_flops(model, data.input_shape)
    ours: list[float] = []
    bare: list[float] = []
    accuracy: list[float] = []
    matmul: list[float] = []
    warmup = TrainConfig(epochs=1, batch_size=batch_size)  # untimed: first runs pay for allocation
    train(fresh_model(), data, warmup, seed=seed, device=dev)
    bare_loop(fresh_model(), data, warmup, seed, dev)
    for r in range(rounds):
        order = ("ours", "bare") if r % 2 == 0 else ("bare", "ours")
        for which in order:
            if which == "ours":
                result = train(fresh_model(), data, config, seed=seed, device=dev)
                ours.append(result.samples_per_s)
                accuracy.append(result.accuracy)
            else:
                bare.append(bare_loop(fresh_model(), data, config, seed, dev))
        matmul.append(matmul_flops_per_second(dev))
        if progress is not None:
            progress(r + 1, rounds)
    ours_median, bare_median = statistics.median(ours), statistics.median(bare)
    peak = statistics.median(matmul)
    return {
        "benchmark": "trainer",
        "genome": genome, "mflops": flops / 1e6, "params": count_params(model),
        "dataset": data.name, "train_samples": len(data.train), "epochs": epochs, "batch_size": batch_size,
        "rounds": rounds, "device": str(dev), "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "ours_samples_per_s": ours_median, "bare_samples_per_s": bare_median,
        "ratio": ours_median / bare_median,
        "ours_all": ours, "bare_all": bare,
        "matmul_gflops": peak / 1e9,
        "mfu_ours": training_flops(flops, ours_median) / peak, "mfu_bare": training_flops(flops, bare_median) / peak,
        "ours_val_accuracy": statistics.median(accuracy),
        "target_ratio": 0.95,
        "note": "ratio = median samples/s of automl.training.train over a bare PyTorch loop doing the "
                "same work; MFU = 3 x forward FLOPs x samples/s / measured fp32 matmul FLOP/s",
    }


# -- engine: search quality on categorical problems, no training ------------------------------

def _levels(genome: dict, n: int) -> "list[float]":
    return [genome[f"x{i}"] / 7 for i in range(n)]


def _zdt(genome: dict, n: int, shape: str) -> dict[str, float]:
    """ZDT1/ZDT2 on a grid of 8 levels per gene: f1 = x0, g from the rest."""
    import math as m

    x = _levels(genome, n)
    g = 1 + 9 * sum(x[1:]) / (n - 1)
    ratio = x[0] / g
    f2 = g * (1 - (m.sqrt(ratio) if shape == "convex" else ratio**2))
    return {"f1": x[0], "f2": f2}


def _nas_like(genome: dict) -> dict[str, float]:
    """A NAS-shaped problem: cost grows with depth x width x kernel per stage, error falls
    with capacity with diminishing returns and penalises bottlenecks between stages."""
    import math as m

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


ENGINE_PROBLEMS = {
    "zdt1": ({f"x{i}": list(range(8)) for i in range(12)}, lambda g: _zdt(g, 12, "convex"),
             [("f1", "min"), ("f2", "min")], [1.1, 11.0]),
    "zdt2": ({f"x{i}": list(range(8)) for i in range(12)}, lambda g: _zdt(g, 12, "concave"),
             [("f1", "min"), ("f2", "min")], [1.1, 11.0]),
    "nas": ({**{f"d{s}": [1, 2, 3, 4] for s in range(5)}, **{f"w{s}": [8, 16, 24, 32, 48] for s in range(5)},
             **{f"k{s}": [3, 5, 7] for s in range(5)}}, _nas_like,
            [("error", "min"), ("cost", "min")], [1.0, 800.0]),
    "nk": ({f"x{i}": list(range(4)) for i in range(12)}, _nk, [("f0", "min"), ("f1", "min")], [0.0, 0.0]),
}
ENGINE_STRATEGIES = ("nsga2", "nsga2-plain", "random", "optuna-nsga2", "optuna-tpe")


def bench_engine(budget: int = 150, seeds: int = 10, strategies=None, problems=None) -> dict[str, Any]:
    """Hypervolume each strategy reaches at equal budget, mean over seeds, per problem.

    ``nsga2-plain`` is nsga2 without surrogate pre-selection (Dvolver's recipe alone).
    """
    from automl.search.api import search
    from automl.core.pareto import Objective, as_minimisation, hypervolume

    strategies = list(strategies or ENGINE_STRATEGIES)
    problems = list(problems or ENGINE_PROBLEMS)
    table: dict[str, dict[str, Any]] = {}
    for name in problems:
        space, evaluate, objectives, reference = ENGINE_PROBLEMS[name]
        parsed = [Objective(*o) for o in objectives]
        table[name] = {}
        for strategy in strategies:
            volumes, seconds = [], []
            for seed in range(seeds):
                started = time.perf_counter()
                if strategy == "nsga2-plain":
                    result = search(space, evaluate, objectives, budget=budget, seed=seed, preselect=1)
                else:
                    result = search(space, evaluate, objectives, budget=budget, seed=seed, strategy=strategy)
                seconds.append(time.perf_counter() - started)
                points = as_minimisation([[c.values[o.name] for o in parsed] for c in result.candidates
                                          if c.values is not None], parsed)
                volumes.append(hypervolume(points, reference))
            table[name][strategy] = {"hypervolume_mean": statistics.mean(volumes),
                                     "hypervolume_std": statistics.pstdev(volumes),
                                     "hypervolumes": volumes, "seconds_mean": statistics.mean(seconds)}
    wins = {name: max(rows, key=lambda s: rows[s]["hypervolume_mean"]) for name, rows in table.items()}
    return {"benchmark": "engine", "budget": budget, "seeds": seeds, "problems": table, "best": wins,
            "note": "hypervolume of all evaluated points (minimisation form) up to each problem's "
                    "reference point; same budget and seeds for every strategy"}


# -- warm starts: inherited children vs children trained from scratch ------------------------

WARM_FRACTIONS = (0.1, 0.2, 0.3, 0.5, 1.0)


def _sample_under(space, rng, limit: float | None, cost) -> Any:
    """A random genome, repaired (as the engine does) until it fits under ``limit`` FLOPs."""
    from automl.search.engine import repair_row

    n_choices = np.array([len(c) for c in space.genes().values()])
    x = rng.integers(n_choices)
    if limit is not None:
        x = repair_row(x, n_choices, lambda row: max(0.0, cost(space.decode(row)) / limit - 1), rng)
    genome = space.decode(x)
    if limit is not None and cost(genome) > limit:
        raise ValueError("no genome under the FLOPs limit")
    return genome


def _mutate(space, genome, k: int, rng, limit: float | None, cost):
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


def _warm_up(space, data, genome, epochs: float = 0.25, seed: int = 0) -> None:
    """An untimed training run: a process's first training pays one-off start-up costs (thread
    pools, kernels) that would otherwise be charged to whatever a benchmark times first."""
    train(space.build(genome, data.input_shape, data.num_classes), data, TrainConfig(epochs=epochs), seed=seed)


def _stratified_parents(space, rng, count: int, limit: float | None, cost) -> list:
    """``count`` genomes spread evenly over log-FLOPs, from near the space's smallest genome up
    to ``limit``: a search compares candidates along its whole front, tiny to large. Each genome
    of a pool of 10 x ``count`` is sampled under its own log-uniform FLOPs cap (plain random
    genomes crowd just under ``limit``); evenly spaced quantiles of the pool are returned."""
    genes = space.genes()
    smallest = cost(space.decode(np.zeros(len(genes), dtype=int)))
    largest = limit if limit is not None else cost(space.decode(np.array([len(c) - 1 for c in genes.values()])))
    low, high = np.log(1.5 * smallest), np.log(largest)
    pool = [_sample_under(space, rng, float(np.exp(rng.uniform(low, high))) if high > low else limit, cost)
            for _ in range(10 * count)]
    sampled = sorted(pool, key=cost)
    return [sampled[int((i + 0.5) * len(sampled) / count)] for i in range(count)]


def bench_warmstart(pairs: int = 10, epochs: float = 1.0, max_flops: float | None = 20e6, seed: int = 0,
                    fractions=WARM_FRACTIONS, default_fraction: float = 0.3, progress=None) -> dict[str, Any]:
    """For parent -> child pairs (parents spread over the FLOPs range, each child mutated in
    1-4 genes as the engine's children are): train the parent for ``epochs``; train the child
    from scratch for ``epochs`` twice (two seeds); train the child inherited from the parent
    (Net2Net) for each fraction of ``epochs``. Report the epochs (and seconds) the inherited
    child needs to reach the scratch child's accuracy, and Kendall's tau between the children
    ranked by inherited and by scratch accuracy - next to the tau of two scratch runs, the
    agreement that seed noise alone allows."""
    from scipy.stats import kendalltau

    space = search_spaces.get("mobile")
    data = load_dataset()
    rng = np.random.default_rng(seed)
    costs: dict = {}

    def cost(genome) -> float:
        if genome not in costs:
            costs[genome] = count_flops(space.build(genome, data.input_shape, data.num_classes), data.input_shape)
        return costs[genome]

    def run(model, budget: float, run_seed: int):
        return train(model, data, TrainConfig(epochs=budget), seed=run_seed)

    rows = []
    for p, parent_genome in enumerate(_stratified_parents(space, rng, pairs, max_flops, cost)):
        child_genome = _mutate(space, parent_genome, 1 + p % 4, rng, max_flops, cost)
        torch.manual_seed(seed + p)
        parent = run(space.build(parent_genome, data.input_shape, data.num_classes), epochs, seed + p)
        scratch = []
        for repeat in range(2):
            torch.manual_seed(seed + 100 * (repeat + 1) + p)
            scratch.append(run(space.build(child_genome, data.input_shape, data.num_classes), epochs,
                               seed + 100 * (repeat + 1) + p))
        warm = {}
        moves: list[str] = []
        for fraction in fractions:
            child, moves = space.inherit(parent.model, parent_genome, child_genome, data.input_shape,
                                         data.num_classes, torch.Generator().manual_seed(seed + p))
            result = run(child, fraction * epochs, seed + 300 + p)
            warm[fraction] = {"accuracy": result.accuracy, "seconds": result.seconds, "epochs": result.epochs}
        target = scratch[0].accuracy
        reached = [f for f in fractions if warm[f]["accuracy"] >= target]
        rows.append({
            "parent": space.format(parent_genome), "child": space.format(child_genome),
            "child_mflops": cost(child_genome) / 1e6, "genes_changed": 1 + p % 4, "moves": moves,
            "parent_accuracy": parent.accuracy, "scratch_accuracy": target,
            "scratch_accuracy_other_seed": scratch[1].accuracy, "scratch_seconds": scratch[0].seconds,
            "scratch_epochs": scratch[0].epochs, "warm": {str(f): v for f, v in warm.items()},
            "epochs_needed": warm[reached[0]]["epochs"] if reached else None,
            "seconds_needed": warm[reached[0]]["seconds"] if reached else None,
        })
        if progress is not None:
            progress(p + 1, pairs)
    needed = [r["epochs_needed"] / r["scratch_epochs"] if r["epochs_needed"] is not None else float("inf")
              for r in rows]
    seconds = [r["seconds_needed"] / r["scratch_seconds"] if r["seconds_needed"] is not None else float("inf")
               for r in rows]
    scratch_acc = [r["scratch_accuracy"] for r in rows]

    def tau(values) -> float:
        return float(kendalltau(values, scratch_acc).statistic)

    return {
        "benchmark": "warmstart", "pairs": pairs, "epochs": epochs, "max_flops": max_flops, "seed": seed,
        "fractions": list(fractions),
        "epochs_ratio_median": statistics.median(needed), "seconds_ratio_median": statistics.median(seconds),
        "reached": sum(r["epochs_needed"] is not None for r in rows),
        "default_fraction": default_fraction,
        "kendall_tau_at_default_fraction": tau([r["warm"][str(default_fraction)]["accuracy"] for r in rows]),
        "kendall_tau_at_full_budget": tau([r["warm"][str(fractions[-1])]["accuracy"] for r in rows]),
        "kendall_tau_scratch_vs_scratch": tau([r["scratch_accuracy_other_seed"] for r in rows]),
        "targets": {"epochs_ratio": 0.3, "kendall_tau": 0.7},
        "rows": rows,
        "note": "epochs_ratio = epochs the inherited child needs to reach the scratch child's accuracy "
                "(smallest tried fraction that does) / scratch epochs, median over pairs; tau = Kendall tau "
                "between children ranked by inherited accuracy and by scratch accuracy; "
                "scratch_vs_scratch = the same for a second scratch seed (the noise ceiling)",
    }


# -- search: strategies on the same wall-clock budget ------------------------------------------

SEARCH_STRATEGIES = ("nsga2-warm", "nsga2", "random", "optuna-nsga2", "optuna-tpe")


def _hypervolume_over_time(candidates, max_flops: float) -> list[tuple[float, float]]:
    """(elapsed seconds, hypervolume of everything finished by then) after each candidate;
    points are (1 - accuracy, FLOPs / max_flops), reference (1, 1): the same for every strategy."""
    from automl.core.pareto import hypervolume

    points, curve = [], []
    for candidate in sorted(candidates, key=lambda c: c.elapsed):
        if candidate.values is not None:
            points.append([1 - candidate.values["accuracy"], candidate.values["flops"] / max_flops])
        curve.append((candidate.elapsed, hypervolume(np.array(points), [1.0, 1.0]) if points else 0.0))
    return curve


def _time_to_reach(curve: list[tuple[float, float]], target: float) -> float | None:
    return next((t for t, hv in curve if hv >= target - 1e-12), None)


def bench_search(time_budget: float = 600.0, seeds: int = 1, epochs: float = 1.0, max_flops: float = 10e6,
                 population: int = 8, strategies=SEARCH_STRATEGIES, progress=None) -> dict[str, Any]:
    """Each strategy searches ``mobile`` on the embedded data for the same wall-clock budget
    (and seeds); report the hypervolume each front reaches and the time each needs to reach
    random search's final hypervolume. ``nsga2-warm`` warm-starts children (Net2Net) for
    0.3x the epochs; every other strategy trains each candidate from scratch."""
    import tempfile
    from pathlib import Path

    from automl.evaluate.cnn import CNNEvaluator
    from automl.core.pareto import DEFAULT_OBJECTIVES
    from automl.store.study import StudyStore

    space = search_spaces.get("mobile")
    data = load_dataset()
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in strategies}
    _warm_up(space, data, space.decode(np.zeros(len(space.genes()), dtype=int)))  # smallest genome: cheap
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(seeds):
            for strategy in strategies:
                warm = strategy == "nsga2-warm"
                name = f"bench-{strategy}-{seed}"
                store = StudyStore.create(name, f"sqlite:///{tmp}/{name}.db", DEFAULT_OBJECTIVES, {},
                                          artifacts=Path(tmp) / f"{name}-artifacts")
                evaluator = CNNEvaluator(space, data, TrainConfig(epochs=epochs), seed=seed,
                                         warm_epochs=round(0.3 * epochs, 4) if warm else None)
                search = Search(space, evaluator, store, budget=10**6, population=population, seed=seed,
                                strategy="nsga2" if strategy.startswith("nsga2") else strategy,
                                violation=evaluator.violation(max_flops, None),
                                known=lambda g, e=evaluator: {"flops": e.cost(g)[0]}, warm_start=warm,
                                time_budget=time_budget)
                result = search.run()
                curve = _hypervolume_over_time(result.candidates, max_flops)
                runs[strategy].append({
                    "seed": seed, "evaluations": len(result.candidates),
                    "warm_started": sum(bool(c.attrs.get("warm_start")) for c in result.candidates),
                    "final_hypervolume": curve[-1][1] if curve else 0.0, "curve": curve,
                })
                if progress is not None:
                    progress(strategy, seed, runs[strategy][-1])
    summary = summarise_search(runs)
    return {"benchmark": "search", "time_budget": time_budget, "seeds": seeds, "epochs": epochs,
            "max_flops": max_flops, "population": population, "summary": summary, "runs": runs,
            "target": {"nsga2-warm time ratio to random": 0.5},
            "note": "hypervolume of (1 - validation accuracy, FLOPs / max_flops) up to (1, 1); time = wall-clock "
                    "seconds from the search's start until its hypervolume first reaches random search's final "
                    "one (None: never within the budget); time_to_nsga2_final: the same for the final hypervolume of "
                    "nsga2 without warm starts"}


def summarise_search(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per strategy: mean final hypervolume and evaluations, the time each run needs to reach
    random search's final hypervolume (and its ratio to random's own time), and, where
    ``nsga2`` ran, the time to reach the final hypervolume of nsga2 without warm starts: the
    comparison that isolates what warm starts add to the search itself."""
    summary: dict[str, Any] = {}
    for reference in ("random", "nsga2"):
        if reference not in runs:
            continue
        targets = {r["seed"]: r["final_hypervolume"] for r in runs[reference]}
        for strategy, rows in runs.items():
            for row in rows:
                row[f"time_to_{reference}_final"] = _time_to_reach(row["curve"], targets[row["seed"]])
    for strategy, rows in runs.items():
        summary[strategy] = {
            "final_hypervolume_mean": statistics.mean(r["final_hypervolume"] for r in rows),
            "evaluations_mean": statistics.mean(r["evaluations"] for r in rows),
        }
        for reference in ("random", "nsga2"):
            if reference not in runs:
                continue
            times = [r[f"time_to_{reference}_final"] for r in rows]
            own = [r[f"time_to_{reference}_final"] for r in runs[reference]]
            summary[strategy][f"time_to_{reference}_final"] = times
            summary[strategy][f"time_ratio_to_{reference}"] = [t / o if t is not None and o else None
                                                               for t, o in zip(times, own)]
    return summary


# -- accelerators: each alone against no accelerator, same candidates and seeds ----------------

NOISE_SEED_OFFSET = 1000


def _front(accuracies, mflops) -> set[int]:
    """Candidates on the (accuracy up, FLOPs down) Pareto front."""
    from automl.core.pareto import non_dominated

    return {int(i) for i in non_dominated(np.column_stack([-np.asarray(accuracies), np.asarray(mflops)]))}


def _agreement(accuracies, reference, mflops) -> dict[str, float]:
    """How well one run's ranking matches the reference: Kendall's tau of the accuracies, and
    the fraction of the reference's Pareto front (accuracy vs FLOPs) that this run's front holds."""
    from scipy.stats import kendalltau

    wanted = _front(reference, mflops)
    return {"kendall_tau": float(kendalltau(accuracies, reference).statistic),
            "front_recall": len(wanted & _front(accuracies, mflops)) / len(wanted)}


def bench_accelerators(candidates: int = 8, epochs: float = 1.0, max_flops: float | None = 20e6, seed: int = 0,
                       names=None, progress=None, seeds: int = 2) -> dict[str, Any]:
    """Train the same candidates (spread over the FLOPs range, in shuffled order as a search's
    population arrives) with no accelerator and with each accelerator alone, interleaved, same
    seeds, in this process. ``names`` are accelerator specs (``subset:select=diverse`` allowed).

    Per accelerator: the ratio of training seconds per candidate against plain training with the
    same seeds (one-off costs included: an encoder trained once and cached is paid by the first
    candidate that needs it), the median ratio of seconds per epoch, the mean accuracy change,
    the theoretical training FLOPs saved, and the agreement of its ranking with plain
    training's: Kendall's tau and the share of the Pareto front kept.

    Every candidate is trained under ``seeds`` seeds, plain and with each method, and rankings
    compare mean accuracies: at a short budget one run is a noisy draw (a candidate's accuracy
    moves by points between seeds), and tau between two single runs mixes what the method
    changes with that noise. Plain training under ``seeds`` other seeds, scored against the
    reference exactly as a method is, gives the ceiling seed noise leaves (``seed_noise``).
    What one search run sees - the method's first seed against plain training's first seed,
    the protocol of Accelerators I - is kept as ``kendall_tau_single_seed``, next to its own
    ceiling ``seed_to_seed_kendall_tau`` (two single plain runs)."""
    import tempfile

    import accelerators
    from accelerators.earlystop import MemoryBoard
    from scipy.stats import kendalltau

    if seeds < 1:
        raise ValueError("seeds must be >= 1")
    space = search_spaces.get("mobile")
    data = load_dataset()
    rng = np.random.default_rng(seed)
    specs = list(names or accelerators.names())
    costs: dict = {}

    def cost(genome) -> float:
        if genome not in costs:
            costs[genome] = count_flops(space.build(genome, data.input_shape, data.num_classes), data.input_shape)
        return costs[genome]

    genomes = _stratified_parents(space, rng, candidates, max_flops, cost)
    genomes = [genomes[i] for i in rng.permutation(len(genomes))]  # a search meets them in no FLOPs order
    runs: dict[str, list[dict[str, Any]]] = {spec: [] for spec in ["none", *specs]}
    noise_runs: list[list[float]] = []  # per candidate: plain accuracies under the other seeds
    # earlystop's peers: one board per spec and seed, as if each seed were a search of its own
    boards = {(spec, k): MemoryBoard() for spec in specs for k in range(seeds)}
    _warm_up(space, data, genomes[0], min(epochs, 0.25), seed)
    config = TrainConfig(epochs=epochs)
    trained_samples = epochs * (len(data.train) // config.batch_size * config.batch_size)  # drop_last batches
    with tempfile.TemporaryDirectory() as cache:  # one-off artifacts (wae's encoder), shared by candidates

        def fit(genome, run_seed: int, spec: str | None = None, k: int = 0):
            chosen = accelerators.parse(spec) if spec else []
            for method in chosen:
                if isinstance(getattr(method, "board", None), MemoryBoard):
                    method.board = boards[spec, k]
            torch.manual_seed(run_seed)
            model = space.build(genome, data.input_shape, data.num_classes)
            return train(model, data, config, seed=run_seed, accelerators=chosen, cache_dir=Path(cache))

        for c, genome in enumerate(genomes):
            plain_flops = training_flops(cost(genome), trained_samples)
            per_seed: dict[str, list[dict[str, Any]]] = {spec: [] for spec in runs}
            for k in range(seeds):
                for spec in runs:
                    result = fit(genome, seed + c + NOISE_SEED_OFFSET * k, spec if spec != "none" else None, k)
                    report = result.accelerators.get(spec.split(":")[0], {})
                    per_seed[spec].append({
                        "accuracy": result.accuracy, "seconds": result.seconds, "epochs": result.epochs,
                        "flops_saved_fraction": report.get("training_flops_saved", 0.0) / plain_flops,
                        "report": report})
            for spec, rows in per_seed.items():
                runs[spec].append({
                    "genome": space.format(genome), "mflops": cost(genome) / 1e6,
                    "accuracy": statistics.mean(r["accuracy"] for r in rows),
                    "accuracies": [r["accuracy"] for r in rows],
                    "seconds": statistics.mean(r["seconds"] for r in rows),
                    "epochs": statistics.mean(r["epochs"] for r in rows),
                    "seconds_per_epoch": statistics.mean(r["seconds"] / r["epochs"] for r in rows),
                    "flops_saved_fraction": statistics.mean(r["flops_saved_fraction"] for r in rows),
                    "report": rows[0]["report"]})
            noise_runs.append([fit(genome, seed + c + NOISE_SEED_OFFSET * k).accuracy
                               for k in range(seeds, 2 * seeds)])
            if progress is not None:
                progress(c + 1, candidates, {spec: rows[-1] for spec, rows in runs.items()})
    base = runs["none"]
    reference = [b["accuracy"] for b in base]
    first_plain = [b["accuracies"][0] for b in base]
    noise = [statistics.mean(accuracies) for accuracies in noise_runs]
    mflops = [b["mflops"] for b in base]
    table = {}
    for spec in specs:
        rows = runs[spec]
        cls = accelerators.get(spec.split(":")[0])
        ratio = sum(r["seconds"] for r in rows) / sum(b["seconds"] for b in base)
        accuracies = [r["accuracy"] for r in rows]
        table[spec] = {
            "kind": cls.kind,
            "seconds_ratio": ratio,
            "measured_speedup": 1 / ratio,
            "seconds_per_epoch_ratio": statistics.median(r["seconds_per_epoch"] / b["seconds_per_epoch"]
                                                         for r, b in zip(rows, base)),
            "accuracy_delta_mean": statistics.mean(a - r for a, r in zip(accuracies, reference)),
            "theoretical_training_flops_saved": statistics.mean(r["flops_saved_fraction"] for r in rows),
            **_agreement(accuracies, reference, mflops),
            "kendall_tau_single_seed": float(kendalltau([r["accuracies"][0] for r in rows],
                                                        first_plain).statistic),
            "reading": _reading(cls.kind, ratio),
        }
    return {"benchmark": "accelerators", "candidates": candidates, "epochs": epochs, "max_flops": max_flops,
            "seed": seed, "seeds": seeds, "table": table, "runs": runs,
            "reference_accuracy": reference, "noise_runs": noise_runs, "noise_accuracy": noise,
            "seed_noise": _agreement(noise, reference, mflops),
            "seed_to_seed_kendall_tau": float(kendalltau([n[0] for n in noise_runs], first_plain).statistic),
            "note": "every candidate is trained under `seeds` seeds, plain and with each method; "
                    "seconds_ratio = training seconds with the accelerator / without, summed over the same "
                    "candidates and seeds (< 1 is faster; one-off costs included); seconds_per_epoch_ratio = "
                    "median over candidates; theoretical_training_flops_saved = fraction of 3 x forward FLOPs x "
                    "samples of the plain run the method skips (real for wall-clock methods, on exploiting "
                    "hardware only for emulated ones); kendall_tau = candidates ranked by mean accuracy over "
                    "the seeds with the method vs plain (the reference); front_recall = share of the "
                    "reference's accuracy-vs-FLOPs Pareto front also on the method's front; seed_noise = plain "
                    "training under as many other seeds, scored the same way (the ceiling seed noise leaves); "
                    "kendall_tau_single_seed = the method's first seed vs plain's first seed (what one search "
                    "run sees), seed_to_seed_kendall_tau = its ceiling (two single plain runs)"}


def _reading(kind: str, ratio: float) -> str:
    if kind == "emulated":
        return f"emulated: costs {ratio:.2f}x the time here; its saving is theoretical only"
    if kind == "wall-clock":
        return (f"measured {1 / ratio:.2f}x speed-up" if ratio < 1 else
                f"no saving on this machine: {ratio:.2f}x the time")
    return f"{kind}: {ratio:.2f}x the time"
