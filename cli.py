"""The ``automl`` command line (typer). Thin: it parses, validates, calls the library, prints.

User mistakes print one line on stderr and exit with code 2; Ctrl-C exits with 130 after
the running trial is marked for retry.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from automl import __version__
from automl.config import SearchSettings, load_config, merge, parse_amount
from automl.errors import AutomlError

app = typer.Typer(
    help="Find the CNN architectures with the best accuracy for their cost (NSGA-II over "
         "accuracy vs FLOPs, every evaluation an Optuna trial).",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
bench_app = typer.Typer(help="Benchmarks run side by side in one process, reported as ratios.",
                        no_args_is_help=True)
app.add_typer(bench_app, name="bench")

out = Console()
err = Console(stderr=True)
D = SearchSettings()


def _version(value: bool) -> None:
    if value:
        print(f"automl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True,
                                                 help="Print the version and exit.")) -> None:
    pass


@app.command()
def search(
    space: Optional[str] = typer.Option(None, help=f"Search space (see `automl spaces`). (default: {D.space})"),
    dataset: Optional[str] = typer.Option(None, help="mnist5k (embedded), mnist, fashion-mnist, kmnist, cifar10, "
                                          f"cifar100, svhn, stl10 or imagefolder:PATH. (default: {D.dataset})"),
    data_root: Optional[str] = typer.Option(None, help=f"Folder of torchvision datasets. (default: {D.data_root})"),
    download: Optional[bool] = typer.Option(None, "--download", help="Download a torchvision dataset if missing."),
    study: Optional[str] = typer.Option(None, help="Study name. (default: SPACE-DATASET-TIMESTAMP)"),
    storage: Optional[str] = typer.Option(None, help="Optuna storage URL (sqlite:///..., postgresql://..., "
                                          "journal:///FILE). (default: sqlite:///studies/STUDY.db)"),
    population: Optional[int] = typer.Option(None, help=f"NSGA-II population size. (default: {D.population})"),
    generations: Optional[int] = typer.Option(None, help="Generations (budget = population x generations). "
                                              f"[default: {D.DEFAULT_GENERATIONS}]"),
    budget: Optional[int] = typer.Option(None, help="Number of evaluations (instead of --generations)."),
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
                                           f"[default: {D.strategy}]"),
    resume: Optional[bool] = typer.Option(None, "--resume", help="Continue --study after a crash or Ctrl-C; "
                                          "completed trials are reused, never retrained."),
    preselect: Optional[int] = typer.Option(None, help="nsga2 proposes this many children per child it "
                                            "trains and a surrogate picks; 1 = plain Dvolver NSGA-II. "
                                            f"(default: {D.preselect})"),
    max_flops: Optional[str] = typer.Option(None, help="Only architectures up to this many forward FLOPs "
                                            "(e.g. 20M)."),
    max_params: Optional[str] = typer.Option(None, help="Only architectures up to this many parameters "
                                             "(e.g. 500k)."),
    accelerate: Optional[str] = typer.Option(None, help="Accelerators, e.g. fx16,sparsegrad:sparsity=0.9 "
                                             "(see `automl accelerators`)."),
    device: Optional[str] = typer.Option(None, help=f"auto, cpu or cuda[:N]. (default: {D.device})"),
    config: Optional[Path] = typer.Option(None, help="TOML study config; flags override it."),
    quiet: Optional[bool] = typer.Option(None, "--quiet", "-q", help="No progress bars; print the front only."),
    as_json: Optional[bool] = typer.Option(None, "--json", help="Print the result as JSON only."),
) -> None:
    """Evolve architectures to the Pareto front of validation accuracy vs forward FLOPs."""
    flags = dict(space=space, dataset=dataset, data_root=data_root, download=download, study=study,
                 storage=storage, population=population, generations=generations, budget=budget,
                 epochs=epochs, warm_epochs=warm_epochs,
                 warm_start=False if no_warm_start else None, batch_size=batch_size, lr=lr, seed=seed, strategy=strategy, resume=resume,
                 preselect=preselect,
                 max_flops=parse_amount(max_flops, "--max-flops") if max_flops is not None else None,
                 max_params=parse_amount(max_params, "--max-params") if max_params is not None else None,
                 accelerate=accelerate, device=device, quiet=quiet, json=as_json)
    file_values = load_config(config) if config is not None else {}
    settings = merge(file_values, flags)
    explicit = {k for k, v in flags.items() if v is not None} | set(file_values)

    from automl.progress import RichProgress, SilentProgress
    from automl.runner import run_search, validate_names

    validate_names(settings)
    if not settings.resume and not settings.study:
        settings.study = settings.study_name()
    from automl.summary import front_rows, print_front

    progress = SilentProgress() if settings.quiet or settings.json else RichProgress(err)
    try:
        result = run_search(settings, explicit, progress)
    except KeyboardInterrupt:
        name = settings.study or "STUDY"
        err.print(f"interrupted; continue with: automl search --study {name} --resume")
        raise typer.Exit(130) from None
    store = result.store
    trained = sum(1 for c in result.candidates if not c.reused)
    if settings.json:
        print(json.dumps({"study": store.name, "storage": store.url,
                          "evaluated": len(result.candidates), "trained": trained,
                          "failed": sum(1 for c in result.candidates if c.failed),
                          "front": front_rows(store)}, indent=2, default=str))
        return
    print_front(store, out)
    if not settings.quiet:
        err.print(f"{len(result.candidates)} evaluations ({trained} trained now) in study {store.name!r} "
                  f"({store.url}). Plot: automl pareto --study {store.name}")


@app.command()
def pareto(
    study: Optional[str] = typer.Option(None, help="Study name. (default: the newest study in studies/)"),
    storage: Optional[str] = typer.Option(None, help="Optuna storage URL. (default: sqlite:///studies/STUDY.db)"),
    png: Optional[Path] = typer.Option(None, help="Where to write the plot. (default: studies/STUDY-pareto.png)"),
    as_json: bool = typer.Option(False, "--json", help="Print the front as JSON."),
) -> None:
    """Print a study's Pareto front and plot all its trials with the front highlighted."""
    from automl.study import STUDY_DIR, StudyStore
    from automl.summary import front_rows, plot_front, print_front

    if study is None:
        if storage is not None:
            raise AutomlError("with --storage, name the study with --study")
        databases = sorted(STUDY_DIR.glob("*.db"), key=lambda p: p.stat().st_mtime)
        if not databases:
            raise AutomlError("no study in studies/; name one with --study")
        study = databases[-1].stem
    store = StudyStore.open(study, storage)
    path = plot_front(store, png or STUDY_DIR / f"{store.name}-pareto.png")
    if as_json:
        print(json.dumps({"study": store.name, "png": str(path), "front": front_rows(store)}, indent=2))
        return
    print_front(store, out)
    err.print(f"plot written to {path}")


