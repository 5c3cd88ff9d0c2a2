"""Commands that read a study: ``pareto``, ``lineage``, ``dashboard``, ``report``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from automl.app.commands.console import STUDY_HELP, err, out
from automl.core.errors import AutomlError


def pareto(
    study: Optional[str] = typer.Option(None, help=STUDY_HELP),
    storage: Optional[str] = typer.Option(None, help="Optuna storage URL. (default: sqlite:///studies/STUDY.db)"),
    png: Optional[Path] = typer.Option(None, help="Where to write the plot. (default: STUDY-pareto.png beside "
                                       "the study's database)"),
    as_json: bool = typer.Option(False, "--json", help="Print the front as JSON."),
) -> None:
    """Print a study's Pareto front and plot all its trials with the front highlighted."""
    from automl.reporting.studies import resolve_study
    from automl.store.storage import storage_file
    from automl.reporting.summary import front_rows, plot_front, print_front
    from automl.store.study import STUDY_DIR, StudyStore

    store = StudyStore.open(resolve_study(study, storage), storage)
    home = storage_file(store.url)  # the plot goes beside the study's file, wherever we run from
    path = plot_front(store, png or (home.resolve().parent if home else STUDY_DIR) / f"{store.name}-pareto.png")
    if as_json:
        print(json.dumps({"study": store.name, "png": str(path), "front": front_rows(store)}, indent=2))
        return
    print_front(store, out)
    err.print(f"plot written to {path}")


def lineage(
    study: Optional[str] = typer.Option(None, help=STUDY_HELP),
    storage: Optional[str] = typer.Option(None, help="Optuna storage URL. (default: sqlite:///studies/STUDY.db)"),
    trial: Optional[list[int]] = typer.Option(None, help="Trial whose ancestry to show; repeat for "
                                               "several. (default: the Pareto front)"),
    png: Optional[Path] = typer.Option(None, help="Also draw the ancestry graph to this PNG."),
    as_json: bool = typer.Option(False, "--json", help="Print the graph as JSON (nodes and edges)."),
) -> None:
    """The ancestry of a trial or of the Pareto front (warm starts, crossover parents); a grow study's tree."""
    from automl.reporting.lineage import ancestry, lineage_graph, plot_lineage, tree
    from automl.reporting.studies import resolve_study
    from automl.store.study import StudyStore

    store = StudyStore.open(resolve_study(study, storage), storage)
    from automl.reporting.tree import is_tree_study, tree_json, tree_view

    if is_tree_study(store):  # a grown Tree-CNN: the tree itself, node by node
        if as_json:
            print(json.dumps(tree_json(store), indent=2))
        else:
            out.print(tree_view(store))
        return
    graph = lineage_graph(store)
    roots = list(trial) if trial else [t.number for t in store.pareto()]
    missing = [n for n in roots if n not in graph]
    if missing:
        raise AutomlError(f"study {store.name!r} has no finished trial {missing[0]}")
    sub = ancestry(graph, roots)
    if png is not None:
        plot_lineage(sub, png, store.name)
    if as_json:
        print(json.dumps({"study": store.name, "roots": roots,
                          "nodes": [{"trial": n, **d} for n, d in sub.nodes(data=True)],
                          "edges": [{"parent": a, "child": b, **d} for a, b, d in sub.edges(data=True)]},
                         indent=2))
        return
    if not roots:  # a study with nothing finished yet: say so rather than print nothing
        err.print(f"study {store.name!r} has no finished trials yet: no lineage to show")
    for root in roots:
        out.print(tree(sub, root))
    if png is not None:
        err.print(f"lineage drawn to {png}")


def dashboard(
    study: Optional[str] = typer.Option(None, help=STUDY_HELP),
    storage: Optional[str] = typer.Option(None, help="Optuna storage URL. (default: sqlite:///studies/STUDY.db)"),
    host: str = typer.Option("127.0.0.1", help="Address to listen on; anything but 127.0.0.1 or "
                                       "localhost also needs --allow-remote."),
    port: int = typer.Option(8080, help="Port to listen on (0: any free port)."),
    allow_remote: bool = typer.Option(False, "--allow-remote", help="Permit a --host other than this machine's (no "
                                      "login!); served that way it is read-only unless --allow-writes."),
    allow_writes: bool = typer.Option(False, "--allow-writes", help="With --allow-remote: let anyone who reaches "
                                      "it change or delete the study and its weights."),
) -> None:
    """Open a study in optuna-dashboard (genes, FLOPs, weights, Pareto front) until Ctrl-C."""
    from automl.reporting.dashboard import Dashboard
    from automl.reporting.studies import resolve_study
    from automl.store.study import StudyStore

    study = resolve_study(study, storage)
    board = Dashboard(StudyStore.open(study, storage), host, port, allow_remote, allow_writes)
    if board.remote:
        err.print(f"warning: serving to the network on {host} without login, "
                  + ("READ-WRITE: anyone reaching it can delete the study" if not board.read_only else "read-only"))
    print(f"optuna-dashboard for study {study!r}: {board.url}", flush=True)
    err.print("press Ctrl-C to stop")
    board.serve_forever()
    err.print("dashboard stopped")


def report(
    study: Optional[str] = typer.Option(None, help=STUDY_HELP),
    storage: Optional[str] = typer.Option(None, help="Optuna storage URL. (default: sqlite:///studies/STUDY.db)"),
    out_dir: Path = typer.Option(..., "--out", help="Folder to write the report into."),
    fmt: str = typer.Option("html", "--format", help="html (one self-contained page) or md (Markdown + PNGs)."),
    as_json: bool = typer.Option(False, "--json", help="Also print the report's facts as JSON."),
) -> None:
    """Write a study's report, a page to read and share.

    Pareto front, hypervolume by generation, the Pareto models, accelerators and warm starts."""
    from automl.reporting.report import FORMATS, report_facts, write_report
    from automl.reporting.studies import resolve_study
    from automl.store.study import StudyStore

    if fmt not in FORMATS:
        raise AutomlError(f"unknown report format {fmt!r} (known: {', '.join(FORMATS)})")
    store = StudyStore.open(resolve_study(study, storage), storage)
    page = write_report(store, out_dir, fmt)
    if as_json:
        print(json.dumps({"report": str(page), **report_facts(store)}, indent=2, default=str))
        return
    print(f"report written to {page}")
