"""``automl studies``: the studies there are, with their storage, size, front and date."""

from __future__ import annotations

import json
from typing import Optional

import typer

from automl.app.commands.console import err, out


def studies(
    storage: Optional[str] = typer.Option(None, help="Optuna storage URL. (default: every sqlite:///studies/*.db)"),
    as_json: bool = typer.Option(False, "--json", help="Print the list as JSON."),
) -> None:
    """List the studies (oldest first; the last one is what --study defaults to)."""
    from automl.reporting.studies import list_studies
    from automl.reporting.tables import show_table

    rows = list_studies(storage)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        err.print(f"no study in {storage or 'studies/'}; start one with `automl search`")
        return
    header = ["study", "storage", "trials", "front", "space", "dataset", "started"]
    cells = [[str(row[h]) if row[h] is not None else "-" for h in header] for row in rows]
    show_table(out, f"{len(rows)} studies", header, cells, right=["trials", "front"])
