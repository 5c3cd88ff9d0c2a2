"""Contract tests run over every registered search space."""

import numpy as np

from automl.core.errors import CannotInherit
import pytest
import torch

import search_spaces
from automl.core.errors import InvalidGenomeError

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


def _randomise_batchnorm(model, generator):
    """Trained-looking BatchNorms: non-trivial scales, shifts and running statistics."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                n = module.num_features
                module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(n, generator=generator) * 0.1)
                module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)


def grow_pair(space, rng):
    """A (parent, child) pair where the child only grows: every gene at the same or a later
    position of its (small-to-large) choice list."""
    a, b = space.encode(space.sample(rng)), space.encode(space.sample(rng))
    return space.decode(np.minimum(a, b)), space.decode(np.maximum(a, b))


def inheriting_pairs(space, rng, shape, generator, pairs, draw=grow_pair):
    """``pairs`` (parent genome, parent, child, moves) that the space inherits; a space may
    decline a pair with CannotInherit (the evaluator then trains from scratch, e.g.
    ``mobile`` across a change of its ``norm`` gene), but not most of them."""
    found, declined = [], 0
    while len(found) < pairs:
        parent_genome, child_genome = draw(space, rng)
        parent = space.build(parent_genome, shape, 10)
        _randomise_batchnorm(parent, generator)
        try:
            child, moves = space.inherit(parent, parent_genome, child_genome, shape, 10, generator)
        except CannotInherit:
            declined += 1
            assert declined <= 3 * pairs, "the space declines almost every pair"
            continue
        found.append((parent_genome, child_genome, parent, child, moves))
    return found


@pytest.mark.parametrize("name", SPACES)
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_growing_children_compute_exactly_what_their_parent_computes(name, shape):
    space = search_spaces.get(name)
    rng = np.random.default_rng(7)
    generator = torch.Generator().manual_seed(0)
    for parent_genome, child_genome, parent, child, moves in inheriting_pairs(space, rng, shape, generator, 4):
        assert moves or parent_genome == child_genome
        x = torch.randn(6, *shape, generator=generator)
        for train_mode in (False, True):
            parent.train(train_mode)
            child.train(train_mode)
            with torch.no_grad():
                difference = (parent(x) - child(x)).abs().max().item()
            assert difference < 1e-5, (space.format(parent_genome), space.format(child_genome), train_mode, moves)


@pytest.mark.parametrize("name", SPACES)
def test_any_pair_inherits_into_a_working_model(name):
    space = search_spaces.get(name)
    rng = np.random.default_rng(3)
    generator = torch.Generator().manual_seed(0)
    pairs = inheriting_pairs(space, rng, (1, 28, 28), generator, 4, lambda s, r: (s.sample(r), s.sample(r)))
    for _, child_genome, _, child, _ in pairs:
        assert sum(p.numel() for p in child.parameters()) == sum(
            p.numel() for p in space.build(child_genome, (1, 28, 28), 10).parameters())
        assert torch.isfinite(child.eval()(torch.randn(2, 1, 28, 28))).all()