@app.command()
def lineage(
    study: str = typer.Option(..., help="Study name."),
    storage: Optional[str] = typer.Option(None, help="Optuna storage URL. (default: sqlite:///studies/STUDY.db)"),
    trial: Optional[list[int]] = typer.Option(None, help="Trial(s) whose ancestry to show. (default: the Pareto front)"),
    png: Optional[Path] = typer.Option(None, help="Also draw the ancestry graph to this PNG."),
    as_json: bool = typer.Option(False, "--json", help="Print the graph as JSON (nodes and edges)."),
) -> None:
    """The ancestry of a trial or of the whole Pareto front: warm starts and crossover parents."""
    from automl.lineage import ancestry, lineage_graph, plot_lineage, tree
    from automl.study import StudyStore

    store = StudyStore.open(study, storage)
    graph = lineage_graph(store)
    roots = list(trial) if trial else [t.number for t in store.pareto()]
    missing = [n for n in roots if n not in graph]
    if missing:
        raise AutomlError(f"study {study!r} has no finished trial {missing[0]}")
    sub = ancestry(graph, roots)
    if png is not None:
        plot_lineage(sub, png, store.name)
    if as_json:
        print(json.dumps({"study": store.name, "roots": roots,
                          "nodes": [{"trial": n, **d} for n, d in sub.nodes(data=True)],
                          "edges": [{"parent": a, "child": b, **d} for a, b, d in sub.edges(data=True)]},
                         indent=2))
        return
    for root in roots:
        out.print(tree(sub, root))
    if png is not None:
        err.print(f"lineage drawn to {png}")


