"""``automl bench ...``: benchmarks run side by side in one process, reported as ratios."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Optional

import typer

from automl.app.commands.console import err, out, verdict
from automl.core.errors import AutomlError
from automl.app.config import parse_amount

OUT_HELP = "Also write the result with its provenance (command, commit, versions, machine, date) as JSON here."


def finish(result: dict, as_json: bool, out_file: Optional[str]) -> bool:
    """Write ``--out`` (with provenance), print ``--json``; True when the JSON was printed
    (the caller then prints no table)."""
    if out_file:
        from automl.experiments.results import write_result

        written = write_result(out_file, result)
        err.print(f"result written to {written}")
    if as_json:
        print(json.dumps(result, indent=2, default=str))
    return as_json


def candidate_tick(done: int, total: int, latest: dict) -> None:
    """One progress line per candidate on stderr (so --json output stays clean)."""
    plain = latest["none"]["seconds"]
    err.print(f"candidate {done}/{total} ({latest['none']['mflops']:.1f} MFLOPs): " + ", ".join(
        f"{name} {row['seconds'] / plain:.2f}x time, {100 * row['accuracy']:.1f}%" for name, row in latest.items()))


def run_ticker(parts: int = 20) -> Callable[[int, int], None]:
    """``on_run(done, total)`` that prints a line at every ``1/parts`` of the runs: how many,
    the minutes so far and, from their pace, about how many are left."""
    started = time.perf_counter()

    def tick(done: int, total: int) -> None:
        if done % max(1, total // parts) and done != total:
            return
        minutes = (time.perf_counter() - started) / 60
        err.print(f"{done}/{total} runs, {minutes:.1f} min so far, about {minutes / done * (total - done):.0f} "
                  "min left")

    return tick


def bench_trainer(
    genome: Optional[str] = typer.Option(None, help="Mobile genome to train. (default: a mid-size one)"),
    epochs: int = typer.Option(1, min=1, help="Epochs per run."),
    rounds: int = typer.Option(5, min=1, help="Alternating rounds (ours, bare), after a warm-up."),
    batch_size: int = typer.Option(64, min=1, help="Batch size."),
    device: str = typer.Option("auto", help="auto, cpu or cuda[:N]."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    out_file: Optional[str] = typer.Option(None, "--out", help=OUT_HELP),
) -> None:
    """Our trainer vs a bare PyTorch loop on the same model and data: samples/s ratio and MFU."""
    from automl.experiments.trainer import BENCH_GENOME, bench_trainer as run

    def tick(done: int, total: int) -> None:
        err.print(f"round {done}/{total} done")  # stderr: --json output stays clean

    result = run(genome or BENCH_GENOME, epochs=epochs, rounds=rounds, batch_size=batch_size,
                 device=device, progress=tick)
    if finish(result, as_json, out_file):
        return
    out.print(f"trainer {result['ours_samples_per_s']:.0f} samples/s, bare loop "
              f"{result['bare_samples_per_s']:.0f} samples/s: ratio {result['ratio']:.3f} "
              f"(target >= {result['target_ratio']}); MFU {result['mfu_ours']:.1%} of "
              f"{result['matmul_gflops']:.1f} GFLOP/s fp32 matmul on {result['device']}")


def bench_engine(
    budget: int = typer.Option(150, min=10, help="Evaluations per search."),
    seeds: int = typer.Option(10, min=1, help="Seeds per strategy and problem."),
    strategies: str = typer.Option("nsga2,nsga2-plain,dvolver,random,optuna-nsga2,optuna-tpe", show_default=False,
                                   help="Comma-separated, from nsga2, nsga2-plain (without surrogate "
                                        "pre-selection), dvolver (Dvolver's reference recipe), random, "
                                        "optuna-nsga2, optuna-tpe. (default: all six)"),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    out_file: Optional[str] = typer.Option(None, "--out", help=OUT_HELP),
) -> None:
    """Search quality at equal budget on categorical problems (no training).

    Hypervolume of nsga2 vs random search and Optuna's samplers, mean over seeds."""
    from automl.experiments.engine import STRATEGIES, bench_engine as run
    from automl.experiments.problems import PROBLEMS

    chosen = [s.strip() for s in strategies.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in STRATEGIES]
    if unknown:
        raise AutomlError(f"unknown strategy {unknown[0]!r} (known: {', '.join(STRATEGIES)})")
    result = run(budget=budget, seeds=seeds, strategies=chosen, problems=list(PROBLEMS),
                 progress=err.print)  # stderr: --json output stays clean
    if finish(result, as_json, out_file):
        return
    from rich.table import Table

    table = Table(title=f"hypervolume at {budget} evaluations, mean +- std over {seeds} seeds "
                        "(worst seed: how far below the median)")
    table.add_column("problem")
    for strategy in chosen:
        table.add_column(strategy, justify="right")
    for problem, rows in result["problems"].items():
        table.add_row(problem, *[f"{rows[s]['hypervolume_mean']:.3f} +- {rows[s]['hypervolume_std']:.3f}"
                                 f" (worst -{100 * rows[s]['worst_gap']:.1f}%)" for s in chosen])
    out.print(table)
    targets = result["targets"]
    if targets:
        out.print(f"targets for {targets['strategy']} (worst seed at most "
                  f"{100 * targets['worst_gap_at_most']:.0f}% below its median; ahead on every problem): "
                  + ", ".join(f"{k} {verdict(v)}" for k, v in targets["met"].items()))


