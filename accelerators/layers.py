"""Shared plumbing for accelerators that act inside layers: finding the compute layers,
changing the gradient arriving at a layer's output, and hooks that are removed after training."""

from __future__ import annotations

from collections.abc import Callable
from weakref import WeakKeyDictionary

import torch
from torch import Tensor, nn


def compute_layers(model: nn.Module) -> list[nn.Module]:
    """Convolutions and linear layers in registration order (the first is the stem, the
    last the classifier, for the built-in spaces)."""
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


# (gradient, owned) -> gradient; ``owned``: no one else holds the tensor, so it may be overwritten
GradientStage = Callable[[Tensor, bool], Tensor]


class _OutputGradient(torch.autograd.Function):
    """Identity forward; the layer's gradient stages run on the gradient backward."""

    @staticmethod
    def forward(ctx, x: Tensor, chain: GradientChain) -> Tensor:
        ctx.chain = chain
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return ctx.chain.run(grad), None


class GradientChain:
    """What accelerators do to the gradient arriving at one layer's output, run as one backward
    step, stage by stage in the order each was given.

    Why one step: fx16 rounds that gradient and sparsegrad prunes it. As two autograd functions
    their order followed the order their hooks happened to be installed in; here it is stated
    (fx16 first: fixed-point hardware delivers the gradient in its format). And only the first
    stage must leave the tensor autograd delivers alone (autograd may hand the same tensor to
    another branch): each later stage gets the copy its predecessor made and may overwrite it -
    one fresh tensor per layer and step instead of one per method (a saving within the noise
    of this CPU's timings on its own; memory, not seconds).
    """

    def __init__(self, module: nn.Module) -> None:
        self.stages: list[tuple[int, GradientStage]] = []
        self.handle = module.register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, inputs, output: Tensor) -> Tensor:
        return _OutputGradient.apply(output, self) if module.training and self.stages else output

    def add(self, order: int, stage: GradientStage) -> None:
        self.stages.append((order, stage))
        self.stages.sort(key=lambda entry: entry[0])  # stable: equal orders keep their arrival

    def remove(self, stage: GradientStage) -> None:
        self.stages = [(order, s) for order, s in self.stages if s is not stage]

    def run(self, grad: Tensor) -> Tensor:
        owned = False
        for _, stage in self.stages:
            result = stage(grad, owned)
            owned = owned or result is not grad
            grad = result
        return grad


_CHAINS: WeakKeyDictionary[nn.Module, GradientChain] = WeakKeyDictionary()


class Hooks:
    """Forward hooks and swapped forwards that an accelerator installs at INIT and removes at
    FIT_END, so the trained model is left exactly as built."""

    def __init__(self) -> None:
        self._handles: list = []
        self._forwards: list[tuple[nn.Module, Callable | None]] = []
        self._stages: list[tuple[nn.Module, GradientStage]] = []

    def forward_hook(self, module: nn.Module, hook: Callable) -> None:
        self._handles.append(module.register_forward_hook(hook))

    def gradient_stage(self, module: nn.Module, stage: GradientStage, order: int) -> None:
        """Run ``stage`` on the gradient arriving at ``module``'s output, in ``order`` among the
        stages other accelerators put on the same layer (:class:`GradientChain`)."""
        chain = _CHAINS.get(module)
        if chain is None:
            chain = _CHAINS[module] = GradientChain(module)
        chain.add(order, stage)
        self._stages.append((module, stage))

    def replace_forward(self, module: nn.Module, forward: Callable) -> None:
        self._forwards.append((module, module.__dict__.get("forward")))
        module.forward = forward

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        for module, stage in self._stages:
            chain = _CHAINS.get(module)
            if chain is not None:
                chain.remove(stage)
                if not chain.stages:  # the last stage gone: the layer is left as built
                    chain.handle.remove()
                    del _CHAINS[module]
        for module, forward in reversed(self._forwards):
            if forward is None:
                del module.forward  # back to the class's own forward
            else:
                module.forward = forward
        self._handles.clear()
        self._forwards.clear()
        self._stages.clear()
