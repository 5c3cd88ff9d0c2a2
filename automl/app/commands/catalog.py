"""Commands that list what is registered: ``spaces`` and ``accelerators``."""

from __future__ import annotations

import json

import typer

from automl.app.commands.console import out


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
