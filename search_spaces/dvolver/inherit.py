"""Net2Net for ``dvolver`` networks: a child NASNet inherits its trained parent's weights.

- **More filters** (``F`` up) keeps the function exactly. Every cell of one width group (the
  stem cells, each stage) shares one channel map; a cell's states are all added together or
  passed through pooling and identities, so they must share it too, and a concatenated output
  carries it once per state. Factorized reductions write half their channels from each of two
  paths, so the map widens each half on its own (:func:`_role_map`).
- **More cells** (``N`` up) cannot keep the function: a NASNet cell reads the outputs of the two
  cells before it, so no inserted cell is an identity for what follows. New cells copy the
  stage's last parent cell; the move is labelled not function-preserving.
- **A changed operation or input** keeps what matches: an operation whose type and input are
  unchanged copies its weights; a separable convolution that grows its kernel (sep3 -> sep5)
  is zero-padded and keeps its function; anything else starts from the child's initialisation
  and is labelled not function-preserving, as is a changed ``cat`` state or fewer filters.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from automl.core.genome import Genome
from automl.nn import net2net
from automl.nn.net2net import ChannelMap
from search_spaces.dvolver.genotype import BLOCKS, CELLS, KERNELS
from search_spaces.dvolver.model import FactorizedReduce, Identity, NASCell, NASNet, Pool, SepConv


@dataclass
class Mapped:
    """A tensor's channel map and the parent tensor's channel count (what the map indexes)."""

    map: ChannelMap
    parent_size: int


@dataclass
class RoleMap:
    """A width group's map, and its two halves (what factorized reductions write)."""

    full: ChannelMap
    halves: tuple[ChannelMap, ChannelMap]
    parent_width: int


