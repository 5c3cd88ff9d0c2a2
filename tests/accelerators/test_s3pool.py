import pytest
import torch
import torch.nn.functional as F

from accelerators.s3pool import S3Pool, StochasticSpatialSampling, install, output_size
from automl.core.errors import AutomlError


@pytest.mark.parametrize("height, width", [(7, 8), (14, 15), (28, 28), (5, 3), (1, 2)])
def test_training_output_has_the_stride_two_size(height, width):
    conv = torch.nn.Conv2d(3, 3, 3, 2, 1)
    x = torch.randn(2, 3, height, width)
    pool = S3Pool(2).train()
    assert pool(x).shape == conv(x).shape == (2, 3, output_size(height), output_size(width))
    assert pool.eval()(x).shape == conv(x).shape


def test_training_is_random_and_picks_from_each_grid():
    torch.manual_seed(0)
    x = torch.randn(1, 4, 16, 16)
    pool = S3Pool(4).train()
    outputs = [pool(x) for _ in range(5)]
    assert any(not torch.equal(outputs[0], other) for other in outputs[1:])
    maxed = F.max_pool2d(F.pad(x, (0, 1, 0, 1), value=float("-inf")), 2, stride=1)
    values = set(maxed.flatten().tolist())
    assert set(outputs[0].flatten().tolist()) <= values  # samples of the stride-1 max pool


def test_test_time_form_is_deterministic_and_the_expectation():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 9, 10)
    pool = S3Pool(2).eval()
    assert torch.equal(pool(x), pool(x))
    maxed = F.max_pool2d(F.pad(x, (0, 1, 0, 1), value=float("-inf")), 2, stride=1)
    assert torch.allclose(pool(x), F.avg_pool2d(maxed, 2, 2, ceil_mode=True), atol=1e-6)  # the paper's form
    wide, small = S3Pool(4), x[:1, :1]
    mean = torch.stack([wide.train()(small) for _ in range(2000)]).mean(0)
    assert (mean - wide.eval()(small)).abs().max() < 0.1  # Monte Carlo: the exact expectation for g = 4


def test_grid_option_is_checked():
    with pytest.raises(AutomlError):
        StochasticSpatialSampling(grid=3)
    with pytest.raises(AutomlError):
        StochasticSpatialSampling.options["grid"].parse("s3pool", "grid", "1")


def test_install_keeps_the_state_dict_and_replaces_every_stride_two_conv():
    import search_spaces
    from tests.conftest import SMALLEST_MOBILE

    space = search_spaces.get("mobile")
    model = space.build(space.parse(SMALLEST_MOBILE), (3, 96, 96), 10)
    before = {k: v.shape for k, v in model.state_dict().items()}
    strided = sum(1 for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2))
    assert install(model, 2) == strided == 4  # the stem and three stage-first depthwise convs at 96 px
    assert {k: v.shape for k, v in model.state_dict().items()} == before
    x = torch.randn(2, 3, 96, 96)
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))


def test_a_small_model_learns_and_is_evaluated_in_test_form(small_mnist):
    import search_spaces
    from automl.train.loop import TrainConfig, evaluate, train
    from tests.conftest import SMALLEST_MOBILE

    space = search_spaces.get("mobile")
    model = space.build(space.parse(SMALLEST_MOBILE), small_mnist.input_shape, 10)
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    accelerator = StochasticSpatialSampling()
    result = train(model, small_mnist, TrainConfig(epochs=1), seed=0, accelerators=[accelerator])
    assert result.accuracy > 0.4  # chance is 0.1
    report = result.accelerators["s3pool"]
    assert report["layers_replaced"] == 3 and report["extra_forward_flops_per_sample"] > 0
    assert report["training_flops_saved"] == 0.0
    assert {k: v.shape for k, v in result.model.state_dict().items()} == shapes
    # the accuracy the trainer measured is the deterministic test-time S3Pool's
    assert any(isinstance(m, S3Pool) for m in result.model.modules())
    assert evaluate(result.model, small_mnist.val) == result.accuracy == evaluate(result.model, small_mnist.val)
