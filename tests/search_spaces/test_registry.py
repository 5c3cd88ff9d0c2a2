from types import SimpleNamespace

import pytest

import search_spaces
from automl.core.errors import AutomlError, UnknownNameError
from automl.core.registry import Registry
from search_spaces.base import DictSpace


class TinySpace(DictSpace):
    def __init__(self):
        super().__init__({"a": [1, 2]}, name="tiny")


def test_unknown_space_lists_the_known_ones():
    with pytest.raises(UnknownNameError, match="mobile"):
        search_spaces.get("nope")


def test_duplicate_names_are_refused():
    with pytest.raises(AutomlError, match="already registered"):
        search_spaces.register(DictSpace({"a": [1]}, name="mobile"))


def test_entry_point_plugins_are_registered():
    registry = Registry("search space", "test.group", lambda item: item() if isinstance(item, type) else item)
    plugin = SimpleNamespace(value="thirdparty:TinySpace", load=lambda: TinySpace)
    registry.load_plugins(loader=lambda group: [plugin])
    assert registry.get("tiny").genes() == {"a": [1, 2]}


def test_a_plugin_that_reuses_a_name_is_refused():
    registry = Registry("search space", "test.group")
    registry.register(DictSpace({"a": [1]}, name="tiny"))
    plugin = SimpleNamespace(value="thirdparty:TinySpace", load=lambda: TinySpace())
    with pytest.raises(AutomlError, match="thirdparty:TinySpace.*already registered"):
        registry.load_plugins(loader=lambda group: [plugin])


def test_the_package_registry_reads_its_entry_point_group(monkeypatch):
    import automl.core.registry as module

    plugin = SimpleNamespace(value="thirdparty:TinySpace", load=lambda: TinySpace)
    monkeypatch.setattr(module, "_entry_points", lambda group: [plugin] if group == "automl.search_spaces" else [])
    monkeypatch.setattr(search_spaces.registry, "_plugins_loaded", False)
    try:
        assert "tiny" in search_spaces.names()
    finally:
        search_spaces.registry.unregister("tiny")
