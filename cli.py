"""The ``automl`` command line (typer). Thin: it assembles the commands of
:mod:`automl.app.commands`, turns user mistakes into one line on stderr and exit code 2, and
Ctrl-C into exit code 130 after the running trial is marked for retry.
"""

from __future__ import annotations

import sys
from typing import Optional

import typer

from automl import __version__
from automl.app.commands import (ablate, bench, bench_dryrun, catalog, costmodel, grow, models, retrain, scale,
                                 search, studies, studies_list)
from automl.core.errors import AutomlError

app = typer.Typer(
    help="Find the CNN architectures with the best accuracy for their cost (NSGA-II over "
         "accuracy vs FLOPs, every evaluation an Optuna trial).",
    epilog="Typical flow: automl search -> automl pareto or automl report -> (automl train --trial N, to train longer) -> "
           "automl export --out DIR -> automl predict DIR/trial-N IMAGE.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
bench_app = typer.Typer(help="Benchmarks run side by side in one process, reported as ratios.",
                        no_args_is_help=True)
app.add_typer(bench_app, name="bench")
spaces_app = typer.Typer(help="List the registered search spaces; `show` describes one.",
                         invoke_without_command=True)
app.add_typer(spaces_app, name="spaces")

app.command()(search.search)
app.command()(studies.pareto)
app.command()(studies_list.studies)
app.command()(studies.lineage)
app.command()(studies.dashboard)
app.command()(studies.report)
app.command(name="train")(retrain.train)
app.command()(models.export)
app.command()(models.predict)
app.command()(grow.grow)
spaces_app.callback()(catalog.spaces)
spaces_app.command("show")(catalog.show_space)
app.command(name="accelerators")(catalog.list_accelerators)
app.command()(ablate.ablate)
app.command()(costmodel.costmodel)
app.command()(costmodel.placement)
bench_app.command("trainer")(bench.bench_trainer)
bench_app.command("engine")(bench.bench_engine)
bench_app.command("warmstart")(bench.bench_warmstart)
bench_app.command("search")(bench.bench_search)
bench_app.command("accelerators")(bench.bench_accelerators)
bench_app.command("prunetrain")(bench.bench_prunetrain)
bench_app.command("grow")(grow.bench_grow)
bench_app.command("costmodel")(costmodel.bench_costmodel)
bench_app.command("scale")(scale.bench_scale)
bench_app.command("dryrun")(bench_dryrun.bench_dryrun)


def _version(value: bool) -> None:
    if value:
        print(f"automl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True,
                                                 help="Print the version and exit.")) -> None:
    pass


@bench_app.callback()
def _bench() -> None:
    """Benchmarks run side by side in one process, reported as ratios."""
    from automl.experiments.results import remember_source

    remember_source()  # a result written at the end names the code that started (git: benchmarks only)


def _parse_errors() -> tuple[type[BaseException], ...]:
    """Command-line parsing errors: typer's own (vendored click) and, for older typer, click's."""
    errors: list[type[BaseException]] = [typer.TyperException] if hasattr(typer, "TyperException") else []
    try:
        import click

        errors.append(click.ClickException)
    except ImportError:
        pass
    return tuple(errors)



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
        if message.strip():  # a bare `automl` or `automl bench` printed its help: nothing to add
            print(f"automl: error: {' '.join(message.split())}", file=sys.stderr)
        sys.exit(2)
    except Exception as error:  # a storage fault mid-command (read-only, damaged): one line too
        from automl.store.storage import storage_fault

        fault = storage_fault(error)
        if fault is not None:
            print(f"automl: error: {fault}", file=sys.stderr)
            sys.exit(fault.exit_code)
        if isinstance(error, OSError) and error.filename is not None:  # a path given that cannot be written
            print(f"automl: error: {error.strerror or error}: {error.filename}", file=sys.stderr)
            sys.exit(2)
        raise
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
