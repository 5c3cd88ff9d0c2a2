"""A layer's gradient chain: stages in their methods' order, in place only where it is safe, and
the layer left as built afterwards; with fx16 and sparsegrad the gradient a convolution gets is
rounded onto fx16's grid, then pruned."""

import torch
from torch import nn

import accelerators
from accelerators.base import Accelerator
from accelerators.layers import Hooks
from automl.train.events import Event
from automl.train.loop import TrainConfig, train

STEP = 2.0 ** -12


def test_stages_run_in_order_and_only_a_later_stage_owns_its_tensor():
    layer = nn.Linear(3, 3)
    seen = []

    def doubled(g, owned):
        seen.append(("double", owned))
        return g * 2  # a new tensor: the next stage may overwrite it

    def negated(g, owned):
        seen.append(("negate", owned))
        return g.neg_() if owned else -g

    first, second = Hooks(), Hooks()
    second.gradient_stage(layer, negated, order=90)
    first.gradient_stage(layer, doubled, order=10)
    x = torch.ones(2, 3, requires_grad=True)
    shared = torch.ones(2, 3)
    layer(x).backward(shared)
    assert seen == [("double", False), ("negate", True)]
    assert torch.equal(shared, torch.ones(2, 3))  # the tensor autograd delivered is untouched
    assert torch.allclose(x.grad, -2 * layer.weight.sum(0).expand(2, 3))
    first.remove()
    second.remove()
    assert not layer._forward_hooks  # the last stage gone: the layer is as built


def test_fx16_and_sparsegrad_hand_each_convolution_a_rounded_then_pruned_gradient(small_mnist, tiny_model):
    model = tiny_model()
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1))
    arrived: list[torch.Tensor] = []
    probe = Hooks()

    class Probe(Accelerator):
        """Reads, after every other stage, what reaches the convolution's output."""

        name, kind, order = "probe", "fidelity", 1000
        events = frozenset({Event.INIT})

        def apply(self, event, state):
            probe.gradient_stage(conv, lambda g, owned: arrived.append(g.clone()) or g, self.order)

    methods = sorted([*accelerators.parse("fx16,sparsegrad"), Probe()], key=lambda a: a.order)
    train(model, small_mnist, TrainConfig(epochs=0.2, bn_samples=64), seed=0, accelerators=methods)
    probe.remove()
    assert arrived
    for g in arrived:
        off_grid = g[g / STEP != torch.round(g / STEP)]
        assert off_grid.abs().unique().numel() <= 1  # rounded onto <4,12>, but for the +-tau pruning set
        assert (g == 0).float().mean() > 0.3
