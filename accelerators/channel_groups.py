"""Channel groups of a network and how to slice them: what PruneTrain regularises and removes.

A channel group is a set of output channels that must go together (a convolution's outputs,
the BatchNorm after it, the inputs of every layer that reads them); :func:`remove_channels`
slices every tensor of a group - weights, statistics, optimizer state - so the smaller
network is dense again. :func:`group_lasso` is PruneTrain's penalty on convolution weight
slices, :func:`channel_liveness` what decides a channel is dead. Used by
:mod:`accelerators.prunetrain`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from automl.core.errors import AutomlError

EPS = 1e-12  # inside the square root: a defined (zero) gradient for an all-zero slice


@dataclass
class ChannelGroup:
    """Channels that live and die together: produced by ``producers`` (output channels of
    convolutions, depthwise ones included), normalised by ``norms``, read by ``consumers``
    (input channels of convolutions or of the classifier)."""

    name: str
    producers: list[nn.Conv2d] = field(default_factory=list)
    norms: list[nn.BatchNorm2d] = field(default_factory=list)
    consumers: list[nn.Module] = field(default_factory=list)

    @property
    def width(self) -> int:
        return self.producers[0].out_channels

    @property
    def penalised_producers(self) -> list[nn.Conv2d]:
        """The producers whose output slices the lasso penalises: depthwise ones excluded (the
        paper's rule: a depthwise filter has one input channel, it follows its channel)."""
        return [conv for conv in self.producers if not is_depthwise(conv)]


def is_depthwise(conv: nn.Module) -> bool:
    return isinstance(conv, nn.Conv2d) and conv.groups > 1


def _out_abs_max(conv: nn.Conv2d) -> Tensor:
    """Largest |weight| of each output-channel slice."""
    return conv.weight.detach().abs().flatten(1).amax(1)


def _in_abs_max(layer: nn.Module) -> Tensor:
    """Largest |weight| of each input-channel slice (conv or linear)."""
    w = layer.weight.detach().abs()
    return w.amax(0) if w.dim() == 2 else w.amax((0, 2, 3))


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
                                       _norms(block.expand) + _norms(block.depthwise), [block.project[0]]))
            if block.use_residual:  # output added to the input: the same channels
                stream.producers.append(block.project[0])
                stream.norms += _norms(block.project)
            else:
                stream = ChannelGroup(f"s{s}" if b == 0 else f"s{s}.b{b}", [block.project[0]], _norms(block.project))
                groups.append(stream)
    stream.consumers.append(model.head[0])
    groups.append(ChannelGroup("head", [model.head[0]], _norms(model.head), [model.classifier]))
    return groups


def _norms(layers: nn.Sequential) -> list[nn.BatchNorm2d]:
    """The BatchNorm after a convolution (none in the space's ``norm=none`` networks)."""
    return [m for m in layers if isinstance(m, nn.BatchNorm2d)]


def penalised_layers(groups: list[ChannelGroup]) -> list[tuple[nn.Module, bool, bool]]:
    """Every layer the lasso reaches, once, with (output slices?, input slices?): each
    non-depthwise convolution's output-channel slices and input-channel slices - the stem's
    input (the image) excluded - and the classifier's input slices (its outputs are classes)."""
    found: dict[nn.Module, list[bool]] = {}
    for group in groups:
        for conv in group.penalised_producers:
            found.setdefault(conv, [False, False])[0] = True
        for layer in group.consumers:
            found.setdefault(layer, [False, False])[1] = True
    return [(layer, out, inp) for layer, (out, inp) in found.items()]


def group_lasso(layers: list[tuple[nn.Module, bool, bool]]) -> Tensor:
    """The group lasso (differentiable): the sum of the L2 norms of every penalised weight
    slice, output and input channel slices of a layer counted separately, as in the paper."""
    terms = []
    for layer, out, inp in layers:
        squared = layer.weight.pow(2)
        if squared.dim() == 2:  # linear: (out, in)
            squared = squared[:, :, None, None]
        if out:
            terms.append((squared.sum((1, 2, 3)) + EPS).sqrt().sum())
        if inp:
            terms.append((squared.sum((0, 2, 3)) + EPS).sqrt().sum())
    return torch.stack(terms).sum()