@app.command()
def dashboard(
    study: str = typer.Option(..., help="Study name."),
    storage: Optional[str] = typer.Option(None, help="Optuna storage URL. (default: sqlite:///studies/STUDY.db)"),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 exposes it to the network)."),
    port: int = typer.Option(8080, help="Port to listen on (0: any free port)."),
) -> None:
    """Open a study in optuna-dashboard (genes, FLOPs, weights, Pareto front) until Ctrl-C."""
    from automl.dashboard import Dashboard
    from automl.study import StudyStore

    board = Dashboard(StudyStore.open(study, storage), host, port)
    print(f"optuna-dashboard for study {study!r}: {board.url}", flush=True)
    err.print("press Ctrl-C to stop")
    board.serve_forever()
    err.print("dashboard stopped")


@app.command()
def report(
    study: str = typer.Option(..., help="Study name."),
    storage: Optional[str] = typer.Option(None, help="Optuna storage URL. (default: sqlite:///studies/STUDY.db)"),
    out_dir: Path = typer.Option(..., "--out", help="Folder to write the report into."),
    fmt: str = typer.Option("html", "--format", help="html (one self-contained page) or md (Markdown + PNGs)."),
    as_json: bool = typer.Option(False, "--json", help="Also print the report's facts as JSON."),
) -> None:
    """Write a study's report: Pareto front, hypervolume by generation, the Pareto models,
    accelerators and warm starts."""
    from automl.report import FORMATS, report_facts, write_report
    from automl.study import StudyStore

    if fmt not in FORMATS:
        raise AutomlError(f"unknown report format {fmt!r} (known: {', '.join(FORMATS)})")
    store = StudyStore.open(study, storage)
    page = write_report(store, out_dir, fmt)
    if as_json:
        print(json.dumps({"report": str(page), **report_facts(store)}, indent=2, default=str))
        return
    print(f"report written to {page}")


