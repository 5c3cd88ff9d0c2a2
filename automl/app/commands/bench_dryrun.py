"""``automl bench dryrun``: `automl search --dry-run`'s prediction against the same search run."""

from __future__ import annotations

from typing import Optional

import typer

from automl.app.commands.bench import OUT_HELP, finish
from automl.app.commands.console import err, out
from automl.app.config import parse_amount
from automl.core.errors import AutomlError


def bench_dryrun(
    budget: int = typer.Option(16, min=2, help="Evaluations of the search."),
    epochs: float = typer.Option(0.3, min=0.05, help="Epochs per candidate trained from scratch (warm-started "
                                                     "children: 0.3 x this)."),
    population: int = typer.Option(6, min=2, help="NSGA-II population size."),
    max_flops: Optional[str] = typer.Option(None, help="Only architectures up to this many FLOPs (e.g. 20M). "
                                                       "(default: no limit, as `automl search`)"),
    seed: int = typer.Option(0, help="Seed of the search."),
    device: str = typer.Option("cpu", help="auto, cpu or cuda[:N]."),
    threads: Optional[int] = typer.Option(None, min=1, help="Torch threads (the calibration is per thread count). "
                                                            "(default: torch's)"),
    clock: str = typer.Option("wall", help="wall, or cpu: predict and measure process CPU time with one torch "
                                           "thread, for a machine other work shares."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    out_file: Optional[str] = typer.Option(None, "--out", help=OUT_HELP),
) -> None:
    """`automl search --dry-run`'s prediction against the same search run right after.

    Mobile on the embedded data, a temporary study: predicted and measured wall-clock, their
    ratio, and the parts compared."""
    import tempfile
    from dataclasses import replace

    from automl.app.config import SearchSettings

    if clock not in ("wall", "cpu"):
        raise AutomlError(f"--clock {clock!r} is not wall or cpu")
    settings = SearchSettings(budget=budget, epochs=epochs, population=population, seed=seed, device=device,
                              max_flops=parse_amount(max_flops, "--max-flops") if max_flops else None).check()
    import torch

    from automl.app.dryrun import predict_search
    from automl.app.runner import run_search, validate_names
    from automl.evaluate.devices import pick_device
    from automl.experiments.dryrun import bench_dryrun as run
    from automl.nn.calibrate import calibration_for

    validate_names(settings)
    _check_reachable(settings)  # an unreachable --max-flops is one line, not minutes of calibration first
    if clock == "cpu":
        threads = 1  # process CPU time counts every thread: one keeps it equal to the search's work
    if threads is not None:
        torch.set_num_threads(threads)
    chosen = pick_device(device)

    def calibrate():
        if clock == "cpu":  # trials record wall-clock predictions: that calibration is cached before the search
            calibration_for(chosen, formats=("fp32",))
        return calibration_for(chosen, refresh=True, clock=clock, formats=("fp32",))  # measured under the load the search meets

    with tempfile.TemporaryDirectory(prefix="automl-bench-dryrun-") as folder:
        real = replace(settings, study="bench-dryrun", storage=f"sqlite:///{folder}/bench-dryrun.db")
        result = run(lambda: predict_search(settings, clock), lambda: run_search(real), calibrate,
                     {**settings.as_dict(), "threads": torch.get_num_threads()}, clock,
                     progress=lambda line: err.print(line))
    if finish(result, as_json, out_file):
        return
    predicted, measured = result["predicted"], result["measured"]
    out.print(f"predicted {predicted['predicted_seconds']:.0f} s, measured {measured['seconds']:.0f} s: ratio "
              f"{result['ratio_predicted_to_measured']:.2f} (target within {result['target_ratio_error']:.0%}); "
              f"training {predicted['training_s']:.0f} vs {measured['training_s']:.0f} s, validation "
              f"{predicted['evaluation_s']:.1f} vs {measured['evaluation_s']:.1f} s, everything else "
              f"{predicted['fixed_s']:.0f} vs {_seconds(measured['fixed_s'])}, warm starts {predicted['warm_started']} vs "
              f"{measured['warm_started']}; load average {result['load_average_1min']['median']:.1f}")


def _check_reachable(settings) -> None:
    """What ``automl search`` refuses at once (a FLOPs limit below the space's smallest model)."""
    import search_spaces
    from automl.app.runner import check_reachable
    from automl.data import load_dataset
    from automl.nn.flops import model_cost

    if settings.max_flops is None and settings.max_params is None:
        return
    space, data = search_spaces.get(settings.space), load_dataset(settings.dataset, settings.data_root)
    cost = lambda genome: model_cost(lambda: space.build(genome, data.input_shape, data.num_classes),  # noqa: E731
                                     data.input_shape)
    check_reachable(space, cost, settings.max_flops, settings.max_params)


def _seconds(value: float | None) -> str:
    return "n/a (CPU clock)" if value is None else f"{value:.0f} s"
