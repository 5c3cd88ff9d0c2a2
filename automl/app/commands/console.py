"""Where commands print: results to stdout, progress and hints to stderr."""

from __future__ import annotations

from rich.console import Console

out = Console()
err = Console(stderr=True)