def _shrink(tensor: Tensor, scale: Tensor, dim: int) -> None:
    shape = [1] * tensor.dim()
    shape[dim] = -1
    tensor.mul_(scale.view(shape).to(tensor.dtype))


@torch.no_grad()
def proximal_step(layers: list[tuple[nn.Module, bool, bool]], threshold: float) -> None:
    """Group soft-thresholding of every penalised slice, v <- v x max(0, 1 - threshold / ||v||):
    the proximal operator of ``threshold`` x group lasso, applied to the output slices and then
    the input slices of each layer (the groups overlap; one pass of each is the usual
    approximation). Slices weaker than the threshold land on exact zeros."""
    if threshold <= 0:
        return
    for layer, out, inp in layers:
        weight = layer.weight
        for dim, wanted in ((0, out), (1, inp)):
            if wanted:
                other = [d for d in range(weight.dim()) if d != dim]
                norms = weight.pow(2).sum(other).sqrt()
                _shrink(weight, (1 - threshold / norms.clamp_min(1e-30)).clamp_min(0), dim)


@torch.no_grad()
def channel_liveness(group: ChannelGroup) -> Tensor:
    """Per channel, the largest |weight| that produces it (the non-depthwise producers' output
    slices) or reads it (every consumer's input slice): under the paper's threshold every
    weight of the channel is, so nobody produces or reads it any more (the paper's union:
    a channel still produced or still read by one layer is live)."""
    produced = torch.stack([_out_abs_max(conv) for conv in group.penalised_producers]).amax(0)
    read = torch.stack([_in_abs_max(layer) for layer in group.consumers]).amax(0)
    return torch.maximum(produced, read)


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


def _walk(model: nn.Module, input_shape: tuple[int, int, int]) -> Iterator[tuple[nn.Conv2d, tuple[int, int]]]:
    """Every convolution of a mobile network in order, with its output's spatial size."""
    size = tuple(input_shape[1:])
    layers = [model.stem[0]]
    for stage in model.stages:
        for block in stage:
            layers += [block.expand[0], block.depthwise[0], block.project[0]]
    layers.append(model.head[0])
    for layer in layers:
        size = _conv_out(size, layer)
        yield layer, size


def forward_flops(model: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """Forward FLOPs of one sample of a mobile network (2 per multiply-add, convs and linear),
    from the layer shapes alone - no forward pass through other accelerators' hooks."""
    total = 0
    for layer, (h, w) in _walk(model, input_shape):
        kh, kw = layer.kernel_size
        total += 2 * h * w * layer.out_channels * (layer.in_channels // layer.groups) * kh * kw
    return total + 2 * model.classifier.in_features * model.classifier.out_features


def activation_elements(model: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """Elements of every convolution's output for one sample: what training keeps for the
    backward pass grows with it (each output's BatchNorm and activation have its size)."""
    return sum(layer.out_channels * h * w for layer, (h, w) in _walk(model, input_shape))


def channel_widths(model: nn.Module) -> dict[str, int]:
    """Every channel group's width: with its genome, what rebuilds a network PruneTrain narrowed."""
    return {group.name: group.width for group in channel_groups(model)}


def narrow_to(model: nn.Module, widths: dict[str, int]) -> nn.Module:
    """``model``, built from its genome, with each channel group cut to ``widths``: the shape of
    a network PruneTrain narrowed, ready for its weights (the channels kept here do not matter,
    loading the weights overwrites them)."""
    slicer = _Slicer()
    for group in channel_groups(model):
        width = widths.get(group.name, group.width)
        if not 1 <= width <= group.width:
            raise AutomlError(f"channel group {group.name!r} cannot be cut to {width} of its {group.width} channels")
        if width != group.width:
            remove_channels(group, torch.arange(width), slicer)
    return model


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
