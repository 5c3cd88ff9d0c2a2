"""The accelerator protocol: option parsing, conflicts, run order, registry checks."""

import pytest

import accelerators
from accelerators.base import Accelerator, Option, parse_spec
from automl.core.errors import AutomlError
from automl.train.events import Event


class Rounder(Accelerator):
    name = "rounder"
    kind = "emulated"
    order = 80
    events = frozenset({Event.BEFORE_STEP})
    options = {"bits": Option(16, "word length", lambda v: 2 <= v <= 32, "2..32"),
               "stochastic": Option(True, "stochastic rounding")}


class Sparse(Accelerator):
    name = "sparse"
    kind = "emulated"
    order = 60
    options = {"sparsity": Option(0.9, "target sparsity", lambda v: 0 <= v < 1, "0 <= s < 1")}
    conflicts = frozenset({"rounder2"})


class Rounder2(Rounder):
    name = "rounder2"


LOOKUP = {cls.name: cls for cls in (Rounder, Sparse, Rounder2)}


def lookup(name):
    if name not in LOOKUP:
        raise AutomlError(f"unknown accelerator {name!r}")
    return LOOKUP[name]


def test_spec_parses_names_options_and_sorts_by_order():
    chosen = parse_spec("rounder:bits=8,stochastic=false,sparse:sparsity=0.5", lookup)
    assert [a.name for a in chosen] == ["sparse", "rounder"]
    assert chosen[1].values == {"bits": 8, "stochastic": False}
    assert chosen[0].spec() == "sparse:sparsity=0.5"
    assert parse_spec("", lookup) == []


@pytest.mark.parametrize("spec, message", [
    ("rounder:bits=40", "out of range"),
    ("rounder:bits=eight", "not a int"),
    ("rounder:width=3", "no option 'width'"),
    ("bits=3", "before any accelerator"),
    ("rounder,rounder", "named twice"),
    ("sparse,rounder2", "cannot be combined"),
    ("warp", "unknown accelerator"),
])
def test_bad_specs_are_user_errors(spec, message):
    with pytest.raises(AutomlError, match=message):
        parse_spec(spec, lookup)


def test_registry_checks_the_kind():
    class Vague(Accelerator):
        name = "vague"
        kind = "fast"

    with pytest.raises(AutomlError, match="kinds are"):
        accelerators.register(Vague)


def test_match_defaults_to_declared_events():
    rounder = Rounder()
    assert rounder.match(Event.BEFORE_STEP, None) and not rounder.match(Event.LOSS, None)
