"""Progress of a search on the terminal: rich progress bars (the silent default is in core).

The engine and trainer call these hooks; the CLI picks :class:`RichProgress` unless
``--quiet`` or ``--json`` asks for silence.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from automl.core.progress import SilentProgress


class RichProgress(SilentProgress):
    """Three bars: candidates over the whole budget, the current generation, epochs."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[note]}"), TimeElapsedColumn(),
                                 console=self.console, transient=False)
        self._search = self._generation = self._epochs = None

    def message(self, text: str) -> None:
        self.console.print(text)

    def search_started(self, budget: int, done: int) -> None:
        self.progress.start()
        self._search = self.progress.add_task("candidates", total=budget, completed=done, note="")

    def generation_started(self, generation: int, size: int) -> None:
        if self._generation is not None:
            self.progress.remove_task(self._generation)
        self._generation = self.progress.add_task(f"generation {generation}", total=size, note="")

    def candidate_started(self, label: str) -> None:
        if self._epochs is not None:
            self.progress.remove_task(self._epochs)
        self._epochs = self.progress.add_task("  epochs", total=None, note=label)

    def epoch_finished(self, epoch: int, epochs: int, loss: float) -> None:
        if self._epochs is not None:
            self.progress.update(self._epochs, total=epochs, completed=epoch, note=f"loss {loss:.3f}")

    def candidate_finished(self, label: str, values: dict[str, float] | None, info: dict[str, Any]) -> None:
        for task in (self._search, self._generation):
            if task is not None:
                self.progress.advance(task)
        if info.get("reused"):
            return
        if values is None:
            self.console.print(f"[red]failed[/] {label}: {info.get('reason', '')}")
        else:
            shown = "  ".join(_fmt(k, v) for k, v in values.items())
            self.console.print(f"trial {info.get('trial', '-')}: {label}  {shown}  ({info.get('seconds', 0):.1f}s)")

    def search_finished(self) -> None:
        self.progress.stop()


def _fmt(name: str, value: float) -> str:
    if name == "flops":
        return f"{value / 1e6:.2f} MFLOPs"
    if name == "accuracy":
        return f"accuracy {value:.4f}"
    return f"{name} {value:.4g}"
