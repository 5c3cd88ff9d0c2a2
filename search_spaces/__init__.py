"""Search spaces: the registry and the built-in spaces.

``get(name)`` returns a space instance; third-party spaces register through the
``automl.search_spaces`` entry-point group (the entry point names a SearchSpace subclass or
instance).
"""

from __future__ import annotations

from automl.registry import Registry
from search_spaces.base import DictSpace, SearchSpace
from search_spaces.mobile import MobileNormSpace, MobileSpace



def _instance(space: SearchSpace | type[SearchSpace]) -> SearchSpace:
    return space() if isinstance(space, type) else space


registry: Registry[SearchSpace] = Registry("search space", "automl.search_spaces", _instance)


def register(space: SearchSpace | type[SearchSpace]) -> SearchSpace:
    """Register a space (an instance, or a class that is instantiated without arguments)."""
    return registry.register(_instance(space))


def get(name: str) -> SearchSpace:
    """The registered space called ``name`` (a user-facing error if there is none)."""
    return registry.get(name)


def names() -> list[str]:
    return registry.names()


register(MobileSpace)
register(MobileNormSpace)

__all__ = ["DictSpace", "SearchSpace", "MobileSpace", "MobileNormSpace", "get", "names", "register", "registry"]
