"""Spaces users write: ``package.module:object`` or ``path/to/file.py:object``.

The object is a :class:`~search_spaces.base.SearchSpace` subclass (instantiated without
arguments) or instance. Loading runs the user's code - trusted, as any Python plug-in is. The
space is checked against the contract (:mod:`search_spaces.check`) before anything uses it, so
a broken space is refused with one line naming the broken rule instead of failing mid-search.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from automl.core.errors import AutomlError, UnknownNameError
from search_spaces.base import SearchSpace


def is_spec(name: str) -> bool:
    """Whether ``name`` names a user's space (``module:object``) rather than a registered one."""
    return ":" in name


def load_space(spec: str) -> SearchSpace:
    """The space ``spec`` names, checked against the contract."""
    from search_spaces.check import check_space

    target, _, attribute = spec.rpartition(":")
    if not target or not attribute:
        raise UnknownNameError(f"--space {spec!r} must read package.module:object or path/to/file.py:object")
    module = _module(target, spec)
    value: object = module
    for part in attribute.split("."):
        if not hasattr(value, part):
            raise UnknownNameError(f"--space {spec!r}: {target} has no {attribute!r}")
        value = getattr(value, part)
    if isinstance(value, type) and issubclass(value, SearchSpace):
        with _users_code(spec):
            value = value()
    if not isinstance(value, SearchSpace):
        raise AutomlError(f"--space {spec!r} is a {type(value).__name__}, not a search_spaces.SearchSpace "
                          f"(subclass or instance)")
    check_space(value, spec)
    return value


def _module(target: str, spec: str) -> ModuleType:
    if target.endswith(".py") or "/" in target or "\\" in target:
        return _module_from_file(Path(target), spec)
    try:
        with _users_code(spec):
            return importlib.import_module(target)
    except ModuleNotFoundError as error:
        raise UnknownNameError(f"--space {spec!r}: no module {error.name!r} (is it on PYTHONPATH?)") from None


def _module_from_file(path: Path, spec: str) -> ModuleType:
    if not path.is_file():
        raise UnknownNameError(f"--space {spec!r}: no file {str(path)!r}")
    resolved = path.resolve()
    name = "automl_user_space_" + re.sub(r"\W", "_", str(resolved))
    if name in sys.modules:
        return sys.modules[name]
    module_spec = importlib.util.spec_from_file_location(name, resolved)
    if module_spec is None or module_spec.loader is None:
        raise UnknownNameError(f"--space {spec!r}: {str(path)!r} is not a Python file")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # dataclasses and pickling-free reflection look modules up here
    try:
        with _users_code(spec):
            module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


@contextmanager
def _users_code(spec: str) -> Iterator[None]:
    """Run the user's code; an exception it raises becomes one line that says where (the
    innermost line of theirs), not a traceback through the loader."""
    try:
        yield
    except (AutomlError, ModuleNotFoundError):
        raise
    except Exception as error:
        if isinstance(error, SyntaxError):
            message, where = error.msg, f" ({error.filename}, line {error.lineno})"
        else:
            frames = [f for f in traceback.extract_tb(error.__traceback__)
                      if f.filename != __file__ and not f.filename.startswith("<frozen")]
            message, where = str(error), (f" ({frames[-1].filename}, line {frames[-1].lineno})" if frames else "")
        raise AutomlError(f"--space {spec!r} failed to load: {type(error).__name__}: {message}{where}") from None
