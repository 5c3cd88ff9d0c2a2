"""The progress protocol the engine, evaluators and benchmarks report to.

This silent default lives in the kernel so every layer can report progress; the terminal
renderers (rich bars, plain log lines) live in :mod:`automl.app.progress`.
"""

from __future__ import annotations

from typing import Any


class SilentProgress:
    """Reports nothing; subclasses override what they show."""

    def message(self, text: str) -> None: ...

    def search_started(self, budget: int, done: int) -> None: ...

    def generation_started(self, generation: int, size: int) -> None: ...

    def candidate_started(self, label: str) -> None: ...

    def epoch_finished(self, epoch: int, epochs: int, loss: float) -> None: ...

    def candidate_finished(self, label: str, values: dict[str, float] | None, info: dict[str, Any]) -> None: ...

    def search_finished(self) -> None: ...
