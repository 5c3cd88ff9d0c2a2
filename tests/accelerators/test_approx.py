import torch
from torch import nn

from accelerators import parse
from accelerators.approx import crs_matmul


def test_crs_is_an_unbiased_estimator_of_a_matmul():
    torch.manual_seed(0)
    a, b = torch.randn(6, 40), torch.randn(40, 5)
    estimate = torch.stack([crs_matmul(a, b, 10, "crs") for _ in range(20_000)]).mean(0)
    exact = a @ b
    assert (estimate - exact).abs().max() < 0.05 * exact.abs().max()


def test_topk_with_every_column_is_exact():
    torch.manual_seed(0)
    a, b = torch.randn(6, 40), torch.randn(40, 5)
    assert torch.allclose(crs_matmul(a, b, 40, "topk"), a @ b, atol=1e-5)


def _model():
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 16, 1), nn.Conv2d(16, 16, 3, groups=16),
                         nn.Conv2d(16, 8, 1), nn.Flatten(), nn.LazyLinear(4))


def test_ratio_one_is_exact_and_evaluation_is_always_exact():
    from automl.train.events import Event, TrainState

    torch.manual_seed(0)
    model = _model()
    x = torch.randn(2, 3, 10, 10)
    reference = model(x)
    for spec, training in (("approx:ratio=1.0", True), ("approx:ratio=0.25", False)):
        accelerator = parse(spec)[0]
        state = TrainState(model, None, None, 1, 1, (3, 10, 10), torch.device("cpu"))
        accelerator.apply(Event.INIT, state)
        model.train(training)
        assert torch.allclose(model(x), reference, atol=1e-5)
        accelerator.apply(Event.FIT_END, state)


def test_sampling_shrinks_the_dense_convolutions_only():
    from automl.train.events import Event, TrainState

    torch.manual_seed(0)
    model = _model()
    x = torch.randn(2, 3, 10, 10)
    model(x)
    accelerator = parse("approx:ratio=0.5,minimal_k=1")[0]
    state = TrainState(model, None, None, 1, 1, (3, 10, 10), torch.device("cpu"))
    accelerator.apply(Event.INIT, state)
    model.train()
    model(x).sum().backward()
    accelerator.apply(Event.FIT_END, state)
    report = accelerator.report()
    assert report["kept_channel_fraction"] == 0.5  # the two 1x1 convs: 8 -> 4 and 16 -> 8 channels
    assert report["training_flops_saved"] > 0
    assert "forward" not in model[1].__dict__


def test_narrow_layers_keep_at_least_minimal_k_channels():
    accelerator = parse("approx:ratio=0.5")[0]  # minimal_k = 10, as the reference code
    assert [accelerator._keep(c) for c in (4, 8, 16, 24, 64)] == [4, 8, 10, 12, 32]
