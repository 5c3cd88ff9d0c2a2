"""Forward FLOPs and parameter counts of any nn.Module.

Convention (DESIGN.md): forward FLOPs for one sample at the dataset's input shape, 2 FLOPs
per multiply-add, with the per-operator formulas of ``torch.utils.flop_counter`` (the ones
``FlopCounterMode`` uses). Only matrix products and convolutions are counted, as in the
published counts of torchvision's models; normalisation, activations and pooling are not.

We dispatch to ``torch.utils.flop_counter.flop_registry`` from a minimal dispatch mode rather
than through ``FlopCounterMode`` itself: the totals are identical (a test checks it), but
FlopCounterMode also attributes FLOPs to every submodule, which makes one count about 7x
slower - and constraint checks (``--max-flops``) count many candidate models.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry


_BATCH_NORM = torch.ops.aten.native_batch_norm.default  # (input, weight, bias, mean, var, training, ...)
_BATCH_NORM_BACKWARD = torch.ops.aten.native_batch_norm_backward.default  # (grad_out, input, weight, ...)


def shape_only_result(func, args: tuple):
    """What ``func`` returns on meta tensors, written down without running it - or None.

    Meta kernels compute shapes in Python, one operator at a time, and a few operators were
    most of that time: BatchNorm forward and backward (60% of a training step's trace, half of
    counting a NASNet-cell model) and in-place elementwise operators such as ReLU6 (70% of
    counting a MobileNetV2-like model). Their results follow from the input alone: BatchNorm's
    output and input gradient have the input's shape and strides, its statistics and parameter
    gradients one value per channel; an in-place elementwise operator returns its input. Tests
    check that counts and traces are the same with and without this.
    """
    if not args or not isinstance(args[0], torch.Tensor) or args[0].device.type != "meta":
        return None
    if func is _BATCH_NORM or func is _BATCH_NORM_BACKWARD:
        x = args[0] if func is _BATCH_NORM else args[1]
        dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
        return torch.empty_like(x), x.new_empty((x.shape[1],), dtype=dtype), x.new_empty((x.shape[1],), dtype=dtype)
    if _in_place_pointwise(func):
        return args[0]
    return None


@cache
def _in_place_pointwise(func) -> bool:
    first = func._schema.arguments[0] if func._schema.arguments else None
    return torch.Tag.pointwise in func.tags and first is not None and first.alias_info is not None \
        and first.alias_info.is_write


class _TotalFlops(TorchDispatchMode):
    """Sums torch.utils.flop_counter's per-operator FLOPs over everything that runs."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = shape_only_result(func, args)
        if out is None:
            out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Forward FLOPs for one sample of shape (C, H, W), 2 per multiply-add.

    The model is run once in eval mode without gradients on a zero input on its own device;
    its training mode is restored afterwards.
    """
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), _TotalFlops() as counter:
            model(torch.zeros((1, *input_shape), device=device))
    finally:
        model.train(was_training)
    return int(counter.total)


def model_cost(build: Callable[[], nn.Module], input_shape: tuple[int, ...]) -> tuple[int, int]:
    """(forward FLOPs, parameters) of the model ``build()`` makes, built on the meta device.

    FLOPs and parameters depend on shapes only, and a meta model skips weight initialisation
    and real arithmetic: a NASNet-cell model is counted 3.5x faster (0.9 s against 3.2 s on a
    loaded 2-core machine), which is what constraint repair and candidate sampling spend their
    time on. A model that computes on real data when built or run (a user's space may) is
    built and counted for real instead.
    """
    try:
        with torch.device("meta"):
            model = build()
        return count_flops(model, input_shape), count_params(model)
    except Exception:  # noqa: BLE001 - a real build either counts or raises the real error
        model = build()
        return count_flops(model, input_shape), count_params(model)


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not, buffers excluded)."""
    return sum(p.numel() for p in model.parameters())


TRAINING_PASSES = 3  # one forward product, and two in the backward pass (input and weight gradients)


def training_flops(forward_flops: float, samples: float) -> float:
    """FLOPs of training on ``samples`` samples: the training-cost rule used everywhere.

    Per sample, a convolution or matrix product costs its forward FLOPs once forward and
    twice backward (the gradient of its input and of its weights), so training costs
    ``3 x forward FLOPs x samples`` - the rule of Kaplan et al. (2020) and of most MFU
    figures. Normalisation, activations and optimizer updates are not counted, as in
    :func:`count_flops`.
    """
    return TRAINING_PASSES * float(forward_flops) * float(samples)
