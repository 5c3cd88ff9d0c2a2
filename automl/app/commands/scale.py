"""``automl bench scale``: what running a search wide costs - engine and storage overhead per
trial, parallel efficiency of --workers, one candidate on several processes (DDP)."""

from __future__ import annotations

from typing import Optional

import typer

from automl.app.commands.bench import OUT_HELP, finish
from automl.app.commands.console import err, out, verdict
from automl.core.errors import AutomlError


def bench_scale(
    parts: str = typer.Option("overhead,parallel,ddp", help="Comma-separated parts: overhead (engine and storage "
                                                             "cost per trial), parallel (--workers efficiency), ddp "
                                                             "(one candidate on several gloo processes)."),
    trials: int = typer.Option(40, min=2, help="overhead: trials per storage."),
    sleep: float = typer.Option(0.05, min=0.0, help="overhead: seconds the stand-in evaluator sleeps."),
    repeats: int = typer.Option(3, min=1, help="overhead: runs per storage (the best and the median are reported)."),
    postgres: Optional[str] = typer.Option(None, help="overhead: a PostgreSQL URL to measure too (default: "
                                                      "$AUTOML_TEST_POSTGRES; skipped without one)."),
    workers: str = typer.Option("1,2,4,8", help="parallel: worker counts."),
    evaluations: int = typer.Option(16, min=1, help="parallel: evaluations per worker count."),
    parallel_sleep: float = typer.Option(2.0, min=0.0, help="parallel: seconds each evaluation sleeps."),
    hv_budget: int = typer.Option(64, min=8, help="parallel: evaluations of the 1-vs-4-worker search-quality runs."),
    hv_seeds: int = typer.Option(2, min=1, help="parallel: seeds of the search-quality runs."),
    ddp_processes: int = typer.Option(2, min=2, help="ddp: gloo processes of the DDP run."),
    ddp_steps: int = typer.Option(20, min=1, help="ddp: training steps of each run."),
    global_batch: int = typer.Option(64, min=2, help="ddp: global batch (one process trains on all of it, each "
                                                     "DDP process on global batch / processes)."),
    ddp_rounds: int = typer.Option(3, min=1, help="ddp: alternating rounds of both runs (samples/s: the median)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    out_file: Optional[str] = typer.Option(None, "--out", help=OUT_HELP),
) -> None:
    """Engine and storage overhead per trial, parallel efficiency of --workers, and DDP.

    Overhead per trial with a sleeping evaluator (SQLite, journal, PostgreSQL), parallel
    efficiency of --workers 1, 2, 4, 8 against the ideal, and DDP (gloo) against one process:
    same weights after the same steps, samples/s."""
    import os

    from automl.experiments.scale import PARTS, bench_scale as run

    chosen = [p.strip() for p in parts.split(",") if p.strip()]
    unknown = [p for p in chosen if p not in PARTS]
    if unknown or not chosen:
        raise AutomlError(f"unknown part {unknown[0] if unknown else parts!r} (known: {', '.join(PARTS)})")
    try:
        counts = tuple(int(w) for w in workers.split(",") if w.strip())
    except ValueError:
        raise AutomlError(f"--workers {workers!r} must be comma-separated integers such as 1,2,4,8") from None
    if not counts or min(counts) < 1:
        raise AutomlError(f"--workers {workers!r} must be comma-separated integers of at least 1")
    if "ddp" in chosen and global_batch % ddp_processes:
        raise AutomlError(f"--global-batch {global_batch} does not split into {ddp_processes} equal shares")
    if "parallel" in chosen:
        from automl.engine.ray_executor import require_ray

        require_ray()
    options = {"overhead": {"trials": trials, "sleep": sleep, "repeats": repeats,
                            "postgres": postgres or os.environ.get("AUTOML_TEST_POSTGRES")},
               "parallel": {"workers": counts, "sleep": parallel_sleep, "evaluations": evaluations,
                            "hv_budget": hv_budget, "hv_seeds": hv_seeds},
               "ddp": {"processes": ddp_processes, "steps": ddp_steps, "global_batch": global_batch,
                       "rounds": ddp_rounds}}
    result = run(chosen, options, progress=lambda line: err.print(line, markup=False, highlight=False))
    if finish(result, as_json, out_file):
        return
    for line in scale_lines(result):
        out.print(line, markup=False, highlight=False)


def scale_lines(result: dict) -> list[str]:
    """The figures of ``bench scale``, one line each."""
    lines = []
    for kind, row in result.get("overhead", {}).get("storages", {}).items():
        if "skipped" in row:
            lines.append(f"overhead {kind}: skipped ({row['skipped']})")
            continue
        target = f" (target <= {row['target_ms']:g} ms: {verdict(row['met'])})" if row["target_ms"] else ""
        sql = f", {row['sql_statements_per_trial']:.0f} SQL statements" if row.get("sql_statements_per_trial") else ""
        lines.append(f"overhead {kind}: {row['overhead_ms_per_trial']:.1f} ms per trial (best of "
                     f"{len(row['overhead_ms_per_trial_runs'])}, median {row['overhead_ms_per_trial_median']:.1f}"
                     f"{sql}){target}")
    parallel = result.get("parallel")
    if parallel:
        for n, row in parallel["workers"].items():
            lines.append(f"{n} worker(s): {row['wall_s']:.1f} s for {parallel['evaluations']} evaluations of "
                         f"{parallel['sleep_s']:g} s, ideal {row['ideal_s']:.1f} s: efficiency {row['efficiency']:.2f} "
                         f"({row['overhead_s_per_round']:.2f} s of the search's own per round of {n}, "
                         f"{row['search_cpu_s_per_round']:.2f} s of its CPU)")
        lines.append(f"efficiency at the most workers {'meets' if parallel['met'] else 'misses'} the target "
                     f">= {parallel['target_efficiency']}")
        for strategy, runs in parallel["search_quality"]["strategies"].items():
            for run in runs:
                lines.append(f"{strategy} seed {run['seed']}: hypervolume {run['hypervolume_1_worker']:.2f} at 1 "
                             f"worker, {run['hypervolume_4_workers']:.2f} at 4; same front: {run['same_front']}")
    ddp = result.get("ddp")
    if ddp:
        lines.append(f"ddp: {ddp['processes']} gloo processes vs one process, {ddp['steps']} steps "
                     f"({ddp['genome']}): max abs weight difference {ddp['max_abs_weight_difference']:.2e} (target <= "
                     f"{ddp['tolerance']:g}: {verdict(ddp['equivalent'])}); samples/s "
                     f"{ddp['samples_per_s_one_process']:.0f} one process, {ddp['samples_per_s_ddp']:.0f} DDP "
                     f"({ddp['ddp_speedup']:.2f}x)")
    return lines
