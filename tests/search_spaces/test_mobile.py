import pytest
import torch

import search_spaces
from automl.core.errors import CannotInherit, InvalidGenomeError
from search_spaces.mobile import InvertedResidual, stage_strides

GENOME = "stem16-ir_r1_k3_e1_c16-ir_r2_k3_e6_c24-ir_r2_k5_e6_c32-ir_r3_k3_e6_c64-ir_r1_k7_e3_c96-head256"


def test_timm_style_string_round_trips():
    space = search_spaces.get("mobile")
    genome = space.parse(GENOME)
    assert space.format(genome) == GENOME
    assert genome["s3_kernel"] == 5 and genome["s4_depth"] == 3 and genome["head"] == 256


@pytest.mark.parametrize("text, message", [
    ("stem16-ir_r1_k4_e1_c16-ir_r2_k3_e6_c24-ir_r2_k5_e6_c32-ir_r3_k3_e6_c64-ir_r1_k7_e3_c96-head256", "s1_kernel.*4"),
    ("stem15-ir_r1_k3_e1_c16-ir_r2_k3_e6_c24-ir_r2_k5_e6_c32-ir_r3_k3_e6_c64-ir_r1_k7_e3_c96-head256", "stem.*15"),
    ("stem16-ir_r1_k3_e1_c16-head256", "must read"),
    ("stem16-ir_r1_k3_e1_c16-bogus-ir_r2_k5_e6_c32-ir_r3_k3_e6_c64-ir_r1_k7_e3_c96-head256", "stage 2"),
])
def test_parse_errors_name_the_problem(text, message):
    with pytest.raises(InvalidGenomeError, match=message):
        search_spaces.get("mobile").parse(text)


def test_strides_adapt_to_input_size():
    assert stage_strides(28, 28) == (1, [1, 2, 2, 2, 1])
    assert stage_strides(32, 32) == (1, [1, 2, 2, 2, 1])
    assert stage_strides(96, 96) == (2, [1, 2, 2, 2, 1])
    assert stage_strides(8, 8)[1].count(2) == 1


def test_model_follows_the_genome():
    space = search_spaces.get("mobile")
    model = space.build(space.parse(GENOME), (1, 28, 28), 10)
    assert [len(stage) for stage in model.stages] == [1, 2, 2, 3, 1]
    block = model.stages[2][0]
    assert isinstance(block, InvertedResidual)
    assert block.depthwise[0].kernel_size == (5, 5) and block.depthwise[0].out_channels == 24 * 6
    assert model.classifier.in_features == 256
    assert model.stages[1][1].use_residual and not model.stages[1][0].use_residual


def test_expansion_one_keeps_its_expand_convolution_and_first_blocks_have_no_skip():
    block = InvertedResidual(8, 8, 1, 1, 3, residual=True)
    assert block.expand[0].out_channels == 8
    with pytest.raises(ValueError):
        InvertedResidual(8, 16, 1, 1, 3, residual=True)
    space = search_spaces.get("mobile")
    model = space.build(space.parse(GENOME.replace("stem16", "stem16")), (1, 28, 28), 10)
    assert not model.stages[0][0].use_residual  # stem16 -> width16 at stride 1: still no skip
    assert all(block.use_residual for stage in model.stages for block in list(stage)[1:])


NO_NORM = GENOME + "-nonorm"


def test_norm_gene_round_trips_and_old_strings_mean_batchnorm():
    space = search_spaces.get("mobile-norm")
    assert space.genes()["norm"] == ["bn", "none"]
    old = space.parse(GENOME)
    assert old["norm"] == "bn" and space.format(old) == GENOME
    none = space.parse(NO_NORM)
    assert none["norm"] == "none" and space.format(none) == NO_NORM
    assert space.parse(space.format(none).replace("-nonorm", "")) == old
    params = {gene: value for gene, value in old.genes if gene != "norm"}
    assert space.make(params) == old  # Optuna params recorded before the gene existed
    with pytest.raises(InvalidGenomeError, match="nonorm"):
        space.parse(GENOME + "-bogus")


def test_no_norm_model_has_no_batchnorm_and_biased_convolutions():
    space = search_spaces.get("mobile-norm")
    model = space.build(space.parse(NO_NORM), (1, 28, 28), 10)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(conv.bias is not None for conv in convs)
    residual = model.stages[1][1]
    assert residual.use_residual and residual.project[0].weight.abs().sum() == 0  # starts as the identity
    x = torch.randn(4, 1, 28, 28)
    assert torch.isfinite(model(x)).all() and model(x).std() > 0
    from automl.nn.flops import count_flops
    assert count_flops(model, (1, 28, 28)) > 0


def test_no_norm_children_inherit_exactly_and_norm_changes_are_declined():
    import numpy as np

    space = search_spaces.get("mobile-norm")
    rng = np.random.default_rng(5)
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        a, b = space.encode(space.sample(rng)), space.encode(space.sample(rng))
        parent_genome = space.decode(np.minimum(a, b)).replace(norm="none")
        child_genome = space.decode(np.maximum(a, b)).replace(norm="none")
        parent = space.build(parent_genome, (1, 28, 28), 10)
        with torch.no_grad():
            for p in parent.parameters():
                p.add_(torch.randn(p.shape, generator=generator) * 0.05)  # trained-looking, no zero blocks
        child, moves = space.inherit(parent, parent_genome, child_genome, (1, 28, 28), 10, generator)
        x = torch.randn(3, 1, 28, 28, generator=generator)
        with torch.no_grad():
            assert (parent(x) - child(x)).abs().max() < 1e-4, moves
        with pytest.raises(CannotInherit):
            space.inherit(parent, parent_genome, child_genome.replace(norm="bn"), (1, 28, 28), 10)


def test_plain_mobile_has_batchnorm_only_and_keeps_its_keys():
    space = search_spaces.get("mobile")
    assert "norm" not in space.genes()
    genome = space.parse(GENOME)
    assert "norm" not in genome.key()
    with pytest.raises(InvalidGenomeError, match="mobile-norm"):
        space.parse(NO_NORM)
    assert space.make({**dict(genome.genes), "norm": "bn"}) == genome
