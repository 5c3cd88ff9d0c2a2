import math

import pytest
import torch

from accelerators.stdloss import StandardizationLoss, standardization_kl
from automl.core.errors import AutomlError

NO_NORM = "stem8-ir_r1_k3_e1_c8-ir_r1_k3_e1_c16-ir_r1_k3_e1_c24-ir_r1_k3_e1_c32-ir_r1_k3_e1_c48-head128-nonorm"


def test_loss_is_the_kl_formula_on_known_tensors():
    # channel 0: values {1, 3} -> mu 2, sigma^2 1; channel 1: values {0, 0} + {-1, 1} -> mu 0, sigma^2 0.5
    x = torch.tensor([[[[1.0, 3.0]], [[-1.0, 0.0]]], [[[1.0, 3.0]], [[1.0, 0.0]]]])
    kl0 = 0.5 * (2.0 ** 2 + 1.0 - math.log(1.0 + 1e-5) - 1)
    kl1 = 0.5 * (0.0 + 0.5 - math.log(0.5 + 1e-5) - 1)
    assert standardization_kl(x).item() == pytest.approx((kl0 + kl1) / 2, rel=1e-5)


def test_standard_normal_activations_cost_nothing():
    torch.manual_seed(0)
    assert standardization_kl(torch.randn(256, 4, 8, 8)).item() < 1e-3
    assert standardization_kl(3 + 2 * torch.randn(256, 4, 8, 8)).item() > 1


def test_options_are_checked():
    with pytest.raises(AutomlError):
        StandardizationLoss(weight=-1.0)
    with pytest.raises(AutomlError):
        StandardizationLoss.options["samples"].parse("stdloss", "samples", "-3")


def test_added_at_loss_and_hooks_removed(small_mnist):
    import search_spaces
    from automl.train.loop import TrainConfig, train

    space = search_spaces.get("mobile-norm")
    model = space.build(space.parse(NO_NORM), small_mnist.input_shape, 10)
    accelerator = StandardizationLoss()
    result = train(model, small_mnist, TrainConfig(epochs=0.3), seed=0, accelerators=[accelerator])
    report = result.accelerators["stdloss"]
    assert report["layers"] == 17 and math.isfinite(report["kl"]) and report["training_flops_saved"] == 0.0
    assert all(not m._forward_hooks for m in result.model.modules())


@pytest.mark.slow
def test_no_norm_model_learns_and_stdloss_standardizes_pre_activations(small_mnist):
    import search_spaces
    from automl.train.loop import TrainConfig, train

    space = search_spaces.get("mobile-norm")
    reports = {}
    for weight in (0.0, 1.0):
        model = space.build(space.parse(NO_NORM), small_mnist.input_shape, 10)
        result = train(model, small_mnist, TrainConfig(epochs=2, lr=0.05), seed=0,
                       accelerators=[StandardizationLoss(weight=weight)])
        assert result.accuracy > 0.3, weight  # chance is 0.1
        reports[weight] = result.accelerators["stdloss"]
    plain, standardized = reports[0.0], reports[1.0]
    assert standardized["kl"] < 0.5 * plain["kl"]
    assert standardized["mean_abs_mu"] < plain["mean_abs_mu"]
    assert abs(standardized["mean_sigma"] - 1) < abs(plain["mean_sigma"] - 1)