def bench_warmstart(
    pairs: int = typer.Option(10, min=2, help="Parent -> child pairs."),
    epochs: float = typer.Option(1.0, min=0.1, help="Full training budget (parent and scratch child)."),
    max_flops: Optional[str] = typer.Option("20M", help="Sample architectures up to this many FLOPs."),
    seed: int = typer.Option(0, help="Seed of the pairs."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    out_file: Optional[str] = typer.Option(None, "--out", help=OUT_HELP),
) -> None:
    """Net2Net warm starts vs training from scratch, on parent -> child pairs.

    Epochs the inherited child needs to reach the scratch accuracy, and whether warm-started
    accuracies rank children like scratch ones (Kendall tau)."""
    from automl.experiments.warmstart import bench_warmstart as run

    def tick(done: int, total: int) -> None:
        err.print(f"pair {done}/{total} done")  # stderr: --json output stays clean

    limit = parse_amount(max_flops, "--max-flops") if max_flops else None
    result = run(pairs=pairs, epochs=epochs, max_flops=limit, seed=seed, progress=tick)
    if finish(result, as_json, out_file):
        return
    out.print(f"inherited children need {result['epochs_ratio_median']:.2f}x the epochs "
              f"({result['seconds_ratio_median']:.2f}x the seconds) of scratch children to reach their accuracy "
              f"(median of {pairs}; {result['reached']} reached it); Kendall tau "
              f"{result['kendall_tau_at_default_fraction']:.2f} at {result['default_fraction']}x epochs, "
              f"{result['kendall_tau_at_full_budget']:.2f} at the full budget, "
              f"{result['kendall_tau_scratch_vs_scratch']:.2f} between two scratch seeds")
    met, targets = result["met"], result["targets"]
    out.print(f"targets: epochs ratio <= {targets['epochs_ratio_at_most']} "
              f"{verdict(met['epochs_ratio'])}; tau within {targets['tau_gap_at_most']} of the scratch seeds' "
              f"{verdict(met['tau_at_default_fraction'])} at {result['default_fraction']}x epochs, "
              f"{verdict(met['tau_at_full_budget'])} at the full budget")


def bench_search(
    minutes: Optional[float] = typer.Option(None, min=0.1, help="Wall-clock budget of each run, in minutes; "
                                                                  "runs = strategies x seeds (x 2 with --accelerate), "
                                                                  "so 50 minutes by default. (default: 10 unless "
                                                                  "--evaluations is given)"),
    evaluations: Optional[int] = typer.Option(None, min=1, help="Evaluations per run (with --minutes: whichever "
                                                                "comes first). A budget that does not depend on "
                                                                "the machine's speed."),
    seeds: int = typer.Option(1, min=1, help="Seeds per strategy."),
    epochs: float = typer.Option(1.0, min=0.1, help="Epochs per candidate trained from scratch."),
    max_flops: str = typer.Option("10M", help="Architectures up to this many FLOPs (keeps candidates quick)."),
    strategies: str = typer.Option(",".join(["nsga2-warm", "nsga2", "random", "optuna-nsga2", "optuna-tpe"]),
                                   show_default=False,
                                   help="Comma-separated, from nsga2-warm (nsga2 with Net2Net warm starts), "
                                        "nsga2, random, optuna-nsga2, optuna-tpe. (default: all five)"),
    accelerate: Optional[str] = typer.Option(None, help="Also run every strategy with these accelerators under the "
                                                        "same budget; both runs' final fronts are re-scored by "
                                                        "training their members plain for --epochs."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    out_file: Optional[str] = typer.Option(None, "--out", help=OUT_HELP),
) -> None:
    """Search strategies on the same budget; with --accelerate, plain against accelerated.

    Final hypervolume and time to reach random search's final hypervolume (nsga2-warm = nsga2
    with Net2Net warm starts); with --accelerate, both runs' fronts re-scored by plain training."""
    import accelerators
    from automl.experiments.search import SEARCH_STRATEGIES, bench_search as run

    chosen = [s.strip() for s in strategies.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SEARCH_STRATEGIES]
    if unknown:
        raise AutomlError(f"unknown strategy {unknown[0]!r} (known: {', '.join(SEARCH_STRATEGIES)})")
    accelerators.parse(accelerate)  # refused before anything trains
    if minutes is None and evaluations is None:
        minutes = 10.0

    runs = len(chosen) * seeds * (2 if accelerate else 1)
    budget = f"{minutes:g} min" if minutes is not None else f"{evaluations} evaluations"
    if minutes is not None and evaluations is not None:
        budget += f" or {evaluations} evaluations"
    rescoring = ", then its front re-trained plain under two fresh seeds" if accelerate else ""
    err.print(f"bench search: {runs} runs of {budget} each{rescoring}, after a warm-up "
              "(and, once per machine, the cost model's calibration); a line after each run")

    def tick(strategy: str, seed: int, row: dict) -> None:  # stderr: --json output stays clean
        rescored = f", re-scored {row['rescored_hypervolume']:.4f}" if "rescored_hypervolume" in row else ""
        err.print(f"{strategy} seed {seed}: {row['evaluations']} evaluations, "
                  f"hypervolume {row['final_hypervolume']:.4f}{rescored}")

    result = run(time_budget=60 * minutes if minutes is not None else None, evaluations=evaluations, seeds=seeds,
                 epochs=epochs, max_flops=parse_amount(max_flops, "--max-flops"), strategies=chosen,
                 accelerate=accelerate or None, progress=tick)
    if finish(result, as_json, out_file):
        return
    _print_search(result)


def _print_search(result: dict) -> None:

    def seconds(times) -> str:
        return ", ".join("never" if t is None else f"{t:.0f} s" for t in times)

    for strategy, row in result["summary"].items():
        line = (f"{strategy:14s} hypervolume {row['final_hypervolume_mean']:.4f}  evaluations "
                f"{row['evaluations_mean']:.0f}")
        for reference in ("random", "nsga2"):
            if f"time_to_{reference}_final" in row:
                ratios = ", ".join("-" if r is None else f"{r:.2f}x" for r in row[f"time_ratio_to_{reference}"])
                line += f"  to {reference}'s final: {seconds(row[f'time_to_{reference}_final'])} ({ratios})"
        out.print(line)
    for strategy, row in (result.get("accelerated") or {}).items():
        pairs = ", ".join(f"{plain:.4f} vs {fast:.4f}" for plain, fast in row["rescored_hypervolume"])
        out.print(f"{strategy}: re-scored front hypervolume plain vs + {result['accelerate']}: {pairs} "
                  f"(mean gain {row['rescored_gain_mean']:+.4f})")


def bench_accelerators(
    candidates: int = typer.Option(8, min=2, help="Mobile candidates (spread over the FLOPs range)."),
    epochs: float = typer.Option(1.0, min=0.1, help="Epochs per run."),
    max_flops: Optional[str] = typer.Option("20M", help="Candidates up to this many FLOPs."),
    only: Optional[str] = typer.Option(
        None, help="Comma-separated entries, options allowed, a+b trains both at once (e.g. "
                   "'subset:select=diverse,rescale,fx16+sparsegrad'); default: all registered, each alone."),
    seeds: int = typer.Option(2, min=1, help="Seeds per candidate, plain and with each method; rankings compare "
                                             "mean accuracies (as many other plain seeds give the seed-noise "
                                             "ceiling)."),
    seed: int = typer.Option(0, help="Seed of candidates and training."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    out_file: Optional[str] = typer.Option(None, "--out", help=OUT_HELP),
) -> None:
    """Each accelerator alone vs plain training on the same candidates: speed, accuracy, ranking.

    Training-seconds ratio per candidate (one-off costs included), accuracy change, theoretical
    FLOPs saved, and how well the candidates' ranking is kept (Kendall tau, share of the Pareto
    front) against plain training, both averaged over seeds - next to what seed noise alone keeps."""
    from automl.experiments import combos
    from automl.experiments.accelerators import bench_accelerators as run

    specs = combos.split_entries(only) if only else None
    for spec in specs or []:
        combos.parse(spec)  # refused before anything trains
    limit = parse_amount(max_flops, "--max-flops") if max_flops else None
    result = run(candidates=candidates, epochs=epochs, max_flops=limit, seed=seed, names=specs,
                 progress=candidate_tick, seeds=seeds)
    if finish(result, as_json, out_file):
        return
    from rich import box
    from rich.table import Table

    table = Table(title=f"accelerators vs none: {candidates} candidates, {epochs:g} epoch(s), {seeds} seed(s)",
                  box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True,
                  caption=f"speed-up: plain / accelerated training seconds per candidate, one-off costs in; "
                          f"s/epoch: ratio of seconds per epoch; acc pt: accuracy change; saved: training "
                          f"FLOPs skipped (emulated methods: on hardware that exploits them); tau, front: "
                          f"Kendall tau and share of the Pareto front kept, mean accuracy over {seeds} seed(s) "
                          f"with the method vs plain; tau 1: one run vs one plain run, same seed")
    table.add_column("accelerator", overflow="fold", min_width=10)
    table.add_column("kind", overflow="fold", min_width=8)
    for column in ("speed-up", "s/epoch", "acc pt", "saved", "tau", "front", "tau 1"):
        table.add_column(column, justify="right", no_wrap=True)  # figures never split across lines
    for name, row in result["table"].items():
        table.add_row(name, row["kind"], f"{row['measured_speedup']:.2f}x", f"{row['seconds_per_epoch_ratio']:.2f}",
                      f"{100 * row['accuracy_delta_mean']:+.1f}", f"{row['theoretical_training_flops_saved']:.0%}",
                      f"{row['kendall_tau']:.2f}", f"{row['front_recall']:.0%}",
                      f"{row['kendall_tau_single_seed']:.2f}")
    out.print(table)
    noise = result["seed_noise"]
    out.print(f"seed noise alone (plain training under {seeds} other seed(s)): tau {noise['kendall_tau']:.2f}, "
              f"front kept {noise['front_recall']:.0%}; tau 1 seed {result['seed_to_seed_kendall_tau']:.2f}")


def bench_prunetrain(
    genome: Optional[str] = typer.Option(None, help="Mobile genome to train. (default: a mid-size one, "
                                                    "8.4 MFLOPs)"),
    epochs: int = typer.Option(10, min=1, help="Epochs of each run (PruneTrain is for long training)."),
    accelerate: str = typer.Option("prunetrain", help="The PruneTrain spec, options allowed "
                                                      "(e.g. 'prunetrain:ratio=0.2,every=2,grow=false')."),
    rounds: int = typer.Option(1, min=1, help="Runs of each (plain, prunetrain), alternating which goes first; "
                                              "seconds are medians."),
    seed: int = typer.Option(0, help="Seed of both runs."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    out_file: Optional[str] = typer.Option(None, "--out", help=OUT_HELP),
) -> None:
    """One architecture trained plain and with PruneTrain: FLOPs per epoch, seconds, accuracy.

    Both train --epochs in one process: training FLOPs per epoch (falling as channels are
    removed), total seconds of both and their ratio, accuracy of both, channels kept."""
    from automl.experiments.prunetrain import BENCH_GENOME, bench_prunetrain as run

    def tick(which: str, done: int, total: int) -> None:  # stderr: --json output stays clean
        err.print(f"{which}: epoch {done}/{total} done")

    result = run(genome or BENCH_GENOME, epochs=epochs, spec=accelerate, rounds=rounds, seed=seed, progress=tick)
    if finish(result, as_json, out_file):
        return
    for row in result["per_epoch"]:
        out.print(f"epoch {row['epoch']:3d}: plain {row['plain_gflops']:.1f} GFLOPs {row['plain_seconds']:.1f} s | "
                  f"prunetrain {row['prunetrain_gflops']:.1f} GFLOPs {row['prunetrain_seconds']:.1f} s, "
                  f"{row['prunetrain_mflops']:.2f} MFLOPs, batch {row['prunetrain_batch']}")
    out.print(f"plain {result['plain_seconds']:.1f} s, prunetrain {result['prunetrain_seconds']:.1f} s: "
              f"{result['speedup']:.2f}x ({result['wall_clock_saving']:+.0%} saved), training FLOPs "
              f"{result['training_flops_saving']:.0%} saved; accuracy {100 * result['val_accuracy_delta']:+.1f} pt "
              f"(test {100 * result['test_accuracy_delta']:+.1f} pt); channels {result['channels_before']} -> "
              f"{result['channels_after']}, {result['mflops_before']:.1f} -> {result['mflops_after']:.1f} MFLOPs; "
              f"kind: {result['kind_measured']}")
