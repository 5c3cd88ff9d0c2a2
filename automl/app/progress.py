"""Progress of a search for people: rich bars on a terminal, plain log lines elsewhere.

The engine and trainer call these hooks (the silent default is in the kernel).
:func:`choose_progress` picks the renderer: bars when stderr is a terminal; one line per
candidate and per tenth of its epochs when it is not (a log file, CI, ``nohup``) or when
``--json`` keeps stdout for the result; nothing with ``--quiet``.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from automl.core.progress import SilentProgress


def choose_progress(console: Console, quiet: bool = False, as_json: bool = False) -> SilentProgress:
    """Silent with --quiet; plain lines when the console is no terminal or stdout holds JSON."""
    if quiet:
        return SilentProgress()
    if as_json or not console.is_terminal:
        return PlainProgress(console)
    return RichProgress(console)


def candidate_line(label: str, values: dict[str, float] | None, info: dict[str, Any]) -> str:
    """One finished candidate, as both renderers print it."""
    if values is None:
        return f"failed trial {info.get('trial', '-')}: {label}: {info.get('reason', '')}"
    shown = "  ".join(_fmt(k, v) for k, v in values.items())
    stopped = "  stopped early" if info.get("pruned") else ""
    return f"trial {info.get('trial', '-')}: {label}  {shown}  ({info.get('seconds', 0):.1f}s){stopped}"


class PlainProgress(SilentProgress):
    """Log lines with the elapsed time: a search's start, each generation, each candidate's
    start and end, and its epochs every tenth of the way (every epoch when there are few)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._started = time.perf_counter()
        self._budget = 0
        self._done = 0
        self._running = 0  # candidates started and not yet finished (several with --workers)
        self._decile = 0

    def _line(self, text: str) -> None:
        elapsed = time.perf_counter() - self._started
        self.console.print(Text(f"[{elapsed:7.1f}s] {text}"), soft_wrap=True)

    def message(self, text: str) -> None:
        self._line(text)

    def search_started(self, budget: int, done: int) -> None:
        self._budget, self._done = budget, done
        self._line(f"search started: {budget} evaluations")

    def generation_started(self, generation: int, size: int) -> None:
        self._line(f"generation {generation}: {size} candidates")

    def candidate_started(self, label: str) -> None:
        self._decile = 0
        self._running += 1
        self._line(f"candidate {self._done + self._running}/{self._budget}: training {label}")

    def epoch_finished(self, epoch: int, epochs: int, loss: float) -> None:
        decile = (10 * epoch) // max(epochs, 1)  # the tenths of the way done: 1 to 10
        if decile > self._decile:
            self._decile = decile
            self._line(f"  epoch {epoch}/{epochs}: loss {loss:.3f}")

    def candidate_finished(self, label: str, values: dict[str, float] | None, info: dict[str, Any]) -> None:
        self._done += 1
        if info.get("reused"):
            self._line(f"candidate {self._done}/{self._budget}: {label} already in the study (reused)")
            return
        self._running = max(0, self._running - 1)
        where = f"  on {info['host']}" if info.get("host") else ""
        self._line(f"candidate {self._done}/{self._budget}: {candidate_line(label, values, info)}{where}")

    def search_finished(self) -> None:
        self._line(f"search finished: {self._done} evaluations")


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
        line = candidate_line(label, values, info)
        self.console.print(Text(line, style="red" if values is None else ""))

    def search_finished(self) -> None:
        self.progress.stop()


def _fmt(name: str, value: float) -> str:
    if name == "flops":
        return f"{value / 1e6:.2f} MFLOPs"
    if name == "accuracy":
        return f"accuracy {value:.4f}"
    return f"{name} {value:.4g}"
