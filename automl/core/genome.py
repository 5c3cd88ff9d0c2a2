"""The genome: an immutable, hashable assignment of one value to every gene of a space."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Genome(Mapping[str, Any]):
    """Gene values in the space's gene order.

    A genome behaves like a read-only dict (``genome["s1_depth"]``, ``dict(genome)``) and is
    hashable, so it can be a set member or dict key. :meth:`key` is its canonical string, the
    identity used to recognise an architecture that was already evaluated. The human-readable
    form (timm-style for ``mobile``) comes from the space: ``space.format(genome)``.
    """

    space: str
    genes: tuple[tuple[str, Any], ...]

    @classmethod
    def from_dict(cls, space: str, values: Mapping[str, Any], order: list[str]) -> Genome:
        return cls(space, tuple((name, values[name]) for name in order))

    def __getitem__(self, name: str) -> Any:
        for gene, value in self.genes:
            if gene == name:
                return value
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return (gene for gene, _ in self.genes)

    def __len__(self) -> int:
        return len(self.genes)

    def __hash__(self) -> int:
        return hash((self.space, self.genes))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Genome):
            return NotImplemented
        return self.space == other.space and self.genes == other.genes

    def replace(self, **changes: Any) -> Genome:
        """A copy with some genes changed (validation is the space's job)."""
        unknown = set(changes) - set(self)
        if unknown:
            raise KeyError(f"unknown genes {sorted(unknown)}")
        return Genome(self.space, tuple((g, changes.get(g, v)) for g, v in self.genes))

    def key(self) -> str:
        """Canonical identity: ``space:gene=value,...`` in gene order."""
        return f"{self.space}:" + ",".join(f"{g}={v}" for g, v in self.genes)

    def __str__(self) -> str:
        return self.key()

    def __repr__(self) -> str:
        return f"Genome({self.key()!r})"
