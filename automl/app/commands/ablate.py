"""``automl ablate``: which accelerators combine - singles and pairs (triples on request) on
the same candidates, each combination read against what its singles predict."""

from __future__ import annotations

from typing import Optional

import typer

from automl.app.commands.bench import OUT_HELP, candidate_tick, finish, run_ticker
from automl.app.commands.console import err, out
from automl.app.config import parse_amount


def ablate(
    only: Optional[str] = typer.Option(None, help="Comma-separated methods to combine, options allowed (e.g. "
                                                  "'subset:fraction=0.7,rescale,gradapprox'); default: all "
                                                  "registered (about 100 combinations: start with --only)."),
    candidates: int = typer.Option(4, min=2, help="Mobile candidates (spread over the FLOPs range)."),
    seeds: int = typer.Option(2, min=1, help="Seeds per candidate and combination; as many other plain seeds give "
                                             "the seed-noise ceiling."),
    max_size: int = typer.Option(2, min=2, max=3, help="Largest combination: 2 (pairs) or 3 (also triples)."),
    epochs: float = typer.Option(0.5, min=0.01, help="Epochs per run."),
    max_flops: Optional[str] = typer.Option("10M", help="Candidates up to this many FLOPs."),
    seed: int = typer.Option(0, help="Seed of candidates and training."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    png: Optional[str] = typer.Option(None, help="Write a heat-map of the pair matrix to this PNG."),
    out_file: Optional[str] = typer.Option(None, "--out", help=OUT_HELP),
) -> None:
    """Accelerators alone and combined on the same candidates: which combine, and how well.

    Per combination: measured speed-up against the product of its singles', accuracy change
    against their sum, Kendall tau and Pareto front kept against plain training (next to the
    seed-noise ceiling), training FLOPs saved. Refused pairs are listed with the reason."""
    from automl.experiments.ablate import ablate as run, methods_of
    from automl.experiments.results import remember_source

    remember_source()  # --out names the code that started, as the bench commands' results do
    methods_of(only)  # refused before anything trains
    limit = parse_amount(max_flops, "--max-flops") if max_flops else None
    result = run(only=only, candidates=candidates, seeds=seeds, max_size=max_size, epochs=epochs, max_flops=limit,
                 seed=seed, progress=candidate_tick, stage=err.print, on_run=run_ticker())
    if png:
        from automl.experiments.heatmap import pair_heatmap

        pair_heatmap(result, png)
    if finish(result, as_json, out_file):
        return
    _print(result)


def _print(result: dict) -> None:
    from rich import box
    from rich.table import Table

    table = Table(title=f"ablate: {result['candidates']} candidates, {result['epochs']:g} epoch(s), "
                        f"{result['seeds']} seed(s)", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False,
                  collapse_padding=True,
                  caption="speed-up: plain / combined seconds; x singles: product of the singles' speed-ups; "
                          "acc pt: accuracy change; + singles: sum of theirs; tau, front: Kendall tau and share "
                          "of the Pareto front kept vs plain; saved: training FLOPs skipped")
    table.add_column("entry", overflow="fold", min_width=12)
    for column in ("speed-up", "x singles", "acc pt", "+ singles", "tau", "front", "saved"):
        table.add_column(column, justify="right", no_wrap=True)
    for entry, row in result["table"].items():
        combined = "expected_speedup" in row
        table.add_row(entry, f"{row['measured_speedup']:.2f}x",
                      f"{row['expected_speedup']:.2f}x" if combined else "",
                      f"{100 * row['accuracy_delta_mean']:+.1f}",
                      f"{100 * row['expected_accuracy_delta']:+.1f}" if combined else "",
                      f"{row['kendall_tau']:.2f}", f"{row['front_recall']:.0%}",
                      f"{row['theoretical_training_flops_saved']:.0%}")
    out.print(table)
    noise = result["seed_noise"]
    out.print(f"seed noise alone: tau {noise['kendall_tau']:.2f}, front kept {noise['front_recall']:.0%}")
    for entry, reason in result["refused"].items():
        out.print(f"refused {entry}: {reason}")
