"""Shared plumbing for accelerators that act inside layers: finding the compute layers,
changing a tensor's gradient on its way back, and hooks that are removed after training."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn


def compute_layers(model: nn.Module) -> list[nn.Module]:
    """Convolutions and linear layers in registration order (the first is the stem, the
    last the classifier, for the built-in spaces)."""
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


class _MapGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, fn: Callable[[Tensor], Tensor]) -> Tensor:
        ctx.fn = fn
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return ctx.fn(grad), None


def map_gradient(x: Tensor, fn: Callable[[Tensor], Tensor]) -> Tensor:
    """Identity in the forward pass; ``fn`` applied to the gradient in the backward pass."""
    return _MapGradient.apply(x, fn)


class Hooks:
    """Forward hooks and swapped forwards that an accelerator installs at INIT and removes at
    FIT_END, so the trained model is left exactly as built."""

    def __init__(self) -> None:
        self._handles: list = []
        self._forwards: list[tuple[nn.Module, Callable | None]] = []

    def forward_hook(self, module: nn.Module, hook: Callable) -> None:
        self._handles.append(module.register_forward_hook(hook))

    def replace_forward(self, module: nn.Module, forward: Callable) -> None:
        self._forwards.append((module, module.__dict__.get("forward")))
        module.forward = forward

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        for module, forward in reversed(self._forwards):
            if forward is None:
                del module.forward  # back to the class's own forward
            else:
                module.forward = forward
        self._handles.clear()
        self._forwards.clear()
