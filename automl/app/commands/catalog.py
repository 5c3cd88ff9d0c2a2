"""Commands that list what is registered: ``spaces`` and ``accelerators``."""

from __future__ import annotations

import json
from typing import Optional

import typer

from automl.app.commands.console import out


def spaces(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """List the registered search spaces (`automl spaces show SPACE` describes one)."""
    if ctx.invoked_subcommand is not None:
        return
    import search_spaces

    rows = [{"name": s.name, "genes": len(s.genes()), "architectures": s.size(), "description": s.description}
            for s in search_spaces.registry]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    from automl.reporting.tables import show_table

    show_table(out, "search spaces", ["name", "genes", "architectures", "description"],
               [[r["name"], str(r["genes"]), f"{r['architectures']:.3g}", r["description"]] for r in rows],
               right=["genes", "architectures"])


def show_space(
    space: str = typer.Argument(..., help="A registered space, or package.module:object / path/to/file.py:object."),
    genome: Optional[str] = typer.Option(None, "--genome", help="A genome string or preset name: its FLOPs and params."),
    input_shape: str = typer.Option("1,28,28", "--input", help="Input shape C,H,W (or CxHxW) for FLOPs and params."),
    classes: int = typer.Option(10, "--classes", help="Number of classes of the classifier."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """A space's genes (choices, kind), size and presets; with --genome, its FLOPs and params."""
    import search_spaces
    from search_spaces.describe import describe, parse_shape

    shape = parse_shape(input_shape)
    result = describe(search_spaces.get(space), genome, shape, classes)
    if as_json:
        print(json.dumps(result, indent=2))
        return
    from rich.table import Table

    table = Table(title=f"{result['space']}: {result['description']} ({result['size']:.3g} architectures)")
    for column in ("gene", "kind", "choices"):
        table.add_column(column)
    for row in result["genes"]:
        choices = ", ".join(map(str, row["choices"]))
        if "costs" in row:
            choices += "  (costs " + ", ".join(f"{c:g}" for c in row["costs"]) + ")"
        table.add_row(row["gene"], row["kind"], choices)
    out.print(table)
    for name, text in result["presets"].items():
        out.print(f"preset [bold]{name}[/bold]: {text}")
    if "genome" in result:
        g = result["genome"]
        out.print(f"genome {g['string']}\n  at input {tuple(g['input'])}, {g['classes']} classes: "
                  f"{g['mflops']:.1f} MFLOPs (forward, 2 per multiply-add), {g['params']:,} params")


def list_accelerators(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """List the accelerators usable with --accelerate, and what they last measured.

    Kind, what they do, options, paper, and what they last measured on this kind of device
    (from the results committed under docs/benchmarks/)."""
    import accelerators
    from automl.experiments.measured import describe, for_method, last_measured

    measured = last_measured(_device_kind())
    rows = [{"name": a.name, "kind": a.kind, "summary": a.summary, "paper": a.paper,
             "options": {k: o.default for k, o in a.options.items()}, "order": a.order,
             "conflicts": sorted(a.conflicts), "ddp_safe": getattr(a, "ddp_safe", None),
             "last_measured": for_method(measured, a.name)} for a in accelerators.registry]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        out.print("no accelerators registered")
        return
    from automl.reporting.tables import show_table

    # options in full: a default cut short is the one number a user came for
    show_table(out, "accelerators (kind: what it saves; measured: speed-up, accuracy, rank fidelity)",
               ["name", "kind", "measured here", "summary", "options", "paper"],
               [[r["name"], r["kind"], describe(r["last_measured"]), r["summary"],
                 ", ".join(f"{k}={v}" for k, v in r["options"].items()) or "-", r["paper"]] for r in rows])


def _device_kind() -> str:
    """``cpu``, or the GPU's name when one is visible (torch only if it is installed)."""
    try:
        import torch
    except ImportError:
        return "cpu"
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
