"""Duplicate elimination against the archive of every genome ever asked for, so each
evaluation is a new architecture."""

from __future__ import annotations

from collections.abc import Iterable


def row(x: Iterable[int]) -> tuple[int, ...]:
    return tuple(int(v) for v in x)


class Archive:
    """The set of rows already asked for (by this process or any sharing the study)."""

    def __init__(self, rows: Iterable[Iterable[int]] = ()) -> None:
        self.rows: set[tuple[int, ...]] = {row(r) for r in rows}

    def __contains__(self, x: Iterable[int]) -> bool:
        return row(x) in self.rows

    def add(self, x: Iterable[int]) -> bool:
        """Add a row; False when it was known already."""
        key = row(x)
        if key in self.rows:
            return False
        self.rows.add(key)
        return True

    def as_list(self) -> list[list[int]]:
        return [list(r) for r in sorted(self.rows)]
