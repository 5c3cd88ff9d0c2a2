import pytest
import torch

import search_spaces
from automl.core.errors import InvalidGenomeError
from automl.nn import net2net
from automl.nn.flops import count_flops, count_params
from search_spaces.dvolver.genotype import PRESETS, cell_of

SMALL = ("N1-F8-normal[sep3@0+id@1,avg3@0+sep5@2,max3@1+id@0,sep3@3+avg3@1,id@4+sep3@0,cat-]"
         "-reduce[sep5@0+max3@1,id@0+sep3@1,avg3@2+id@3,sep3@2+max3@0,id@1+sep7@4,cat3]")


def space():
    return search_spaces.get("dvolver")


def test_nasnet_a_mobile_matches_the_published_counts():
    """NASNet-A mobile, 4 @ 1056: 564M multiply-adds and 5.3M parameters (Zoph et al. 2018)."""
    model = space().build(space().preset("nasnet-a"), (3, 224, 224), 1000)
    macs = count_flops(model, (3, 224, 224)) / 2
    assert abs(macs / 564e6 - 1) < 0.03, macs
    assert abs(count_params(model) / 5.3e6 - 1) < 0.03, count_params(model)


def test_nasnet_a_cells_concatenate_the_published_states():
    genome = space().parse("nasnet-a")
    assert genome["N"] == 4 and genome["F"] == 44
    assert cell_of(genome, "n").outputs() == [1, 2, 3, 4, 5, 6]  # 6F channels
    assert cell_of(genome, "r").outputs() == [3, 4, 5, 6]  # 4F channels


def test_genotype_notation_round_trips():
    for text in (SMALL, PRESETS["nasnet-a"]):
        assert space().format(space().parse(text)) == text
    genome = space().parse(SMALL)
    assert genome["n1_op1"] == "sep5" and genome["n1_in1"] == 2 and genome["r_cat"] == "3"
    assert space().parse(",".join(f"{g}={v}" for g, v in genome.genes)) == genome


@pytest.mark.parametrize("text, message", [
    (SMALL.replace("sep5@2", "sep9@2"), "n1_op1.*sep9"),
    (SMALL.replace("sep3@3", "sep3@5"), "n3_in0.*5"),
    (SMALL.replace("N1", "N5"), "'N'.*5"),
    ("N1-F8-normal[sep3@0+id@1]-reduce[]", "normal cell"),
    ("nasnet-b", "must read"),
])
def test_parse_errors_name_the_problem(text, message):
    with pytest.raises(InvalidGenomeError, match=message):
        space().parse(text)


def test_operation_genes_are_nominal_and_cost_their_multiply_adds():
    kinds = space().gene_kinds()
    assert kinds["N"] == kinds["F"] == "ordinal"
    assert kinds["n0_op0"] == kinds["r4_in1"] == kinds["n_cat"] == "nominal"
    ops, costs = space().genes()["n0_op0"], space().choice_costs("n0_op0")
    order = [op for _, op in sorted(zip(costs, ops))]
    assert order[0] == "id" and order[-3:] == ["sep3", "sep5", "sep7"]


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_small_networks_build_and_train(shape):
    model = space().build(space().parse(SMALL), shape, 10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = torch.randn(8, *shape), torch.randint(10, (8,))
    losses = []
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(map(torch.isfinite, map(torch.tensor, losses))) and losses[-1] < losses[0]


def _trained_looking(model, seed=0):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
    return model.eval()


def test_more_filters_and_larger_separable_kernels_keep_the_function():
    parent_genome = space().parse(SMALL)
    child_genome = parent_genome.replace(F=16, n0_op0="sep7", r3_op0="sep5")
    parent = _trained_looking(space().build(parent_genome, (1, 28, 28), 10))
    child, moves = space().inherit(parent, parent_genome, child_genome, (1, 28, 28), 10, torch.Generator().manual_seed(0))
    assert moves == ["filters 8->16", "n0 op0 sep3->sep7", "r3 op0 sep3->sep5"]
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        assert (parent(x) - child.eval()(x)).abs().max() < 1e-5


def test_more_cells_and_changed_operations_keep_what_matches_and_say_so():
    parent_genome = space().parse(SMALL)
    child_genome = parent_genome.replace(N=2, n1_op0="max3", n2_in0=2)
    parent = _trained_looking(space().build(parent_genome, (1, 28, 28), 10))
    child, moves = space().inherit(parent, parent_genome, child_genome, (1, 28, 28), 10)
    assert all(map(net2net.is_lossy, moves)) and len(moves) == 3, moves
    # an unchanged operation kept its weights: the first normal cell's block 0 separable conv
    assert torch.equal(child.cells[0].ops[0].pw1.weight, parent.cells[0].ops[0].pw1.weight)
    assert torch.isfinite(child.eval()(torch.randn(2, 1, 28, 28))).all()
