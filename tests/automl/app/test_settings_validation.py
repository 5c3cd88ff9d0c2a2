"""Settings are validated, types first, before anything is loaded or created: a settings file of
any content ends in success or one AutomlError, never a TypeError deep inside the search."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from automl.app.config import FIELDS, SearchSettings, load_config, merge
from automl.app.runner import validate_names
from automl.core.errors import AutomlError


@pytest.mark.parametrize("line, message", [
    ("accelerate = 5", "'accelerate' must be a string, got 5"),
    ("dataset = 5", "'dataset' must be a string"),
    ("study = 5", "'study' must be a string"),
    ('device = ["cpu"]', "'device' must be a string, got ['cpu']"),
    ('population = "eight"', "'population' must be an integer, got 'eight'"),
    ("population = 8.5", "'population' must be an integer"),
    ("epochs = true", "'epochs' must be a number, got True"),
    ('download = "yes"', "'download' must be true or false"),
    ("search = 3", "'search' must be a table"),
])
def test_wrong_types_in_a_config_file_are_one_line(tmp_path, line, message):
    (tmp_path / "c.toml").write_text(line + "\n")
    with pytest.raises(AutomlError, match=message.replace("[", r"\[").replace("]", r"\]")) as refused:
        merge(load_config(tmp_path / "c.toml"), {})
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("changes, message", [
    ({"seed": -1}, "--seed must be between 0 and"),
    ({"seed": 2**40}, "--seed must be between 0 and"),
    ({"epochs": math.inf}, "--epochs must be a finite number"),
    ({"lr": math.nan}, "--lr must be a finite number"),
])
def test_out_of_range_numbers_are_refused(changes, message):
    with pytest.raises(AutomlError, match=message):
        merge({}, changes)


def test_a_good_config_still_merges(tmp_path):
    (tmp_path / "c.toml").write_text('[search]\npopulation = 6\nepochs = 2\nmax_flops = "20M"\nseed = 3\n')
    assert merge(load_config(tmp_path / "c.toml"), {}) == SearchSettings(population=6, epochs=2, max_flops=20e6,
                                                                       seed=3)


# -- property: any settings file -> success or AutomlError ---------------------------------

_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**63, max_value=2**63 - 1),
                     st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
                     st.sampled_from(["mobile", "mnist5k", "cpu", "cuda:9", "cudaXYZ", "nsga2", "20M", "fx16",
                                      "imagefolder:/nonexistent", "../up", "eight", ""]))
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=3), max_leaves=6)
_keys = st.one_of(st.sampled_from(sorted(FIELDS)), st.text(min_size=1, max_size=12))


def _toml(value) -> str:
    """A TOML literal (None has none: it is left out by the caller)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value == math.inf else "-inf" if value == -math.inf
                                                  else repr(value))
    if isinstance(value, (int, str)):
        return json.dumps(value) if isinstance(value, str) else str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value if v is not None) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items() if v is not None) + "}"


def _check(path: Path) -> None:
    try:
        chosen = merge(load_config(path), {})
        validate_names(chosen)
    except AutomlError as error:
        assert "\n" not in str(error)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(_keys, _values, max_size=6), st.booleans())
def test_any_settings_file_is_accepted_or_refused_with_one_line(tmp_path, entries, under_table):
    body = "\n".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in entries.items() if v is not None)
    (tmp_path / "s.toml").write_text(("[search]\n" if under_table else "") + body + "\n")
    _check(tmp_path / "s.toml")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200))
def test_any_bytes_as_a_settings_file_are_accepted_or_refused(tmp_path, raw):
    (tmp_path / "s.toml").write_bytes(raw)
    _check(tmp_path / "s.toml")
