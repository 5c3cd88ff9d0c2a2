import pytest

from automl.core.errors import InvalidGenomeError
from automl.core.genome import Genome
from search_spaces.base import DictSpace


def test_genome_is_an_immutable_hashable_mapping():
    g = Genome("s", (("a", 1), ("b", "x")))
    assert dict(g) == {"a": 1, "b": "x"}
    assert g["b"] == "x" and len(g) == 2 and list(g) == ["a", "b"]
    assert hash(g) == hash(Genome("s", (("a", 1), ("b", "x"))))
    assert {g, Genome("s", (("a", 1), ("b", "x")))} == {g}
    with pytest.raises(Exception):
        g.space = "t"  # frozen


def test_key_is_canonical_and_replace_makes_a_new_genome():
    g = Genome("s", (("a", 1), ("b", "x")))
    assert g.key() == "s:a=1,b=x"
    h = g.replace(a=2)
    assert h.key() == "s:a=2,b=x" and g["a"] == 1
    with pytest.raises(KeyError):
        g.replace(c=1)


def test_dict_space_round_trips_and_names_bad_genes():
    space = DictSpace({"a": [1, 2, 3], "b": ["x", "y"], "c": [0.5, 1.0]})
    g = space.make({"a": 2, "b": "y", "c": 1.0})
    assert space.parse(space.format(g)) == g
    assert space.size() == 12
    with pytest.raises(InvalidGenomeError, match="'a'.*7"):
        space.make({"a": 7, "b": "y", "c": 1.0})
    with pytest.raises(InvalidGenomeError, match="no gene 'z'"):
        space.parse("a=1,b=x,c=0.5,z=1")
    with pytest.raises(InvalidGenomeError, match="misses"):
        space.make({"a": 1})


def test_encode_decode_are_inverse():
    import numpy as np

    space = DictSpace({"a": [1, 2, 3], "b": ["x", "y"]})
    rng = np.random.default_rng(0)
    for _ in range(20):
        g = space.sample(rng)
        assert space.decode(space.encode(g)) == g


def test_dict_space_rejects_empty_or_duplicate_choices():
    with pytest.raises(InvalidGenomeError):
        DictSpace({"a": []})
    with pytest.raises(InvalidGenomeError):
        DictSpace({"a": [1, 1]})
