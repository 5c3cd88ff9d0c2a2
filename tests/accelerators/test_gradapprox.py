import torch

from accelerators import parse


def test_skips_weight_gradients_at_the_asked_rate_and_restores_them(small_mnist):
    import search_spaces
    from automl.train.loop import TrainConfig, train
    from tests.conftest import SMALLEST_MOBILE

    space = search_spaces.get("mobile")
    model = space.build(space.parse(SMALLEST_MOBILE), small_mnist.input_shape, 10)
    result = train(model, small_mnist, TrainConfig(epochs=1), accelerators=parse("gradapprox:p=0.5"))
    report = result.accelerators["gradapprox"]
    assert 0.4 < report["skipped_fraction"] < 0.6 and report["training_flops_saved"] > 0
    assert all(p.requires_grad for p in result.model.parameters())


def test_rescaled_gradients_are_unbiased():
    from automl.train.events import Event, TrainState

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1), torch.nn.Conv2d(3, 4, 1), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 9, 1))
    x = torch.randn(5, 2, 3, 3)
    model(x).sum().backward()
    exact = model[1].weight.grad.clone()
    accelerator = parse("gradapprox:p=0.5")[0]
    state = TrainState(model, None, None, 1, 1, (2, 3, 3), torch.device("cpu"))
    accelerator.apply(Event.INIT, state)
    total = torch.zeros_like(exact)
    rounds = 4000
    for _ in range(rounds):
        model.zero_grad(set_to_none=True)
        accelerator.apply(Event.BATCH, state)
        model(x).sum().backward()
        accelerator.apply(Event.BEFORE_STEP, state)
        if model[1].weight.grad is not None:
            total += model[1].weight.grad
    accelerator.apply(Event.FIT_END, state)
    assert torch.allclose(total / rounds, exact, rtol=0.1, atol=1e-3 * exact.abs().max().item())
