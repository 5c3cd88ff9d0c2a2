"""Tables for the terminal and for logs: a rich table where it fits, one record a line where not.

A table folded into a narrow terminal splits genome strings and headers over several lines;
one record per line (``name: value`` pairs) keeps every value whole and still greps well.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

RIGHT = "right"
UNLIMITED = 1_000_000


def build_table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]],
                right: Sequence[str] = ()) -> Table:
    """A rich table whose cells never wrap (values are shown whole or not as a table)."""
    table = Table(title=title)
    for name in header:
        table.add_column(name, justify=RIGHT if name in right else "left", no_wrap=True)
    for row in rows:
        table.add_row(*(Text(str(cell)) for cell in row))
    return table


def fits(console: Console, table: Table) -> bool:
    """Whether the table's natural width (measured without the console's limit) fits it."""
    unlimited = console.options.update_width(UNLIMITED)
    return Measurement.get(console, unlimited, table).maximum <= console.width


def records(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """The table as text: its title, then one line per row of ``name: value`` pairs."""
    lines = [title] if title else []
    for row in rows:
        lines.append("  ".join(f"{name}: {cell}" for name, cell in zip(header, row)))
    return lines


def show_table(console: Console, title: str, header: Sequence[str], rows: Sequence[Sequence[str]],
               right: Sequence[str] = ()) -> None:
    """Print a table, or one record per line where the console is too narrow for it."""
    table = build_table(title, header, rows, right)
    if fits(console, table):
        console.print(table)
        return
    for line in records(title, header, rows):
        console.print(Text(line), soft_wrap=True)
