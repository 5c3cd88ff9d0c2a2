"""Accelerator combinations as benchmark entries: ``a+b`` trains with both methods at once.

An entry is one accelerator spec (``subset:fraction=0.7``) or several joined by ``+``
(``subset:fraction=0.7+rescale``). A comma separates entries, except where the token after it
is an option (``key=value``): then it continues the spec before it, as in ``--accelerate``.
"""

from __future__ import annotations

import itertools
import re

import accelerators
from automl.core.errors import AutomlError

_JOIN = re.compile(r"\+(?=[A-Za-z_])")  # "+" before a name; "1e+3" in an option value stays whole


def members(entry: str) -> list[str]:
    """``"subset:fraction=0.7+rescale"`` -> ``["subset:fraction=0.7", "rescale"]``."""
    return [m.strip() for m in _JOIN.split(entry) if m.strip()]


def names(entry: str) -> list[str]:
    """The accelerator names in an entry, in the order given."""
    return [m.split(":")[0].strip() for m in members(entry)]


def split_entries(text: str) -> list[str]:
    """``"subset:fraction=0.5,select=diverse+rescale,fx16+sparsegrad"`` ->
    ``["subset:fraction=0.5,select=diverse+rescale", "fx16+sparsegrad"]``."""
    entries: list[list[str]] = []
    for token in (t.strip() for t in text.split(",")):
        if not token:
            continue
        parts = _JOIN.split(token)
        first = parts[0].strip()
        if "=" in first and ":" not in first:
            if not entries:
                raise AutomlError(f"accelerator option {first!r} comes before any accelerator name")
            entries[-1][-1] += "," + first
        else:
            entries.append([first])
        entries[-1].extend(p.strip() for p in parts[1:] if p.strip())
    return ["+".join(entry) for entry in entries]


def parse(entry: str) -> list[accelerators.Accelerator]:
    """Configured accelerators of an entry (refused with AutomlError as ``--accelerate`` is)."""
    return accelerators.parse(",".join(members(entry)))


def kind(entry: str) -> str:
    """The kinds of an entry's methods, joined by ``+`` (one kind for a single method)."""
    return "+".join(accelerators.get(name).kind for name in names(entry))


def combinations(methods: list[str], max_size: int) -> tuple[list[str], dict[str, str]]:
    """Every combination of 2 to ``max_size`` of ``methods`` (single specs), split into those
    that run together and those refused (entry -> the one-line reason)."""
    allowed: list[str] = []
    refused: dict[str, str] = {}
    for size in range(2, max_size + 1):
        for group in itertools.combinations(methods, size):
            entry = "+".join(group)
            try:
                parse(entry)
            except AutomlError as error:
                refused[entry] = str(error)
            else:
                allowed.append(entry)
    return allowed, refused
