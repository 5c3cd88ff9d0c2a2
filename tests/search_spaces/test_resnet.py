import pytest
import torch
import torchvision

import search_spaces
from automl.core.errors import CannotInherit
from automl.nn.flops import count_flops, count_params

SMALL = "basic-stem16-k3-d1.1.1.1-w16.32.64.128"


def space():
    return search_spaces.get("resnet")


def _shapes(model):
    return sorted(tuple(p.shape) for p in model.parameters())


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50"])
def test_presets_have_torchvisions_layers_and_parameters(name):
    ours = space().build(space().preset(name), (3, 224, 224), 1000)
    theirs = getattr(torchvision.models, name)()  # no weights
    assert count_params(ours) == count_params(theirs)
    assert _shapes(ours) == _shapes(theirs)


@pytest.mark.parametrize("name", ["resnet18", pytest.param("resnet34", marks=pytest.mark.slow),
                                  pytest.param("resnet50", marks=pytest.mark.slow)])
def test_presets_have_torchvisions_flops(name):
    ours = space().build(space().parse(name), (3, 224, 224), 1000)
    theirs = getattr(torchvision.models, name)()
    assert count_flops(ours, (3, 224, 224)) == count_flops(theirs, (3, 224, 224))


def test_genome_string_round_trips():
    assert space().format(space().parse(SMALL)) == SMALL
    assert space().format(space().parse("resnet50")).startswith("bottleneck-stem64")


def _trained_looking(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model


@pytest.mark.parametrize("train_mode", [False, True])
def test_wider_deeper_and_larger_kernels_keep_the_function_in_both_modes(train_mode):
    parent_genome = space().parse(SMALL)
    child_genome = space().parse("basic-stem32-k5-d2.3.1.2-w32.64.128.256")
    parent = _trained_looking(space().build(parent_genome, (1, 28, 28), 10))
    child, moves = space().inherit(parent, parent_genome, child_genome, (1, 28, 28), 10)
    assert "s2 depth 1->3" in moves and "kernel 3->5" in moves
    x = torch.randn(4, 1, 28, 28)
    parent.train(train_mode)
    child.train(train_mode)
    with torch.no_grad():
        assert (parent(x) - child(x)).abs().max() < 1e-5


def test_a_shortcut_that_becomes_a_projection_is_exact_in_eval_mode():
    parent_genome = space().parse(SMALL)  # stem 16 = stage 1 width 16: identity shortcut
    child_genome = parent_genome.replace(s1_width=32)
    parent = _trained_looking(space().build(parent_genome, (1, 28, 28), 10)).eval()
    child, moves = space().inherit(parent, parent_genome, child_genome, (1, 28, 28), 10)
    assert "s1 shortcut identity->projection (exact in eval mode)" in moves
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        assert (parent(x) - child.eval()(x)).abs().max() < 1e-5


def test_a_block_type_change_cannot_inherit():
    parent_genome = space().parse(SMALL)
    parent = space().build(parent_genome, (1, 28, 28), 10)
    with pytest.raises(CannotInherit, match="block"):
        space().inherit(parent, parent_genome, parent_genome.replace(block="bottleneck"), (1, 28, 28), 10)
