"""Search spaces: the registry and the built-in spaces.

``get(name)`` returns a space instance. Built-ins register on the first lookup, so
``import search_spaces`` imports no torch. Third-party spaces register through the
``automl.search_spaces`` entry-point group (the entry point names a SearchSpace subclass or
instance) or with :func:`register`.
"""

from __future__ import annotations

from automl.core.registry import Registry
from search_spaces.base import DictSpace, SearchSpace


def _instance(space: SearchSpace | type[SearchSpace]) -> SearchSpace:
    return space() if isinstance(space, type) else space


def _register_builtins() -> None:
    from search_spaces.dvolver import DvolverSpace
    from search_spaces.mobile import MobileNormSpace, MobileSpace
    from search_spaces.resnet import ResNetSpace

    for space in (MobileSpace, MobileNormSpace, DvolverSpace, ResNetSpace):
        if not registry.registered(space.name):
            register(space)


registry: Registry[SearchSpace] = Registry("search space", "automl.search_spaces", _instance, _register_builtins)


def register(space: SearchSpace | type[SearchSpace]) -> SearchSpace:
    """Register a space (an instance, or a class that is instantiated without arguments)."""
    return registry.register(_instance(space))


def get(name: str) -> SearchSpace:
    """The registered space called ``name`` (a user-facing error if there is none)."""
    return registry.get(name)


def names() -> list[str]:
    return registry.names()


__all__ = ["DictSpace", "SearchSpace", "get", "names", "register", "registry"]
