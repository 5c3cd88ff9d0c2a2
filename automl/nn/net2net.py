"""Net2Net: grow a child network from its trained parent without changing what it computes.

Chen, Goodfellow & Shlens (2015), "Net2Net: Accelerating Learning via Knowledge Transfer".
A search space composes these primitives in its ``inherit`` method; this module knows
channels, convolutions, BatchNorm and linear layers, not architectures.

- **Net2WiderNet** (:func:`widen_map`): a layer with more channels takes parent channel
  ``g(j)`` for child channel ``j`` - the identity for the old channels, random picks for the
  new ones. Incoming weights, biases, BatchNorm scales, shifts and running statistics are
  copied through ``g``; the *outgoing* weights of a parent channel are split among its
  replicas, so consumers see the same sums. The split is **unequal** (random shares that sum
  to one): replicas then receive different gradients and drift apart from the first SGD step,
  while the function at t = 0 is kept exactly. (Chen et al.'s equal split leaves replicas
  bit-identical forever unless something else, noise or dropout, breaks the tie.) Depthwise
  convolutions map input and output channels through the same ``g``. Optional ``noise``
  perturbs the replicas' incoming weights (then the function is only approximately kept).
- **Net2DeeperNet** (:func:`make_identity`): a new residual block whose last BatchNorm has
  zero scale and shift adds exactly zero, in train and in eval mode (without normalisation:
  whose last convolution has zero weights and bias).
- **Kernel grow** (:func:`resize_kernel`): a kxk kernel zero-padded to (k+2)x(k+2) with the
  padding grown by one computes the same convolution.
- **Lossy moves** are labelled with :func:`lossy` (``is_lossy`` reads the label): the
  evaluator and the contract tests know which moves keep the function and which do not.
- **Shrinking** is not function-preserving: fewer channels keep the most important ones
  (largest |BatchNorm scale| summed over the layers that write the channels, or mean |weight|
  per output channel of a convolution without normalisation), a smaller
  kernel keeps its centre taps, and a stage with fewer blocks keeps its first block and its
  most important others. Inherited weights then start close, not equal, to the parent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, nn


LOSSY = " (not function-preserving)"


def lossy(move: str) -> str:
    """Label a move that does not keep the parent's function."""
    return move + LOSSY


def is_lossy(move: str) -> bool:
    return move.endswith(LOSSY)


@dataclass(frozen=True)
class ChannelMap:
    """Child channel ``j`` takes parent channel ``index[j]``.

    ``replicas[j]`` is how many child channels share that parent channel; ``share[j]`` is the
    fraction of that channel's outgoing weights child channel ``j`` carries (the shares of one
    parent channel's replicas sum to one); ``fresh[j]`` marks replicas added by widening;
    ``missing[j]`` (optional) marks child channels with no parent channel at all (a lossy
    move): they keep the child's own initialisation.
    """

    index: Tensor
    replicas: Tensor
    fresh: Tensor
    lossy: bool = False
    share: Tensor | None = None
    missing: Tensor | None = None

    def __len__(self) -> int:
        return len(self.index)

    @property
    def shares(self) -> Tensor:
        return self.share if self.share is not None else 1.0 / self.replicas


def identity_map(n: int) -> ChannelMap:
    return ChannelMap(torch.arange(n), torch.ones(n), torch.zeros(n, dtype=torch.bool))


def split_shares(index: Tensor, parent: int, generator: torch.Generator | None = None,
                 spread: float = 0.5) -> Tensor:
    """Unequal shares of each parent channel among its replicas: weights drawn from
    ``1 +- spread`` and normalised per parent channel (a channel without replicas keeps 1)."""
    weights = 1.0 + spread * (2.0 * torch.rand(len(index), generator=generator) - 1.0)
    totals = torch.zeros(parent).index_add_(0, index, weights)
    return weights / totals[index]


def widen_map(parent: int, child: int, generator: torch.Generator | None = None,
              unequal: bool = True) -> ChannelMap:
    """Net2WiderNet's random mapping g: old channels first, new ones copy random old ones;
    ``unequal`` splits outgoing weights by random shares (breaks the replicas' symmetry)."""
    extra = torch.randint(parent, (child - parent,), generator=generator)
    index = torch.cat([torch.arange(parent), extra])
    counts = torch.bincount(index, minlength=parent).to(torch.float32)
    fresh = torch.arange(child) >= parent
    share = split_shares(index, parent, generator) if unequal else 1.0 / counts[index]
    return ChannelMap(index, counts[index], fresh, share=share)


def select_map(importance: Tensor, child: int) -> ChannelMap:
    """Keep the ``child`` most important parent channels, in their original order."""
    keep = torch.sort(torch.topk(importance, child).indices).values
    return ChannelMap(keep, torch.ones(child), torch.zeros(child, dtype=torch.bool), lossy=True)


def channel_map(parent: int, child: int, importance: Tensor, generator: torch.Generator | None = None) -> ChannelMap:
    """Identity, widening or shrinking, whichever turns ``parent`` channels into ``child``."""
    if child == parent:
        return identity_map(parent)
    if child > parent:
        return widen_map(parent, child, generator)
    return select_map(importance, child)


