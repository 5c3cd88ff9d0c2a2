"""Contract tests run over every registered search space."""

import numpy as np
import pytest
import torch

import search_spaces
from automl.errors import InvalidGenomeError

SPACES = search_spaces.names()
SHAPES = [(1, 28, 28), (3, 32, 32), (3, 96, 96)]


@pytest.mark.parametrize("name", SPACES)
def test_space_has_genes_and_a_million_architectures(name):
    space = search_spaces.get(name)
    assert space.name == name and space.description
    assert all(len(c) >= 1 for c in space.genes().values())
    assert space.size() >= 10**6


@pytest.mark.parametrize("name", SPACES)
def test_sampled_genomes_round_trip_through_their_string(name):
    space = search_spaces.get(name)
    rng = np.random.default_rng(0)
    for _ in range(50):
        genome = space.sample(rng)
        text = space.format(genome)
        assert space.parse(text) == genome
        assert space.decode(space.encode(genome)) == genome


@pytest.mark.parametrize("name", SPACES)
def test_same_seed_same_genomes(name):
    space = search_spaces.get(name)
    a = [space.sample(np.random.default_rng(3)) for _ in range(3)]
    b = [space.sample(np.random.default_rng(3)) for _ in range(3)]
    assert a == b


@pytest.mark.parametrize("name", SPACES)
@pytest.mark.parametrize("shape", SHAPES)
def test_every_sampled_genome_builds_and_runs(name, shape):
    space = search_spaces.get(name)
    rng = np.random.default_rng(1)
    for _ in range(3):
        model = space.build(space.sample(rng), shape, 7).eval()
        with torch.no_grad():
            out = model(torch.randn(2, *shape))
        assert out.shape == (2, 7)


@pytest.mark.parametrize("name", SPACES)
def test_validate_names_the_bad_gene_and_value(name):
    space = search_spaces.get(name)
    genome = space.sample(np.random.default_rng(0))
    gene = next(iter(genome))
    bad = genome.replace(**{gene: "not-a-choice"})
    with pytest.raises(InvalidGenomeError, match=f"{gene}.*not-a-choice"):
        space.validate(bad)
