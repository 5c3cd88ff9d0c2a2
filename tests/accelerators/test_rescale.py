import pytest
import torch
import torch.nn.functional as F

from accelerators import parse
from accelerators.rescale import KernelRescaling, low_kernel_size, rescale_kernel, shrink_kernel
from automl.core.errors import AutomlError
from automl.train.loop import TrainConfig, train
from tests.conftest import SMALLEST_MOBILE


def test_low_resolution_kernel_sizes():
    assert [low_kernel_size(k, 2) for k in (3, 5, 7)] == [3, 3, 3]  # never below 3: still spatial
    assert [low_kernel_size(k, 3) for k in (3, 5, 7, 9)] == [3, 3, 3, 3]
    assert low_kernel_size(9, 2) == 5 and low_kernel_size(1, 2) == 1


@pytest.mark.parametrize("k", [5, 7])
def test_rescaled_kernels_reproduce_the_low_resolution_response_on_upsampled_input(k):
    torch.manual_seed(k)
    k_low = low_kernel_size(k, 2)
    smooth = F.interpolate(torch.randn(2, 4, 4, 4), size=(16, 16), mode="bicubic", align_corners=False)
    weight = torch.randn(6, 4, k_low, k_low)

    def up(t):
        return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)

    expected = up(F.conv2d(smooth, weight, padding=k_low // 2))
    got = F.conv2d(up(smooth), rescale_kernel(weight, k), padding=k // 2)
    inner = (slice(None), slice(None), slice(4, -4), slice(4, -4))  # away from the zero padding
    relative = (got - expected)[inner].norm() / expected[inner].norm()
    assert relative < 0.15


def test_shrinking_keeps_the_response_of_a_constant_input():
    weight = torch.randn(3, 2, 5, 5)
    ones = torch.ones(1, 2, 9, 9)
    full = F.conv2d(ones, weight)[..., 2, 2]
    small = F.conv2d(ones, shrink_kernel(weight, 3))[..., 2, 2]
    assert torch.allclose(full, small, atol=1e-4)


def test_training_switches_and_ends_with_the_genomes_shapes(small_mnist, tiny_model):
    model = tiny_model(SMALLEST_MOBILE.replace("k3", "k5"))
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    rescale = KernelRescaling(switch=0.5, when="fixed")
    result = train(model, small_mnist, TrainConfig(epochs=1), seed=0, accelerators=[rescale])
    report = result.accelerators["rescale"]
    assert report["switched_at_step"] == 10 and report["low_resolution_steps"] == 10
    assert report["forward_flops_low"] < report["forward_flops_full"] / 2
    assert {k: v.shape for k, v in result.model.state_dict().items()} == shapes
    assert result.accuracy > 0.2  # learned something at either resolution


def test_training_shorter_than_the_switch_still_rescales(small_mnist, tiny_model):
    model = tiny_model()
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    result = train(model, small_mnist, TrainConfig(epochs=0.2), seed=0, accelerators=[KernelRescaling(switch=0.9)])
    assert {k: v.shape for k, v in result.model.state_dict().items()} == shapes


def test_plateau_switches_once_the_low_resolution_loss_stops_falling():
    from accelerators.rescale import loss_plateaued

    falling = [2.0 - 0.05 * i for i in range(20)]
    assert not loss_plateaued(falling, 5, 0.02)
    flat = falling + [1.0] * 10
    assert loss_plateaued(flat, 5, 0.02)
    assert not loss_plateaued(flat[:9], 5, 0.02)  # too few steps to judge


def test_plateau_switch_never_comes_later_than_the_limit(small_mnist, tiny_model):
    result = train(tiny_model(), small_mnist, TrainConfig(epochs=1), seed=0,
                   accelerators=[KernelRescaling(switch=0.5)])
    report = result.accelerators["rescale"]
    assert report["when"] == "plateau" and 0 < report["switched_at_step"] <= 10


@pytest.mark.parametrize("bad", ["rescale:scale=1", "rescale:switch=1", "rescale:switch=x", "rescale:when=soon"])
def test_bad_options_are_user_errors(bad):
    with pytest.raises(AutomlError):
        parse(bad)
