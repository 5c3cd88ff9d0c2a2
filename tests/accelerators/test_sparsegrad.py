import pytest
import torch

from accelerators import parse
from accelerators.dither import Dither
from accelerators.sparsegrad import expected_zero_fraction, fit_threshold, normal_threshold, stochastic_prune


def test_stochastic_pruning_keeps_the_expectation():
    torch.manual_seed(0)
    g = torch.randn(64) * 0.01
    tau = 0.02
    mean = torch.stack([stochastic_prune(g, tau) for _ in range(20_000)]).mean(0)
    assert torch.allclose(mean, g, atol=4e-4)  # ~4 standard errors of 0.01/sqrt(20000)*...


def test_values_are_zero_or_at_least_the_threshold():
    torch.manual_seed(0)
    pruned = stochastic_prune(torch.randn(10_000), 0.5)
    nonzero = pruned[pruned != 0].abs()
    assert (nonzero >= 0.5 - 1e-7).all()


@pytest.mark.parametrize("sparsity", [0.5, 0.8, 0.9, 0.99])
def test_fitted_threshold_reaches_the_target_density(sparsity):
    torch.manual_seed(0)
    g = torch.distributions.StudentT(3.0).sample((200_000,)) * 1e-3  # heavy-tailed, as real gradients
    tau = fit_threshold(g[:8192].abs(), sparsity)
    density = (stochastic_prune(g, tau) != 0).float().mean().item()
    assert abs(density - (1 - sparsity)) < 0.05
    assert abs(expected_zero_fraction(g.abs(), tau) - sparsity) < 0.02


def test_the_papers_rule_zeroes_about_54_percent_of_a_gaussian_at_p_09():
    """Ye et al.'s threshold: 90% of a Gaussian lies below tau, but entries just under tau mostly
    become +-tau, so the zero fraction reached is E[1 - |g|/tau; |g| < tau], about 0.54."""
    torch.manual_seed(0)
    g = torch.randn(400_000) * 3e-4
    tau = normal_threshold(g, 0.9)
    assert abs(tau / 3e-4 - 1.645) < 0.02
    zeros = (stochastic_prune(g, tau) == 0).float().mean().item()
    assert abs(zeros - 0.54) < 0.01


def test_pre_drawn_noise_keeps_pruning_unbiased():
    dither = Dither(seed=1)
    g = torch.randn(4096) * 0.01
    mean = torch.stack([stochastic_prune(g, 0.02, dither.like(g)) for _ in range(20_000)]).mean(0)
    assert torch.allclose(mean, g, atol=4e-4)


def test_training_reaches_the_target_density(small_mnist):
    import search_spaces
    from automl.train.loop import TrainConfig, train
    from tests.conftest import SMALLEST_MOBILE

    space = search_spaces.get("mobile")
    for sparsity in (0.7, 0.9):
        model = space.build(space.parse(SMALLEST_MOBILE), small_mnist.input_shape, 10)
        result = train(model, small_mnist, TrainConfig(epochs=0.5), accelerators=parse(f"sparsegrad:sparsity={sparsity},threshold=fit"))
        report = result.accelerators["sparsegrad"]
        assert abs(report["density"] - (1 - sparsity)) < 0.05, report
        assert 0 < report["training_flops_saved"]


def test_the_papers_normal_rule_records_the_density_it_reaches(small_mnist):
    import search_spaces
    from automl.train.loop import TrainConfig, train
    from tests.conftest import SMALLEST_MOBILE

    space = search_spaces.get("mobile")
    model = space.build(space.parse(SMALLEST_MOBILE), small_mnist.input_shape, 10)
    result = train(model, small_mnist, TrainConfig(epochs=0.3), accelerators=parse("sparsegrad:threshold=normal"))
    assert 0 < result.accelerators["sparsegrad"]["density"] < 1
