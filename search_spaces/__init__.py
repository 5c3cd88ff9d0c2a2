"""Search spaces: the registry and the built-in spaces.

``get(name)`` returns a space instance. Built-ins register on the first lookup, so
``import search_spaces`` imports no torch. Third-party spaces register through the
``automl.search_spaces`` entry-point group (the entry point names a SearchSpace subclass or
instance), with :func:`register`, or by naming their object: ``get("pkg.module:obj")`` or
``get("path/to/file.py:obj")``.
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


_loaded: dict[str, SearchSpace] = {}


def get(name: str) -> SearchSpace:
    """The registered space called ``name`` (a user-facing error if there is none), or a user's
    space named ``package.module:object`` / ``path/to/file.py:object``: loaded, checked against
    the contract and registered (see :mod:`search_spaces.loader`). Every ``--space`` goes here."""
    from search_spaces.loader import is_spec, load_space

    if not is_spec(name):
        return registry.get(name)
    if name not in _loaded:
        space = load_space(name)
        registry.load_plugins()
        if registry.registered(space.name) and isinstance(space, type(registry.get(space.name))):
            space = registry.get(space.name)  # the module registered it itself
        _loaded[name] = register(space)
    return _loaded[name]


def names() -> list[str]:
    return registry.names()


__all__ = ["DictSpace", "SearchSpace", "get", "names", "register", "registry"]
