"""Channel groups of a network and how to slice them: what PruneTrain regularises and removes.

A channel group is a set of output channels that must go together (a convolution's outputs,
the BatchNorm after it, the inputs of every layer that reads them); :func:`remove_channels`
slices every tensor of a group - weights, statistics, optimizer state - so the smaller
network is dense again. Used by :mod:`accelerators.prunetrain`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from automl.core.errors import AutomlError

@dataclass
class ChannelGroup:
    """Channels that live and die together: produced by ``producers`` (output channels of
    convolutions, depthwise ones included), normalised by ``norms``, read by ``consumers``
    (input channels of convolutions or of the classifier)."""

    name: str
    producers: list[nn.Conv2d] = field(default_factory=list)
    norms: list[nn.BatchNorm2d] = field(default_factory=list)
    consumers: list[nn.Module] = field(default_factory=list)
    outputs: list[nn.Module] = field(default_factory=list)  # what emits the channel: (weight_c, bias_c)

    def __post_init__(self) -> None:
        if not self.outputs:  # a stream's channel is emitted by every producer (BN if any)
            self.outputs = list(self.norms or self.producers)

    @property
    def width(self) -> int:
        return self.producers[0].out_channels


def _out_sq(conv: nn.Conv2d) -> Tensor:
    """Squared L2 norm of each output-channel slice."""
    return conv.weight.pow(2).flatten(1).sum(1)


def _in_sq(layer: nn.Module) -> Tensor:
    """Squared L2 norm of each input-channel slice (conv or linear)."""
    w = layer.weight.pow(2)
    return w.sum(0) if w.dim() == 2 else w.sum((0, 2, 3))


def channel_groups(model: nn.Module) -> list[ChannelGroup]:
    """The prunable channel groups of a ``mobile`` network, in network order."""
    if not all(hasattr(model, a) for a in ("stem", "stages", "head", "classifier")):
        raise AutomlError("prunetrain reconfigures only the mobile space's networks "
                          f"(stem, stages, head, classifier); got {type(model).__name__}")
    groups: list[ChannelGroup] = []
    stream = ChannelGroup("stem", [model.stem[0]], _norms(model.stem))
    groups.append(stream)
    for s, stage in enumerate(model.stages, start=1):
        for b, block in enumerate(stage):
            stream.consumers.append(block.expand[0])
            groups.append(ChannelGroup(f"s{s}.b{b}.hidden", [block.expand[0], block.depthwise[0]],
                                       _norms(block.expand) + _norms(block.depthwise), [block.project[0]],
                                       outputs=(_norms(block.depthwise) or [block.depthwise[0]])))
            if block.use_residual:  # output added to the input: the same channels
                stream.producers.append(block.project[0])
                stream.norms += _norms(block.project)
                stream.outputs = list(stream.norms or stream.producers)
            else:
                stream = ChannelGroup(f"s{s}" if b == 0 else f"s{s}.b{b}", [block.project[0]], _norms(block.project))
                groups.append(stream)
    stream.consumers.append(model.head[0])
    groups.append(ChannelGroup("head", [model.head[0]], _norms(model.head), [model.classifier]))
    return groups


def _norms(layers: nn.Sequential) -> list[nn.BatchNorm2d]:
    """The BatchNorm after a convolution (none in the space's ``norm=none`` networks)."""
    return [m for m in layers if isinstance(m, nn.BatchNorm2d)]


def _emit_sq(module: nn.Module) -> Tensor:
    """Squared L2 norm of what emits each output channel: a BatchNorm's (gamma_c, beta_c),
    or a convolution's output slice with its bias (networks without normalisation)."""
    total = module.weight.detach().pow(2).flatten(1).sum(1) if module.weight.dim() > 1 else module.weight.detach().pow(2)
    if module.bias is not None:
        total = total + module.bias.detach().pow(2)
    return total


@torch.no_grad()
def group_lasso(groups: list[ChannelGroup]) -> Tensor:
    """Sum of the L2 norms of every group: each output module's per-channel (weight_c, bias_c)
    (a BatchNorm's gamma and beta; a convolution's slice and bias without normalisation) and,
    without normalisation only, each consumer's input-channel slice."""
    terms = []
    for group in groups:
        terms += [_emit_sq(module).sqrt().sum() for module in group.outputs]
        if not group.norms:  # with BatchNorm the readers' scale is free: only (gamma, beta) count
            terms += [_in_sq(layer).detach().sqrt().sum() for layer in group.consumers]
    return torch.stack(terms).sum()


def _shrink(tensor: Tensor, scale: Tensor, dim: int) -> None:
    shape = [1] * tensor.dim()
    shape[dim] = -1
    tensor.mul_(scale.view(shape).to(tensor.dtype))


@torch.no_grad()
def proximal_step(groups: list[ChannelGroup], threshold: float) -> None:
    """Group soft-thresholding, the proximal operator of ``threshold`` x group lasso: every
    group v becomes v * max(0, 1 - threshold / ||v||), so small groups land on exact zeros."""
    if threshold <= 0:
        return
    for group in groups:
        for module in group.outputs:
            scale = (1 - threshold / _emit_sq(module).sqrt().clamp_min(1e-30)).clamp_min(0)
            _shrink(module.weight, scale, 0)
            if module.bias is not None:
                _shrink(module.bias, scale, 0)
        for layer in ([] if group.norms else group.consumers):
            scale = (1 - threshold / _in_sq(layer).sqrt().clamp_min(1e-30)).clamp_min(0)
            _shrink(layer.weight, scale, 1)


@torch.no_grad()
def channel_norms(group: ChannelGroup) -> Tensor:
    """Per channel, its liveness: the smaller of what emits it (max over the output modules of
    ||(weight_c, bias_c)||: zero means every producer outputs exact zeros) and what reads it
    (the L2 norm of all consumers' input slices: zero means nobody reads it)."""
    emitted = torch.stack([_emit_sq(module) for module in group.outputs]).amax(0).sqrt()
    read = sum(_in_sq(layer).detach() for layer in group.consumers).sqrt()
    return torch.minimum(emitted, read)


def _like(new: Tensor, old: Tensor) -> Tensor:
    """``new`` dense, in ``old``'s memory format (channels_last weights stay channels_last)."""
    if old.dim() == 4 and old.is_contiguous(memory_format=torch.channels_last) and not old.is_contiguous():
        return new.contiguous(memory_format=torch.channels_last)
    return new.contiguous()


class _Slicer:
    """Replaces parameters by sliced copies and remembers how, to slice optimizer state alike.

    A layer may be sliced twice in one reconfiguration (an expand convolution loses input
    channels with the stream and output channels with its hidden group), so each new
    parameter remembers the original one and every slice taken since."""

    def __init__(self) -> None:
        self.origin: dict[Tensor, tuple[Tensor, list[tuple[int, Tensor]]]] = {}  # new -> (original, slices)

    def parameter(self, module: nn.Module, name: str, dim: int, index: Tensor) -> None:
        old = getattr(module, name)
        if old is None:
            return
        new = nn.Parameter(_like(old.detach().index_select(dim, index), old), requires_grad=old.requires_grad)
        setattr(module, name, new)
        root, slices = self.origin.pop(old, (old, []))
        self.origin[new] = (root, [*slices, (dim, index)])

    def outputs(self, conv: nn.Conv2d, index: Tensor) -> None:
        self.parameter(conv, "weight", 0, index)
        self.parameter(conv, "bias", 0, index)
        conv.out_channels = len(index)
        if conv.groups > 1:  # depthwise: one filter per channel
            conv.in_channels = conv.groups = len(index)

    def inputs(self, layer: nn.Module, index: Tensor) -> None:
        self.parameter(layer, "weight", 1, index)
        if isinstance(layer, nn.Linear):
            layer.in_features = len(index)
        else:
            layer.in_channels = len(index)

    def norm(self, bn: nn.BatchNorm2d, index: Tensor) -> None:
        self.parameter(bn, "weight", 0, index)
        self.parameter(bn, "bias", 0, index)
        bn.running_mean = bn.running_mean.index_select(0, index)
        bn.running_var = bn.running_var.index_select(0, index)
        bn.num_features = len(index)

    def optimizer_state(self, model: nn.Module, optimizer: torch.optim.Optimizer | None) -> dict[Tensor, dict]:
        """The old optimizer's per-parameter state (momentum), sliced like the parameters and
        keyed by the model's current ones; unchanged parameters keep theirs as it is."""
        if optimizer is None:
            return {}
        carried: dict[Tensor, dict] = {}
        for p in model.parameters():
            root, slices = self.origin.get(p, (p, []))
            state = optimizer.state.get(root)
            if not state:
                continue
            carried[p] = {}
            for key, value in state.items():
                if torch.is_tensor(value) and value.shape == root.shape:
                    for dim, index in slices:
                        value = value.index_select(dim, index)
                    value = _like(value, p.detach()).clone()
                carried[p][key] = value
        return carried


def remove_channels(group: ChannelGroup, keep: Tensor, slicer: _Slicer) -> None:
    """Slice every tensor of ``group`` to the channels in ``keep`` (sorted indices)."""
    for conv in group.producers:
        slicer.outputs(conv, keep)
    for bn in group.norms:
        slicer.norm(bn, keep)
    for layer in group.consumers:
        slicer.inputs(layer, keep)


def _conv_out(size: tuple[int, int], conv: nn.Conv2d) -> tuple[int, int]:
    return tuple((n + 2 * p - d * (k - 1) - 1) // s + 1  # type: ignore[return-value]
                 for n, p, d, k, s in zip(size, conv.padding, conv.dilation, conv.kernel_size, conv.stride))


def forward_flops(model: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """Forward FLOPs of one sample of a mobile network (2 per multiply-add, convs and linear),
    from the layer shapes alone - no forward pass through other accelerators' hooks."""
    size = tuple(input_shape[1:])
    total = 0

    def conv(layer: nn.Conv2d) -> None:
        nonlocal size, total
        size = _conv_out(size, layer)
        kh, kw = layer.kernel_size
        total += 2 * size[0] * size[1] * layer.out_channels * (layer.in_channels // layer.groups) * kh * kw

    conv(model.stem[0])
    for stage in model.stages:
        for block in stage:
            for layer in (block.expand[0], block.depthwise[0], block.project[0]):
                conv(layer)
    conv(model.head[0])
    total += 2 * model.classifier.in_features * model.classifier.out_features
    return total


def architecture(groups: list[ChannelGroup], model: nn.Module) -> dict[str, Any]:
    """Widths of the (pruned) network: stem, per stage per block hidden and output, head."""
    by_name = {g.name: g for g in groups}
    stages = []
    for s, stage in enumerate(model.stages, start=1):
        stages.append([{"hidden": block.expand[0].out_channels, "out": block.project[0].out_channels,
                        "kernel": block.depthwise[0].kernel_size[0], "stride": block.depthwise[0].stride[0],
                        "residual": bool(block.use_residual)} for block in stage])
    return {"stem": by_name["stem"].width, "stages": stages, "head": by_name["head"].width}


def architecture_string(arch: dict[str, Any]) -> str:
    """``stem7-[h8c8]-[h7c14]-[h16c24,h60c24]-...-head120``: hidden and output width per block."""
    stages = ["[" + ",".join(f"h{b['hidden']}c{b['out']}" for b in stage) + "]" for stage in arch["stages"]]
    return "-".join([f"stem{arch['stem']}", *stages, f"head{arch['head']}"])
