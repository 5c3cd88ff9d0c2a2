"""User-facing errors.

Anything a user can cause (a bad name, path, number or storage URL) raises an
:class:`AutomlError`. The CLI prints its message as one line on stderr and exits with
code 2; a traceback is reserved for bugs.
"""

from __future__ import annotations


class AutomlError(Exception):
    """A mistake the user can fix; its message is one self-contained line."""

    exit_code = 2


class UnknownNameError(AutomlError):
    """An unknown space, dataset, accelerator, strategy or option name."""


class InvalidGenomeError(AutomlError):
    """A genome names an unknown gene or a value outside the gene's choices."""


class DataError(AutomlError):
    """A dataset cannot be found or read."""


class StudyError(AutomlError):
    """A study or storage cannot be opened, created or resumed."""


class CandidateFailed(Exception):
    """One candidate could not be evaluated (e.g. its loss diverged).

    Not a user error: the engine records the trial as FAILED with this reason and goes on.
    """


class CannotInherit(Exception):
    """A space declines a Net2Net move (e.g. across a change of normalisation).

    Not a user error: the evaluator trains the child from scratch and records why.
    """
