"""Accelerator entries: a+b combinations next to specs with options."""

import pytest

from automl.core.errors import AutomlError
from automl.experiments import combos


def test_entries_split_at_commas_but_keep_options_and_plus_joined_methods():
    text = "subset:fraction=0.5,select=diverse+rescale,fx16+sparsegrad,approx"
    assert combos.split_entries(text) == ["subset:fraction=0.5,select=diverse+rescale", "fx16+sparsegrad", "approx"]
    assert combos.members("subset:fraction=0.5,select=diverse+rescale") == ["subset:fraction=0.5,select=diverse",
                                                                            "rescale"]
    assert combos.names("subset:fraction=0.5,select=diverse+rescale") == ["subset", "rescale"]
    assert combos.split_entries("sparsegrad:sparsity=0.8,threshold=normal") == ["sparsegrad:sparsity=0.8,threshold=normal"]


def test_an_entry_parses_as_accelerate_would():
    chosen = combos.parse("subset:fraction=0.5,select=diverse+rescale")
    assert sorted(a.name for a in chosen) == ["rescale", "subset"]
    assert next(a for a in chosen if a.name == "subset").values["select"] == "diverse"
    with pytest.raises(AutomlError, match="cannot be combined"):
        combos.parse("fx16+amp")
    with pytest.raises(AutomlError, match="before any accelerator"):
        combos.split_entries("fraction=0.5,subset")


def test_combinations_split_into_allowed_and_refused_with_the_reason():
    allowed, refused = combos.combinations(["fx16", "amp", "subset"], 3)
    assert allowed == ["fx16+subset", "amp+subset"]
    assert set(refused) == {"fx16+amp", "fx16+amp+subset"}
    assert all("cannot be combined" in reason for reason in refused.values())
    assert combos.kind("fx16+subset") == "emulated+fidelity"