@app.command()
def export(
    study: str = typer.Option(..., help="Study name."),
    storage: Optional[str] = typer.Option(None, help="Optuna storage URL. (default: sqlite:///studies/STUDY.db)"),
    out_dir: Path = typer.Option(..., "--out", help="Folder to export into (one trial-N sub-folder per model)."),
    trial: Optional[list[int]] = typer.Option(None, help="Trial(s) to export. (default: the Pareto front)"),
    fmt: str = typer.Option("safetensors,onnx,pt2", "--format",
                            help="Comma-separated: safetensors, onnx, pt2 (safetensors and card.json always)."),
    retrain_epochs: Optional[float] = typer.Option(None, help="Retrain each architecture from scratch on "
                                                   "train + validation for this many epochs first."),
    device: str = typer.Option("auto", help="auto, cpu or cuda[:N] (retraining and evaluation)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    as_json: bool = typer.Option(False, "--json", help="Print the model cards as JSON only."),
) -> None:
    """Export Pareto-optimal models: safetensors + model card (with test accuracy), ONNX, torch.export."""
    from automl.export import ExportProgress, RichExportProgress, export_study, parse_formats
    from automl.study import StudyStore

    formats = parse_formats(fmt)
    if device not in ("auto", "cpu") and not device.startswith("cuda"):
        raise AutomlError(f"unknown device {device!r} (auto, cpu, cuda, cuda:N)")
    store = StudyStore.open(study, storage)
    progress = ExportProgress() if quiet or as_json else RichExportProgress(err)
    cards = export_study(store, out_dir, trial, formats, retrain_epochs, device, progress)
    if as_json:
        print(json.dumps(cards, indent=2, default=str))
        return
    if quiet:
        for card in cards:
            print(card["folder"])
        return
    from rich.table import Table

    table = Table(title=f"exported from study {store.name!r}")
    for column in ("trial", "genome", "validation", "test", "MFLOPs", "weights"):
        table.add_column(column, overflow="fold", min_width=24 if column == "genome" else None)
    table.add_column("folder", no_wrap=True)
    for card in cards:
        validation = card["validation_accuracy"]
        table.add_row(str(card["trial"]), card["genome"], "-" if validation is None else f"{validation:.4f}",
                      f"{card['test_accuracy']:.4f}", f"{card['mflops']:.2f}", card["weights"], card["folder"])
    out.print(table)


@app.command()
def predict(
    model: Path = typer.Argument(..., help="An exported model folder (OUT/trial-N of automl export)."),
    images: list[Path] = typer.Argument(..., help="Image files to classify."),
    as_json: bool = typer.Option(False, "--json", help="Print the predictions as JSON."),
) -> None:
    """Print the predicted class of each image file (read with PIL, normalised as the card says)."""
    from automl.export import predict as run

    rows = run(model, images)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        print(f"{row['image']}\t{row['class']}\t{row['probability']:.4f}")


@app.command()
def spaces(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """List the registered search spaces."""
    import search_spaces

    rows = [{"name": s.name, "genes": len(s.genes()), "architectures": s.size(), "description": s.description}
            for s in search_spaces.registry]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    table = Table(title="search spaces")
    for column in ("name", "genes", "architectures", "description"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], str(row["genes"]), f"{row['architectures']:.3g}", row["description"])
    out.print(table)


@app.command(name="accelerators")
def list_accelerators(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """List the registered accelerators: kind, what they do, options and paper."""
    import accelerators

    rows = [{"name": a.name, "kind": a.kind, "summary": a.summary, "paper": a.paper,
             "options": {k: o.default for k, o in a.options.items()}, "order": a.order,
             "conflicts": sorted(a.conflicts)} for a in accelerators.registry]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        out.print("no accelerators registered")
        return
    from rich.table import Table

    table = Table(title="accelerators (kind: what it saves)")
    for column in ("name", "kind", "summary", "options", "paper"):
        table.add_column(column)
    for row in rows:
        options = ", ".join(f"{k}={v}" for k, v in row["options"].items())
        table.add_row(row["name"], row["kind"], row["summary"], options, row["paper"])
    out.print(table)


@bench_app.command("trainer")
def bench_trainer(
    genome: Optional[str] = typer.Option(None, help="Mobile genome to train. (default: a mid-size one)"),
    epochs: int = typer.Option(1, min=1, help="Epochs per run."),
    rounds: int = typer.Option(5, min=1, help="Alternating rounds (ours, bare), after a warm-up."),
    batch_size: int = typer.Option(64, min=1, help="Batch size."),
    device: str = typer.Option("auto", help="auto, cpu or cuda[:N]."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Our trainer vs a bare PyTorch loop on the same model and data: samples/s ratio and MFU."""
    from automl.bench import BENCH_GENOME, bench_trainer as run

    def tick(done: int, total: int) -> None:
        err.print(f"round {done}/{total} done")  # stderr: --json output stays clean

    result = run(genome or BENCH_GENOME, epochs=epochs, rounds=rounds, batch_size=batch_size,
                 device=device, progress=tick)
    if as_json:
        print(json.dumps(result, indent=2))
        return
    out.print(f"trainer {result['ours_samples_per_s']:.0f} samples/s, bare loop "
              f"{result['bare_samples_per_s']:.0f} samples/s: ratio {result['ratio']:.3f} "
              f"(target >= {result['target_ratio']}); MFU {result['mfu_ours']:.1%} of "
              f"{result['matmul_gflops']:.1f} GFLOP/s fp32 matmul on {result['device']}")


def _parse_errors() -> tuple[type[BaseException], ...]:
    """Command-line parsing errors: typer's own (vendored click) and, for older typer, click's."""
    errors: list[type[BaseException]] = [typer.TyperException] if hasattr(typer, "TyperException") else []
    try:
        import click

        errors.append(click.ClickException)
    except ImportError:
        pass
    return tuple(errors)


@bench_app.command("engine")
def bench_engine(
    budget: int = typer.Option(150, min=10, help="Evaluations per search."),
    seeds: int = typer.Option(10, min=1, help="Seeds per strategy and problem."),
    strategies: str = typer.Option("nsga2,nsga2-plain,random,optuna-nsga2,optuna-tpe",
                                   help="Comma-separated strategies to compare (nsga2-plain: without "
                                        "surrogate pre-selection)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Search quality at equal budget on categorical problems (no training): hypervolume
    of nsga2 vs random search and Optuna's samplers, mean over seeds."""
    from automl.bench import ENGINE_PROBLEMS, ENGINE_STRATEGIES, bench_engine as run

    chosen = [s.strip() for s in strategies.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in ENGINE_STRATEGIES]
    if unknown:
        raise AutomlError(f"unknown strategy {unknown[0]!r} (known: {', '.join(ENGINE_STRATEGIES)})")
    result = run(budget=budget, seeds=seeds, strategies=chosen, problems=list(ENGINE_PROBLEMS))
    if as_json:
        print(json.dumps(result, indent=2))
        return
    from rich.table import Table

    table = Table(title=f"hypervolume at {budget} evaluations, mean +- std over {seeds} seeds")
    table.add_column("problem")
    for strategy in chosen:
        table.add_column(strategy, justify="right")
    for problem, rows in result["problems"].items():
        table.add_row(problem, *[f"{rows[s]['hypervolume_mean']:.3f} +- {rows[s]['hypervolume_std']:.3f}"
                                 for s in chosen])
    out.print(table)


@bench_app.command("warmstart")
def bench_warmstart(
    pairs: int = typer.Option(10, min=2, help="Parent -> child pairs."),
    epochs: float = typer.Option(1.0, min=0.1, help="Full training budget (parent and scratch child)."),
    max_flops: Optional[str] = typer.Option("20M", help="Sample architectures up to this many FLOPs."),
    seed: int = typer.Option(0, help="Seed of the pairs."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Net2Net warm starts vs training from scratch: epochs to reach the scratch accuracy,
    and whether warm-started accuracies rank children like scratch ones (Kendall tau)."""
    from automl.bench import bench_warmstart as run

    def tick(done: int, total: int) -> None:
        err.print(f"pair {done}/{total} done")  # stderr: --json output stays clean

    limit = parse_amount(max_flops, "--max-flops") if max_flops else None
    result = run(pairs=pairs, epochs=epochs, max_flops=limit, seed=seed, progress=tick)
    if as_json:
        print(json.dumps(result, indent=2))
        return
    out.print(f"inherited children need {result['epochs_ratio_median']:.2f}x the epochs "
              f"({result['seconds_ratio_median']:.2f}x the seconds) of scratch children to reach their accuracy "
              f"(median of {pairs}; {result['reached']} reached it); Kendall tau "
              f"{result['kendall_tau_at_default_fraction']:.2f} at {result['default_fraction']}x epochs, "
              f"{result['kendall_tau_at_full_budget']:.2f} at the full budget, "
              f"{result['kendall_tau_scratch_vs_scratch']:.2f} between two scratch seeds")


@bench_app.command("search")
def bench_search(
    minutes: float = typer.Option(10.0, min=0.1, help="Wall-clock budget of each strategy, in minutes."),
    seeds: int = typer.Option(1, min=1, help="Seeds per strategy."),
    epochs: float = typer.Option(1.0, min=0.1, help="Epochs per candidate trained from scratch."),
    max_flops: str = typer.Option("10M", help="Architectures up to this many FLOPs (keeps candidates quick)."),
    strategies: str = typer.Option(",".join(["nsga2-warm", "nsga2", "random", "optuna-nsga2", "optuna-tpe"]),
                                   help="Comma-separated strategies."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Strategies on the same wall-clock budget: final hypervolume and time to reach random
    search's final hypervolume (nsga2-warm = nsga2 with Net2Net warm starts)."""
    from automl.bench import SEARCH_STRATEGIES, bench_search as run

    chosen = [s.strip() for s in strategies.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SEARCH_STRATEGIES]
    if unknown:
        raise AutomlError(f"unknown strategy {unknown[0]!r} (known: {', '.join(SEARCH_STRATEGIES)})")

    def tick(strategy: str, seed: int, row: dict) -> None:  # stderr: --json output stays clean
        err.print(f"{strategy} seed {seed}: {row['evaluations']} evaluations, "
                  f"hypervolume {row['final_hypervolume']:.4f}")

    result = run(time_budget=60 * minutes, seeds=seeds, epochs=epochs,
                 max_flops=parse_amount(max_flops, "--max-flops"), strategies=chosen, progress=tick)
    if as_json:
        print(json.dumps(result, indent=2))
        return

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


@bench_app.command("accelerators")
def bench_accelerators(
    candidates: int = typer.Option(8, min=2, help="Mobile candidates (spread over the FLOPs range)."),
    epochs: float = typer.Option(1.0, min=0.1, help="Epochs per run."),
    max_flops: Optional[str] = typer.Option("20M", help="Candidates up to this many FLOPs."),
    only: Optional[str] = typer.Option(
        None, help="Comma-separated accelerators, options allowed (e.g. 'subset:select=diverse,rescale'); "
                   "default: all registered."),
    seeds: int = typer.Option(2, min=1, help="Seeds per candidate, plain and with each method; rankings compare "
                                             "mean accuracies (as many other plain seeds give the seed-noise "
                                             "ceiling)."),
    seed: int = typer.Option(0, help="Seed of candidates and training."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Each accelerator alone vs none, same candidates and seeds: training-seconds ratio per
    candidate (one-off costs included), accuracy change, theoretical FLOPs saved, and how well
    the candidates' ranking is kept (Kendall tau, share of the Pareto front) against plain
    training, both averaged over seeds - next to what seed noise alone keeps."""
    import accelerators
    from automl.bench import bench_accelerators as run

    specs = accelerators.split_spec(only) if only else None
    for spec in specs or []:
        accelerators.parse(spec)

    def tick(done: int, total: int, latest: dict) -> None:  # stderr: --json output stays clean
        plain = latest["none"]["seconds"]
        err.print(f"candidate {done}/{total} ({latest['none']['mflops']:.1f} MFLOPs): " + ", ".join(
            f"{name} {row['seconds'] / plain:.2f}x time, {100 * row['accuracy']:.1f}%" for name, row in latest.items()))

    limit = parse_amount(max_flops, "--max-flops") if max_flops else None
    result = run(candidates=candidates, epochs=epochs, max_flops=limit, seed=seed, names=specs, progress=tick,
                 seeds=seeds)
    if as_json:
        print(json.dumps(result, indent=2))
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


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one line and exit code 2 for every user mistake."""
    try:
        code = app(args=argv, standalone_mode=False, prog_name="automl")
    except AutomlError as error:
        print(f"automl: error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
    except typer.Exit as error:
        sys.exit(error.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        print("automl: interrupted", file=sys.stderr)
        sys.exit(130)
    except _parse_errors() as error:
        message = error.format_message() if hasattr(error, "format_message") else str(error)
        print(f"automl: error: {' '.join(message.split())}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
