"""Contract tests run over every registered search space."""

import numpy as np
import pytest
import torch

import search_spaces
from automl.core.errors import CannotInherit, InvalidGenomeError
from automl.nn import net2net

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
    """A (parent, child) pair where the child only grows: every ordinal gene at the same or a
    later position of its (small-to-large) choice list, nominal genes (operations) unchanged."""
    a, b = space.encode(space.sample(rng)), space.encode(space.sample(rng))
    nominal = np.array([space.gene_kinds()[g] == "nominal" for g in space.genes()])
    return space.decode(np.minimum(a, b)), space.decode(np.where(nominal, np.minimum(a, b), np.maximum(a, b)))


def inheriting_pairs(space, rng, shape, generator, pairs, draw=grow_pair, exact_only=False):
    """``pairs`` (parent genome, child genome, parent, child, moves) that the space inherits; a
    space may decline a pair with CannotInherit (the evaluator then trains from scratch, e.g.
    ``mobile`` across a change of its ``norm`` gene), but not most of them. ``exact_only``
    skips pairs with a move labelled not function-preserving."""
    found, skipped = [], 0
    while len(found) < pairs:
        parent_genome, child_genome = draw(space, rng)
        parent = space.build(parent_genome, shape, 10)
        _randomise_batchnorm(parent, generator)
        try:
            child, moves = space.inherit(parent, parent_genome, child_genome, shape, 10, generator)
        except CannotInherit:
            child, moves = None, None
        if child is None or (exact_only and any(map(net2net.is_lossy, moves))):
            skipped += 1
            assert skipped <= 8 * pairs, "the space declines (or cannot keep the function of) almost every pair"
            continue
        found.append((parent_genome, child_genome, parent, child, moves))
    return found


def _max_difference(parent, child, x, train_mode=False):
    """Largest output difference, relative to the outputs' scale where that exceeds 1 (deep
    nets with trained-looking BatchNorms reach logits in the hundreds, where float32 sums
    carry errors of 1e-5 on their own)."""
    parent.train(train_mode)
    child.train(train_mode)
    with torch.no_grad():
        expected = parent(x)
        return ((expected - child(x)).abs().max() / expected.abs().max().clamp(min=1.0)).item()


@pytest.mark.parametrize("name", SPACES)
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_growing_children_compute_exactly_what_their_parent_computes(name, shape):
    """Growth (ordinal genes up) keeps the function in eval mode wherever the space does not
    label a move as not function-preserving (dvolver's extra cells are)."""
    space = search_spaces.get(name)
    rng = np.random.default_rng(7)
    generator = torch.Generator().manual_seed(0)
    for parent_genome, child_genome, parent, child, moves in inheriting_pairs(space, rng, shape, generator, 3,
                                                                               exact_only=True):
        assert moves or parent_genome == child_genome
        x = torch.randn(6, *shape, generator=generator)
        difference = _max_difference(parent, child, x)
        assert difference < 1e-5, (space.format(parent_genome), space.format(child_genome), moves)


@pytest.mark.parametrize("name", SPACES)
def test_moves_without_a_lossy_label_keep_the_function(name):
    """Any pair, also across nominal genes: unlabelled moves are exact (eval mode), so a label
    is what tells the evaluator and the lineage that a warm start is only approximate."""
    space = search_spaces.get(name)
    rng = np.random.default_rng(11)
    generator = torch.Generator().manual_seed(1)
    pairs = inheriting_pairs(space, rng, (1, 28, 28), generator, 4, lambda s, r: (s.sample(r), s.sample(r)))
    for parent_genome, child_genome, parent, child, moves in pairs:
        if not any(map(net2net.is_lossy, moves)):
            x = torch.randn(4, 1, 28, 28, generator=generator)
            assert _max_difference(parent, child, x) < 1e-5, moves


@pytest.mark.parametrize("name", SPACES)
def test_widened_replicas_diverge_after_one_sgd_step(name):
    """Symmetry breaking: a widened child computes what its parent computes (eval mode, 1e-5),
    yet its replicated channels - equal incoming weights - differ after one SGD step, because
    the replicas carry unequal shares of the outgoing weights."""
    space = search_spaces.get(name)
    rng = np.random.default_rng(5)
    generator = torch.Generator().manual_seed(2)
    checked = 0
    for _, _, parent, child, moves in inheriting_pairs(space, rng, (1, 28, 28), generator, 3, exact_only=True):
        replicas = _replica_rows(child)
        if not replicas:
            continue
        x = torch.randn(8, 1, 28, 28, generator=generator)
        assert _max_difference(parent, child, x) < 1e-5, moves
        child.train()
        optimizer = torch.optim.SGD(child.parameters(), lr=0.1)
        torch.nn.functional.cross_entropy(child(x), torch.randint(10, (8,), generator=generator)).backward()
        # a branch that starts at zero (mobile-norm's no-norm residual blocks) passes no gradient
        # back on the first step; replicas there can only diverge from the second step on
        replicas = [(conv, i, j) for conv, i, j in replicas if conv.weight.grad[[i, j]].abs().sum() > 0]
        optimizer.step()
        for conv, i, j in replicas:
            assert not torch.equal(conv.weight[i], conv.weight[j]), (moves, i, j)
        checked += bool(replicas)
    assert checked, "no drawn pair widened anything"


def _replica_rows(model):
    """(conv, i, j): output channels of dense convolutions with equal, non-zero incoming weights."""
    found = []
    for conv in model.modules():
        if isinstance(conv, torch.nn.Conv2d) and conv.groups == 1:
            rows = conv.weight.detach().flatten(1)
            for i in range(len(rows)):
                for j in range(i + 1, len(rows)):
                    if rows[i].abs().sum() > 0 and torch.equal(rows[i], rows[j]):
                        found.append((conv, i, j))
    return found


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


@pytest.mark.parametrize("name", SPACES)
def test_gene_kinds_and_choice_costs_cover_every_gene(name):
    space = search_spaces.get(name)
    kinds = space.gene_kinds()
    assert set(kinds) == set(space.genes()) and set(kinds.values()) <= {"ordinal", "nominal"}
    for gene, choices in space.genes().items():
        assert len(space.choice_costs(gene)) == len(choices)


@pytest.mark.parametrize("name", SPACES)
def test_presets_parse_by_name_and_build(name):
    space = search_spaces.get(name)
    for preset, text in space.presets().items():
        assert space.preset(preset) == space.parse(text)
        assert space.format(space.parse(text)) == text
