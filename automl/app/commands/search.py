"""``automl search``: evolve architectures to the Pareto front."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from automl.app.commands.console import err, out
from automl.app.config import SearchSettings, load_config, merge, parse_amount

D = SearchSettings()


def search(
    space: Optional[str] = typer.Option(None, help=f"Search space (see `automl spaces`). (default: {D.space})"),
    dataset: Optional[str] = typer.Option(None, help="mnist5k (embedded), mnist, fashion-mnist, kmnist, cifar10, "
                                          f"cifar100, svhn, stl10 or imagefolder:PATH. (default: {D.dataset})"),
    data_root: Optional[str] = typer.Option(None, help=f"Folder of torchvision datasets. (default: {D.data_root})"),
    download: Optional[bool] = typer.Option(None, "--download", help="Download a torchvision dataset if missing."),
    study: Optional[str] = typer.Option(None, help="Study name. (default: SPACE-DATASET-TIMESTAMP)"),
    storage: Optional[str] = typer.Option(None, help="Optuna storage URL (sqlite:///..., postgresql://..., "
                                          "journal:///FILE). (default: sqlite:///studies/STUDY.db)"),
    artifacts: Optional[str] = typer.Option(None, help="Folder for trained weights, recorded in the study. "
                                            "(default: beside a SQLite or journal file; needed for a server)"),
    population: Optional[int] = typer.Option(None, help=f"NSGA-II population size. (default: {D.population})"),
    generations: Optional[int] = typer.Option(None, help="Generations (budget = population x generations). "
                                              f"(default: {D.DEFAULT_GENERATIONS})"),
    budget: Optional[int] = typer.Option(None, help="Number of evaluations (instead of --generations). "
                                      "(default: population x generations)"),
    epochs: Optional[float] = typer.Option(None, help=f"Training epochs per candidate (may be fractional). "
                                           f"(default: {D.epochs:g})"),
    warm_epochs: Optional[float] = typer.Option(None, help="Epochs of a child warm-started from its trained "
                                                f"parent (Net2Net). (default: {D.WARM_FRACTION} x --epochs)"),
    no_warm_start: Optional[bool] = typer.Option(None, "--no-warm-start", help="Train every candidate from "
                                                 "scratch."),
    batch_size: Optional[int] = typer.Option(None, help=f"Training batch size. (default: {D.batch_size})"),
    lr: Optional[float] = typer.Option(None, help=f"Peak learning rate (one-cycle). (default: {D.lr})"),
    seed: Optional[int] = typer.Option(None, help=f"Seed: same seed, same genomes. (default: {D.seed})"),
    strategy: Optional[str] = typer.Option(None, help="nsga2, random, optuna-nsga2 or optuna-tpe. "
                                           f"(default: {D.strategy})"),
    recipe: Optional[str] = typer.Option(None, help="With --strategy nsga2 only: nsga2 (ours, Dvolver-inspired) or "
                                         "dvolver (Dvolver's reference recipe; fixes --population 32 and "
                                         "--preselect 1). "
                                         f"(default: {D.recipe})"),
    resume: Optional[bool] = typer.Option(None, "--resume", help="Continue the study named by --study (needed) after "
                                          "a crash or Ctrl-C, with its stored settings; completed trials are "
                                          "reused, never retrained."),
    preselect: Optional[int] = typer.Option(None, help="nsga2 only: propose this many children per child "
                                            "trained; a cheap accuracy predictor (surrogate) picks the one to "
                                            "train. 1 = off. "
                                            f"(default: {D.preselect})"),
    max_flops: Optional[str] = typer.Option(None, help="Only architectures up to this many forward FLOPs "
                                            "(e.g. 20M). (default: no limit)"),
    max_params: Optional[str] = typer.Option(None, help="Only architectures up to this many parameters "
                                             "(e.g. 500k). (default: no limit)"),
    accelerate: Optional[str] = typer.Option(None, help="Accelerators, e.g. fx16,sparsegrad:sparsity=0.9 "
                                             "(see `automl accelerators`)."),
    device: Optional[str] = typer.Option(None, help=f"auto, cpu or cuda[:N]. (default: {D.device})"),
    workers: Optional[int] = typer.Option(None, help="Train this many candidates at once, each a Ray task on a "
                                          "local Ray instance started and stopped by the search (needs Ray, "
                                          "the ray extra). With --ray: at most this many at once on the cluster. "
                                          "(default: one candidate at a time, in this process)"),
    ray: Optional[str] = typer.Option(None, "--ray", help="Send candidates to this Ray cluster: auto (the "
                                      "cluster this machine belongs to) or an address ray.init takes "
                                      "(ray://HOST:10001). Workers need automl installed and --artifacts on a "
                                      "path they all reach."),
    cpus_per_trial: Optional[float] = typer.Option(None, help="CPUs each candidate's Ray task asks for; torch "
                                                   f"threads per candidate. (default: {D.cpus_per_trial:g})"),
    gpus_per_trial: Optional[float] = typer.Option(None, help="GPUs each candidate's Ray task asks for (0.5: two "
                                                   "share one). (default: 1 when --device resolves to a GPU, "
                                                   "else 0)"),
    config: Optional[Path] = typer.Option(None, help="TOML study config; flags override it."),
    quiet: Optional[bool] = typer.Option(None, "--quiet", "-q", help="No progress; print the front only."),
    as_json: Optional[bool] = typer.Option(None, "--json", help="Print the result as JSON (progress lines go to stderr)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the predicted wall-clock of the search "
                                 "(cost model) and exit; nothing trains, nothing is stored."),
) -> None:
    """Evolve architectures to the Pareto front of validation accuracy vs forward FLOPs.

    Then: `automl pareto` or `automl report` to look, `automl export` to ship (see `automl --help`)."""
    flags = dict(space=space, dataset=dataset, data_root=data_root, download=download, study=study,
                 storage=storage, artifacts=artifacts, population=population, generations=generations, budget=budget,
                 epochs=epochs, warm_epochs=warm_epochs,
                 warm_start=False if no_warm_start else None, batch_size=batch_size, lr=lr, seed=seed, strategy=strategy,
                 recipe=recipe, resume=resume,
                 preselect=preselect,
                 max_flops=parse_amount(max_flops, "--max-flops") if max_flops is not None else None,
                 max_params=parse_amount(max_params, "--max-params") if max_params is not None else None,
                 accelerate=accelerate, device=device, workers=workers, ray=ray, cpus_per_trial=cpus_per_trial,
                 gpus_per_trial=gpus_per_trial, quiet=quiet, json=as_json)
    file_values = load_config(config) if config is not None else {}
    settings = merge(file_values, flags)
    explicit = {k for k, v in flags.items() if v is not None} | set(file_values)

    from automl.app.progress import choose_progress
    from automl.app.runner import run_search, validate_names

    validate_names(settings)
    if dry_run:
        from automl.app.dryrun import describe, predict_search

        prediction = predict_search(settings)
        if settings.json:
            print(json.dumps(prediction, indent=2))
        else:
            out.print(describe(prediction))
        return
    if not settings.resume and not settings.study:
        settings.study = settings.study_name()
    from automl.reporting.report import warm_start_savings
    from automl.reporting.summary import front_rows, print_front

    progress = choose_progress(err, settings.quiet, settings.json)
    try:
        result = run_search(settings, explicit, progress)
    except KeyboardInterrupt:
        name = settings.study or "STUDY"
        err.print(f"interrupted; continue with: automl search --study {name}{_storage_flag(settings.storage)} --resume")
        raise typer.Exit(130) from None
    store = result.store
    trained = sum(1 for c in result.candidates if not c.reused)
    if settings.json:
        print(json.dumps({"study": store.name, "storage": store.url,
                          "evaluated": len(result.candidates), "trained": trained,
                          "failed": sum(1 for c in result.candidates if c.failed),
                          "warm_starts": warm_start_savings(store),
                          "front": front_rows(store)}, indent=2, default=str))
        return
    print_front(store, out)
    if not settings.quiet:
        for line in closing_lines(store, len(result.candidates), trained, settings.storage):
            err.print(line, markup=False, highlight=False)


def _storage_flag(storage: str | None) -> str:
    """`` --storage URL`` when the search was given one: a hint without it opens no study."""
    return f" --storage {storage}" if storage else ""


def closing_lines(store, evaluated: int, trained: int, storage: str | None) -> list[str]:
    """What a search ends with: what it did, what warm starts saved, and how to look further."""
    from automl.reporting.report import warm_start_savings

    lines = [f"{evaluated} evaluations ({trained} trained now) in study {store.name!r} ({store.url})."]
    warm = warm_start_savings(store)
    if warm is not None:
        lines.append(warm["sentence"])
    flags = f"--study {store.name}{_storage_flag(storage)}"
    lines.append(f"Next: automl pareto {flags} (plot), automl report {flags} --out report, "
                 f"automl export {flags} --out exported")
    return lines
