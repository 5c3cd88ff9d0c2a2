"""A name -> implementation registry, open to plug-ins through entry points.

Search spaces and accelerators each have one. Third-party packages extend them by declaring
an entry point in the group (``automl.search_spaces`` or ``automl.accelerators``) whose
object is the class (or instance) to register. Built-ins and plug-ins load on the first
lookup, not on import: importing a plug-in package costs nothing until a name is needed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from automl.core.errors import AutomlError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Registered objects by their ``name``; a second object with the same name is refused."""

    def __init__(self, kind: str, entry_point_group: str,
                 prepare: Callable[[object], T] = lambda item: item,  # type: ignore[assignment,return-value]
                 builtins: Callable[[], None] | None = None) -> None:
        self.kind = kind
        self.group = entry_point_group
        self.prepare = prepare
        self.builtins = builtins
        self._items: dict[str, T] = {}
        self._plugins_loaded = False

    def register(self, item: T) -> T:
        """Add ``item`` (usable as a class decorator); duplicate names raise AutomlError."""
        name = getattr(item, "name", "")
        if not name or not isinstance(name, str):
            raise AutomlError(f"a {self.kind} needs a non-empty string `name`")
        if name in self._items and self._items[name] is not item:
            raise AutomlError(f"{self.kind} {name!r} is already registered")
        self._items[name] = item
        return item

    def registered(self, name: str) -> bool:
        """Whether ``name`` is registered already (without loading built-ins or plug-ins)."""
        return name in self._items

    def unregister(self, name: str) -> None:
        self._items.pop(name, None)

    def get(self, name: str) -> T:
        self.load_plugins()
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none registered"
            raise UnknownNameError(f"unknown {self.kind} {name!r} (known: {known})") from None

    def names(self) -> list[str]:
        self.load_plugins()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self.load_plugins()
        return name in self._items

    def __iter__(self) -> Iterator[T]:
        self.load_plugins()
        return iter([self._items[n] for n in sorted(self._items)])

    def load_plugins(self, loader: Callable[[str], list] | None = None) -> None:
        """Register the built-ins, then every entry point of the group, once."""
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        if self.builtins is not None:
            self.builtins()
        for entry in (loader or _entry_points)(self.group):
            try:
                self.register(self.prepare(entry.load()))
            except AutomlError as error:
                raise AutomlError(f"plug-in {entry.value!r} ({self.group}): {error}") from None


def _entry_points(group: str) -> list:
    return list(entry_points(group=group))
