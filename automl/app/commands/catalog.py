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
    from automl.reporting.tables import show_table

    show_table(out, "search spaces", ["name", "genes", "architectures", "description"],
               [[r["name"], str(r["genes"]), f"{r['architectures']:.3g}", r["description"]] for r in rows],
               right=["genes", "architectures"])


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
    from automl.reporting.tables import show_table

    # options in full: a default cut short is the one number a user came for
    show_table(out, "accelerators (kind: what it saves)", ["name", "kind", "summary", "options", "paper"],
               [[r["name"], r["kind"], r["summary"], ", ".join(f"{k}={v}" for k, v in r["options"].items()) or "-",
                 r["paper"]] for r in rows])
