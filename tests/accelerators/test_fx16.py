import pytest
import torch

from accelerators import parse
from accelerators.fx16 import quantize
from automl.core.errors import AutomlError


def test_stochastic_rounding_is_unbiased_where_nearest_loses_small_values():
    torch.manual_seed(0)
    x = torch.full((200_000,), 0.3 * 2.0 ** -12)  # a third of a step: nearest rounds it away
    stochastic = quantize(x, 4, 12, stochastic=True)
    nearest = quantize(x, 4, 12, stochastic=False)
    assert nearest.abs().max() == 0
    step = 2.0 ** -12
    standard_error = step * (0.3 * 0.7 / x.numel()) ** 0.5
    assert abs(stochastic.mean().item() - x[0].item()) < 5 * standard_error
    assert set(torch.unique(stochastic / step).tolist()) <= {0.0, 1.0}


def test_values_land_on_the_grid_and_saturate_at_the_range():
    torch.manual_seed(0)
    x = torch.randn(1000) * 20
    q = quantize(x, 4, 12)
    step = 2.0 ** -12
    assert torch.allclose(q / step, torch.round(q / step))
    assert q.max() <= 8 - step and q.min() >= -8
    assert (q[x > 9] == 8 - step).all() and (q[x < -9] == -8).all()


def test_pre_drawn_noise_rounds_unbiased_and_in_place_on_the_grid():
    from accelerators.dither import Dither

    dither = Dither(seed=0)
    x = torch.full((1000, 32), 0.3 * 2.0 ** -12)
    means = torch.stack([quantize(x, 4, 12, noise=dither.like(x)) for _ in range(200)]).mean()
    assert abs(means.item() - x[0, 0].item()) < 0.02 * 2.0 ** -12
    y = torch.randn(64, 8, 5, 5).contiguous(memory_format=torch.channels_last)
    expected = y.clone()
    out = quantize(y, 4, 12, noise=dither.like(y), out=y)
    assert out.data_ptr() == y.data_ptr()
    assert torch.allclose(y / 2.0 ** -12, torch.round(y / 2.0 ** -12))
    assert (y - expected).abs().max() <= 2.0 ** -12


@pytest.mark.parametrize("spec", ["fx16:fl=40", "fx16:fl=16", "fx16:rounding=up", "fx16:wl=2"])
def test_bad_formats_are_refused(spec):
    with pytest.raises(AutomlError):
        parse(spec)


def test_hooks_are_removed_after_training(small_mnist):
    import search_spaces
    from automl.train.loop import TrainConfig, train
    from tests.conftest import SMALLEST_MOBILE

    space = search_spaces.get("mobile")
    model = space.build(space.parse(SMALLEST_MOBILE), small_mnist.input_shape, 10)
    accelerator = parse("fx16")[0]
    result = train(model, small_mnist, TrainConfig(epochs=0.5), accelerators=[accelerator])
    assert all(not m._forward_hooks for m in result.model.modules())
    report = result.accelerators["fx16"]
    assert report["values_quantized"] > 0 and 0 <= report["saturated_fraction"] < 0.05
    step = 2.0 ** -12
    weight = next(result.model.parameters()).detach()
    assert torch.allclose(weight / step, torch.round(weight / step))  # weights stay in the format
