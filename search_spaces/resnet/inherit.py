"""Net2Net for ``resnet`` networks.

- **Wider** stem or stages: each stage's residual stream has one channel map (every block
  adds into it), each block's inner layers their own; replicated channels split their
  outgoing weights unequally (:mod:`automl.nn.net2net`). Exact in train and eval mode.
- **Deeper** stages: new blocks at the end of a stage whose last BatchNorm is zero add
  nothing to the stream, and the stream is already non-negative after a ReLU: exact.
- **Larger kernels**: zero-padded, exact.
- **A shortcut that becomes a projection** (a first block whose input and output widths
  started equal and now differ): the new 1x1 convolution selects the matching channels and its
  BatchNorm is an identity in eval mode, so the move is exact in eval mode only (in train mode
  the BatchNorm normalises by the batch until its statistics are learned).
- **Shrinking** (fewer channels or blocks, smaller kernels, a projection that becomes an
  identity) keeps the most important channels, the first blocks and the centre taps; it is
  labelled not function-preserving. A change of block type raises CannotInherit.
"""

from __future__ import annotations

import torch
from torch import nn

from automl.core.errors import CannotInherit
from automl.core.genome import Genome
from automl.nn import net2net
from automl.nn.net2net import ChannelMap
from search_spaces.resnet.model import Block, ResNet


def inherit(child: ResNet, parent: ResNet, parent_genome: Genome, child_genome: Genome,
            generator: torch.Generator | None, noise: float) -> list[str]:
    kind = child_genome["block"]
    if parent_genome["block"] != kind:
        raise CannotInherit(f"cannot inherit across a block type change ({parent_genome['block']} -> {kind})")
    moves = _moves(parent_genome, child_genome)
    with torch.no_grad():
        stem = net2net.channel_map(parent.stem[0].out_channels, child.stem[0].out_channels,
                                   net2net.importance([parent.stem[1]]), generator)
        net2net.copy_conv(child.stem[0], parent.stem[0], stem, net2net.identity_map(child.stem[0].in_channels),
                          noise, generator)
        net2net.copy_batchnorm(child.stem[1], parent.stem[1], stem)
        incoming = stem
        for s, (old, new) in enumerate(zip(parent.stages, child.stages), start=1):
            stream = _stream_map(old, new, incoming, generator)
            for b, block in enumerate(new):
                if b >= len(old):  # Net2DeeperNet: the branch adds exactly zero
                    net2net.make_identity(block.norms[-1])
                    continue
                moves += _copy_block(block, old[b], incoming if b == 0 else stream, stream, f"s{s}", generator, noise)
            incoming = stream
        net2net.copy_linear(child.classifier, parent.classifier, incoming)
    return moves


def _stream_map(old: nn.Sequential, new: nn.Sequential, incoming: ChannelMap, generator) -> ChannelMap:
    """The stage's stream map; where both first blocks pass their input through unprojected,
    the stream is the input itself and shares its map."""
    if old[0].downsample is None and new[0].downsample is None:
        return incoming
    width_old, width_new = old[0].norms[-1].num_features, new[0].norms[-1].num_features
    return net2net.channel_map(width_old, width_new, net2net.importance(b.norms[-1] for b in old), generator)


def _copy_block(block: Block, old: Block, incoming: ChannelMap, stream: ChannelMap, stage: str,
                generator, noise: float) -> list[str]:
    maps = [incoming]
    for conv, norm, old_conv, old_norm in zip(block.convs, block.norms, old.convs, old.norms):
        last = conv is block.convs[-1]
        out = stream if last else net2net.channel_map(old_conv.out_channels, conv.out_channels,
                                                      net2net.importance([old_norm]), generator)
        net2net.copy_conv(conv, old_conv, out, maps[-1], noise, generator)
        net2net.copy_batchnorm(norm, old_norm, out)
        maps.append(out)
    if block.downsample is not None and old.downsample is not None:
        net2net.copy_conv(block.downsample[0], old.downsample[0], stream, incoming, noise, generator)
        net2net.copy_batchnorm(block.downsample[1], old.downsample[1], stream)
    elif block.downsample is not None:
        _selecting_projection(block.downsample, incoming, stream)
        return [f"{stage} shortcut identity->projection (exact in eval mode)"]
    elif old.downsample is not None:
        return [net2net.lossy(f"{stage} shortcut projection->identity")]
    return []


def _selecting_projection(downsample: nn.Sequential, incoming: ChannelMap, stream: ChannelMap) -> None:
    """A 1x1 convolution that reproduces an identity shortcut through the channel maps, and a
    BatchNorm that is the identity in eval mode."""
    conv, norm = downsample
    same = (stream.index.view(-1, 1) == incoming.index.view(1, -1)).to(conv.weight.dtype)
    conv.weight.copy_((same * incoming.shares.view(1, -1)).view_as(conv.weight))
    norm.weight.fill_(1.0)
    norm.bias.zero_()
    norm.running_mean.zero_()
    norm.running_var.fill_(1.0 - norm.eps)


def _moves(parent: Genome, child: Genome) -> list[str]:
    moves = []
    for gene in ("stem", "kernel", *(f"s{s}_{g}" for s in range(1, 5) for g in ("width", "depth"))):
        old, new = parent[gene], child[gene]
        if new != old:
            move = f"{gene.replace('_', ' ')} {old}->{new}"
            moves.append(move if new > old else net2net.lossy(move))
    return moves