def _role_map(parent: int, child: int, generator: torch.Generator | None) -> RoleMap:
    """Widen (or shrink, keeping the first channels) each half of a width on its own."""
    parts = [(parent // 2, child // 2), (parent - parent // 2, child - child // 2)]
    halves = []
    for p, c in parts:
        if c >= p:
            halves.append(net2net.channel_map(p, c, torch.ones(p), generator))
        else:
            halves.append(net2net.select_map(torch.arange(p, 0, -1, dtype=torch.float32), c))
    return RoleMap(net2net.concat_maps(halves, [p for p, _ in parts]), (halves[0], halves[1]), parent)


def inherit(child: NASNet, parent: NASNet, parent_genome: Genome, child_genome: Genome,
            generator: torch.Generator | None, noise: float) -> list[str]:
    """Copy ``parent``'s weights into ``child`` (built from ``child_genome``); the moves."""
    moves = _gene_moves(parent_genome, child_genome)
    roles = {}
    for role in dict.fromkeys(child.roles):
        width = {c.width for c, r in zip(child.cells, child.roles) if r == role}.pop()
        parent_width = {c.width for c, r in zip(parent.cells, parent.roles) if r == role}.pop()
        roles[role] = _role_map(parent_width, width, generator)
    sources = _sources(parent, child)
    with torch.no_grad():
        stem = _copy_stem(child.stem, parent.stem, generator, noise)
        prev, prev_prev = stem, None
        for i, (cell, source) in enumerate(zip(child.cells, sources)):
            old = parent.cells[source]
            out = _copy_cell(cell, old, roles[child.roles[i]], prev, prev_prev, generator, noise)
            prev, prev_prev = out, prev
        net2net.copy_linear(child.classifier, parent.classifier, prev.map)
    return moves


def _sources(parent: NASNet, child: NASNet) -> list[int]:
    """The parent cell each child cell copies: the same position in its stage, else (a new
    cell) the stage's last parent cell."""
    def positions(net: NASNet) -> dict[tuple[str, bool, int], int]:
        seen: dict[tuple[str, bool], int] = {}
        found = {}
        for i, (cell, role) in enumerate(zip(net.cells, net.roles)):
            key = (role, cell.reduction)
            found[(role, cell.reduction, seen.get(key, 0))] = i
            seen[key] = seen.get(key, 0) + 1
        return found

    old, new = positions(parent), positions(child)
    sources = [0] * len(child.cells)
    for (role, reduction, k), i in new.items():
        candidates = [j for (r, red, n), j in old.items() if r == role and red == reduction and n <= k]
        sources[i] = old.get((role, reduction, k), max(candidates))
    return sources


def _copy_stem(child: nn.Sequential, parent: nn.Sequential, generator, noise: float) -> Mapped:
    width, old = child[0].out_channels, parent[0].out_channels
    out = net2net.channel_map(old, width, parent[1].weight.detach().abs(), generator)
    net2net.copy_conv(child[0], parent[0], out, net2net.identity_map(child[0].in_channels), noise, generator)
    net2net.copy_batchnorm(child[1], parent[1], out)
    return Mapped(out, old)


def _copy_cell(cell: NASCell, old: NASCell, role: RoleMap, prev: Mapped, prev_prev: Mapped | None,
               generator, noise: float) -> Mapped:
    """Copy one cell; returns the map of its output."""
    g = Mapped(role.full, role.parent_width)
    _copy_seq(cell.base, old.base, g, prev, noise, generator)
    state1 = prev if cell.pre is None else g
    if cell.pre is not None and type(cell.pre) is type(old.pre) and prev_prev is not None:
        _copy_any(cell.pre, old.pre, role, prev_prev, noise, generator)
    states = [g, state1] + [g] * BLOCKS
    for b, block in enumerate(cell.cell.blocks):
        old_block = old.cell.blocks[b]
        for slot, (state, op) in enumerate(((block.in0, block.op0), (block.in1, block.op1))):
            old_state, old_op = (old_block.in0, old_block.op0) if slot == 0 else (old_block.in1, old_block.op1)
            if state == old_state and (op == old_op or (op.startswith("sep") and old_op.startswith("sep"))):
                _copy_any(cell.ops[2 * b + slot], old.ops[2 * b + slot], role, states[state], noise, generator)
    for key, fix in cell.fixes.items():
        if key in old.fixes:
            _copy_any(fix, old.fixes[key], role, states[int(key)], noise, generator)
    return _output_map(cell, old, role)


def _output_map(cell: NASCell, old: NASCell, role: RoleMap) -> Mapped:
    old_states = old.cell.outputs()
    parts = [role.full if s in old_states else net2net.missing_map(cell.width) for s in cell.cell.outputs()]
    offsets = [old_states.index(s) * role.parent_width if s in old_states else 0 for s in cell.cell.outputs()]
    index = torch.cat([p.index + o for p, o in zip(parts, offsets)])
    merged = net2net.concat_maps(parts, [0] * len(parts))
    return Mapped(ChannelMap(index, merged.replicas, merged.fresh, merged.lossy, merged.shares, merged.missing),
                  old.out_channels)


def _compatible(conv: nn.Conv2d, old: nn.Conv2d, out: Mapped, inp: Mapped) -> bool:
    in_size = old.in_channels if old.groups == 1 else old.out_channels
    return (len(out.map) == conv.out_channels and out.parent_size == old.out_channels
            and inp.parent_size == in_size and (conv.groups == 1) == (old.groups == 1))


def _copy(conv: nn.Conv2d, old: nn.Conv2d, bn: nn.BatchNorm2d | None, old_bn, out: Mapped, inp: Mapped,
          noise: float, generator) -> None:
    if not _compatible(conv, old, out, inp):
        return
    net2net.copy_conv(conv, old, out.map, inp.map if conv.groups == 1 else out.map, noise, generator)
    if bn is not None:
        net2net.copy_batchnorm(bn, old_bn, out.map)


def _copy_seq(seq: nn.Sequential, old: nn.Sequential, out: Mapped, inp: Mapped, noise: float, generator) -> None:
    """ReLU -> conv -> BN (or conv -> BN) sequences."""
    conv, bn = (seq[1], seq[2]) if isinstance(seq[0], nn.ReLU) else (seq[0], seq[1])
    old_conv, old_bn = (old[1], old[2]) if isinstance(old[0], nn.ReLU) else (old[0], old[1])
    _copy(conv, old_conv, bn, old_bn, out, inp, noise, generator)


def _copy_any(module: nn.Module, old: nn.Module, role: RoleMap, inp: Mapped, noise: float, generator) -> None:
    """Copy an operation, projection or factorized reduction of the same type."""
    g = Mapped(role.full, role.parent_width)
    if isinstance(module, SepConv) and isinstance(old, SepConv):
        _copy(module.dw1, old.dw1, None, None, inp, inp, noise, generator)
        _copy(module.pw1, old.pw1, module.bn1, old.bn1, g, inp, noise, generator)
        _copy(module.dw2, old.dw2, None, None, g, g, noise, generator)
        _copy(module.pw2, old.pw2, module.bn2, old.bn2, g, g, noise, generator)
    elif isinstance(module, FactorizedReduce) and isinstance(old, FactorizedReduce):
        if module.path2 is None or old.path2 is None:
            _copy(module.path1, old.path1, module.bn, old.bn, g, inp, noise, generator)
            return
        half = role.parent_width // 2
        first, second = role.halves
        _copy(module.path1, old.path1, None, None, Mapped(first, half), inp, noise, generator)
        _copy(module.path2, old.path2, None, None, Mapped(second, role.parent_width - half), inp, noise, generator)
        if module.bn.num_features == len(g.map) and old.bn.num_features == g.parent_size:
            net2net.copy_batchnorm(module.bn, old.bn, g.map)
    elif isinstance(module, (Pool, Identity)) and type(module) is type(old):
        if module.proj is not None and old.proj is not None:
            _copy_seq(module.proj, old.proj, g, inp, noise, generator)
    elif isinstance(module, nn.Sequential) and isinstance(old, nn.Sequential):
        _copy_seq(module, old, g, inp, noise, generator)


def _gene_moves(parent: Genome, child: Genome) -> list[str]:
    """What changed, each move labelled when it does not keep the parent's function."""
    moves = []
    if child["F"] != parent["F"]:
        move = f"filters {parent['F']}->{child['F']}"
        moves.append(move if child["F"] > parent["F"] else net2net.lossy(move))
    if child["N"] != parent["N"]:
        moves.append(net2net.lossy(f"cells per stage {parent['N']}->{child['N']}"))
    for t in CELLS:
        for b in range(BLOCKS):
            for slot in (0, 1):
                op, old_op = child[f"{t}{b}_op{slot}"], parent[f"{t}{b}_op{slot}"]
                source, old_source = child[f"{t}{b}_in{slot}"], parent[f"{t}{b}_in{slot}"]
                if source != old_source:
                    moves.append(net2net.lossy(f"{t}{b} input{slot} {old_source}->{source}"))
                if op != old_op:
                    move = f"{t}{b} op{slot} {old_op}->{op}"
                    grows = (op.startswith("sep") and old_op.startswith("sep") and KERNELS[op] > KERNELS[old_op]
                             and source == old_source)
                    moves.append(move if grows else net2net.lossy(move))
        if child[f"{t}_cat"] != parent[f"{t}_cat"]:
            moves.append(net2net.lossy(f"{t} cat {parent[f'{t}_cat']}->{child[f'{t}_cat']}"))
    return moves
