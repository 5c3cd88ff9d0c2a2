"""Where commands print: results to stdout, progress and hints to stderr.

Both are :class:`LogConsole`: on a terminal a plain rich console; redirected (a log file, CI,
``nohup``) it never wraps, so a genome string or a table row stays on one line.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, ConsoleDimensions

LOG_WIDTH = 4096  # columns when not a terminal: wide enough that nothing wraps
# every command that reads a study picks the same one when --study is omitted
STUDY_HELP = "Study name. (default: the newest study in studies/, or in --storage)"


def verdict(met: bool) -> str:
    """How every benchmark prints a target's outcome."""
    return "met" if met else "missed"


class LogConsole(Console):
    """A rich console that is full-width and unwrapped when it does not write to a terminal.

    Rich falls back to 80 columns for a file and folds long lines there; a log is read with
    ``grep`` and ``less``, where a folded genome is two half-genomes. The terminal check is
    made at every print, so the same console serves a terminal and a captured stream.
    """

    @property
    def size(self) -> ConsoleDimensions:
        if self.is_terminal:
            return super().size
        return ConsoleDimensions(LOG_WIDTH, super().size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)

    def print(self, *objects: Any, **kwargs: Any) -> None:
        if kwargs.get("soft_wrap") is None:
            kwargs["soft_wrap"] = not self.is_terminal
        super().print(*objects, **kwargs)


out = LogConsole()
err = LogConsole(stderr=True)
