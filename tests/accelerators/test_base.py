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

    def apply(self, event, state):
        pass


class Sparse(Accelerator):
    name = "sparse"
    kind = "emulated"
    order = 60
    options = {"sparsity": Option(0.9, "target sparsity", lambda v: 0 <= v < 1, "0 <= s < 1")}
    conflicts = frozenset({"rounder2"})

    def apply(self, event, state):
        pass

    def state_dict(self):
        return {"sparsity_seen": getattr(self, "sparsity_seen", 0.0)}


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


def test_an_accelerator_must_say_how_it_acts():
    class Silent(Accelerator):
        name = "silent"
        kind = "emulated"

    with pytest.raises(TypeError, match="apply"):
        Silent()


def test_state_round_trips_and_unknown_state_is_refused():
    sparse = Sparse()
    sparse.load_state_dict({"sparsity_seen": 0.25})
    assert sparse.state_dict() == {"sparsity_seen": 0.25}
    with pytest.raises(AutomlError, match="keeps no state 'momentum'"):
        sparse.load_state_dict({"momentum": 1})
    assert Rounder().state_dict() == {}


def test_teardown_removes_the_hooks_and_may_run_twice():
    import torch

    layer = torch.nn.Linear(2, 2)
    rounder = Rounder()
    rounder.hooks.forward_hook(layer, lambda m, i, out: out * 0)
    rounder.hooks.replace_forward(layer, lambda x: x)
    rounder.teardown(None)
    rounder.teardown(None)
    assert not layer._forward_hooks and "forward" not in layer.__dict__