def concat_maps(maps: list[ChannelMap], parent_sizes: list[int]) -> ChannelMap:
    """The map of a concatenation: each part's map, its indices offset by the parent parts
    before it (``parent_sizes``)."""
    offsets = torch.tensor([0, *parent_sizes[:-1]]).cumsum(0).tolist()
    return ChannelMap(torch.cat([m.index + o for m, o in zip(maps, offsets)]),
                      torch.cat([m.replicas for m in maps]), torch.cat([m.fresh for m in maps]),
                      any(m.lossy for m in maps), torch.cat([m.shares for m in maps]),
                      torch.cat([_missing(m) for m in maps]))


def missing_map(n: int) -> ChannelMap:
    """``n`` child channels with no parent counterpart (they keep their initialisation)."""
    return ChannelMap(torch.zeros(n, dtype=torch.long), torch.ones(n), torch.zeros(n, dtype=torch.bool),
                      lossy=True, share=torch.ones(n), missing=torch.ones(n, dtype=torch.bool))


def _missing(m: ChannelMap) -> Tensor:
    return m.missing if m.missing is not None else torch.zeros(len(m), dtype=torch.bool)


def importance(layers: Iterable[nn.Module]) -> Tensor:
    """Channel importance: |scale| summed over the BatchNorms that write the channels; for a
    convolution without normalisation after it, the mean |weight| of each output channel."""
    return sum(_channel_scale(layer) for layer in layers)


def _channel_scale(layer: nn.Module) -> Tensor:
    weight = layer.weight.detach()
    if isinstance(layer, nn.modules.batchnorm._BatchNorm):
        return weight.abs()
    return weight.abs().flatten(1).mean(1)


def resize_kernel(weight: Tensor, size: tuple[int, int]) -> Tensor:
    """Zero-pad (grow) or centre-crop (shrink) the spatial dims of a conv weight."""
    kh, kw = weight.shape[-2:]
    th, tw = size
    if (kh, kw) == (th, tw):
        return weight
    if th >= kh and tw >= kw:
        ph, pw = (th - kh) // 2, (tw - kw) // 2
        return nn.functional.pad(weight, (pw, tw - kw - pw, ph, th - kh - ph))
    top, left = (kh - th) // 2, (kw - tw) // 2
    return weight[..., top:top + th, left:left + tw]


@torch.no_grad()
def copy_conv(child: nn.Conv2d, parent: nn.Conv2d, out_map: ChannelMap, in_map: ChannelMap,
              noise: float = 0.0, generator: torch.Generator | None = None) -> None:
    """Parent conv -> child conv through the channel maps (dense or depthwise)."""
    weight = parent.weight[out_map.index]
    if child.groups == 1:
        weight = weight[:, in_map.index] * in_map.shares.view(1, -1, 1, 1)
    elif child.groups != child.in_channels or not torch.equal(out_map.index, in_map.index):
        raise ValueError("only dense and depthwise convolutions can be mapped")
    weight = resize_kernel(weight, child.kernel_size)
    if noise > 0 and bool(out_map.fresh.any()):
        jitter = torch.randn(weight[out_map.fresh].shape, generator=generator) * noise * weight.std()
        weight[out_map.fresh] += jitter
    if child.groups == 1 and in_map.missing is not None:
        weight[:, in_map.missing] = child.weight[:, in_map.missing]
    _keep_missing(weight, child.weight, out_map)
    child.weight.copy_(weight)
    if child.bias is not None and parent.bias is not None:
        child.bias.copy_(_keep_missing(parent.bias[out_map.index], child.bias, out_map))


@torch.no_grad()
def copy_batchnorm(child: nn.BatchNorm2d, parent: nn.BatchNorm2d, channels: ChannelMap) -> None:
    """Scale, shift and running statistics through the channel map."""
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(child, name).copy_(_keep_missing(getattr(parent, name)[channels.index], getattr(child, name), channels))
    child.num_batches_tracked.copy_(parent.num_batches_tracked)


@torch.no_grad()
def copy_linear(child: nn.Linear, parent: nn.Linear, in_map: ChannelMap) -> None:
    """Classifier weights for widened/shrunk inputs (split by the replicas' shares)."""
    weight = parent.weight[:, in_map.index] * in_map.shares.view(1, -1)
    if in_map.missing is not None:
        weight[:, in_map.missing] = child.weight[:, in_map.missing]
    child.weight.copy_(weight)
    if child.bias is not None and parent.bias is not None:
        child.bias.copy_(parent.bias)


def _keep_missing(values: Tensor, own: Tensor, channels: ChannelMap) -> Tensor:
    """``values`` with the rows of channels that have no parent taken from ``own``."""
    if channels.missing is not None:
        values[channels.missing] = own[channels.missing]
    return values


@torch.no_grad()
def make_identity(last: nn.Module) -> None:
    """Zero scale and shift: the residual branch ending in this BatchNorm (or, in a network
    without normalisation, in this convolution: zero weights and bias) adds exactly 0."""
    last.weight.zero_()
    if last.bias is not None:
        last.bias.zero_()
