"""The ``dvolver`` genotype: two NASNet cells (normal and reduction) plus the macro genes.

A cell has B = 5 blocks. Block ``b`` applies an operation to each of two hidden states and adds
the results; hidden state 0 is the previous cell's output (after the cell's 1x1 projection),
1 the output of the cell before it, and ``2 + b`` the output of block ``b`` - the numbering of
TensorFlow's NASNet code, which Dvolver (guillaume-michel/dvolver) searches. The cell's output
concatenates the blocks no later block reads, plus an optional ``cat`` state (Dvolver's
``extra_concat``; NASNet-A's normal cell concatenates state 1, its reduction cell state 3).

Genes, in order: ``N`` (normal cells per stage), ``F`` (filters of the first stage), then per
cell type ``t`` in ``n`` (normal), ``r`` (reduction): ``t{b}_in0, t{b}_op0, t{b}_in1, t{b}_op1``
for each block and ``t_cat``. ``N`` and ``F`` are ordinal; inputs, operations and ``cat`` are
nominal. The readable notation (:func:`format_genotype`)::

    N4-F44-normal[sep5@0+sep3@1,sep5@1+sep3@1,avg3@0+id@1,avg3@1+avg3@1,sep3@0+id@0,cat1]-reduce[...,cat3]

reads "normal cell, block 0: separable 5x5 of state 0 plus separable 3x3 of state 1, ...".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from automl.core.errors import InvalidGenomeError

BLOCKS = 5
# Dvolver's operation set (its search_space.py): separable convolutions stacked twice as in
# NASNet ("separable_kxk_2"), 3x3 pooling, and the identity ("none").
OPS = ["sep3", "sep5", "sep7", "avg3", "max3", "id"]
KERNELS = {"sep3": 3, "sep5": 5, "sep7": 7, "avg3": 3, "max3": 3}
CELLS = {"n": "normal", "r": "reduce"}
NO_CAT = "-"
CATS = [NO_CAT, *(str(i) for i in range(BLOCKS + 1))]
CELLS_PER_STAGE = [1, 2, 3, 4]  # up to NASNet-A mobile's 4; Dvolver searched with 2
FILTERS = [8, 12, 16, 24, 32, 44]
REFERENCE_WIDTH = 32  # channels at which operation costs are compared


def op_cost(op: str) -> float:
    """Multiply-adds per output value at :data:`REFERENCE_WIDTH` channels: a stacked separable
    kxk convolution is two (kxk depthwise + 1x1 pointwise) layers; pooling has no products but
    reads 9 values, so it costs a little more than the identity."""
    if op.startswith("sep"):
        return 2.0 * (KERNELS[op] ** 2 + REFERENCE_WIDTH)
    return 1.0 if op in ("avg3", "max3") else 0.0


@dataclass(frozen=True)
class Block:
    in0: int
    op0: str
    in1: int
    op1: str


@dataclass(frozen=True)
class Cell:
    """One cell type: its blocks and the extra state its output concatenates (None: none)."""

    blocks: tuple[Block, ...]
    cat: int | None

    def outputs(self) -> list[int]:
        """Hidden states the cell concatenates, in order: unread blocks plus ``cat``."""
        read = {i for b in self.blocks for i in (b.in0, b.in1)}
        states = {2 + b for b in range(len(self.blocks)) if 2 + b not in read}
        if self.cat is not None:
            states.add(self.cat)
        return sorted(states)


def gene_names() -> list[str]:
    names = ["N", "F"]
    for t in CELLS:
        for b in range(BLOCKS):
            names += [f"{t}{b}_in0", f"{t}{b}_op0", f"{t}{b}_in1", f"{t}{b}_op1"]
        names.append(f"{t}_cat")
    return names


def gene_choices() -> dict[str, list[Any]]:
    genes: dict[str, list[Any]] = {"N": list(CELLS_PER_STAGE), "F": list(FILTERS)}
    for t in CELLS:
        for b in range(BLOCKS):
            inputs = list(range(b + 2))
            genes.update({f"{t}{b}_in0": inputs, f"{t}{b}_op0": list(OPS),
                          f"{t}{b}_in1": list(inputs), f"{t}{b}_op1": list(OPS)})
        genes[f"{t}_cat"] = list(CATS)
    return genes


def cell_of(genome: Mapping[str, Any], t: str) -> Cell:
    """The ``t`` (``n`` or ``r``) cell a genome describes."""
    blocks = tuple(Block(genome[f"{t}{b}_in0"], genome[f"{t}{b}_op0"], genome[f"{t}{b}_in1"],
                         genome[f"{t}{b}_op1"]) for b in range(BLOCKS))
    cat = genome[f"{t}_cat"]
    return Cell(blocks, None if cat == NO_CAT else int(cat))


def cell_values(t: str, cell: Cell) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for b, block in enumerate(cell.blocks):
        values.update({f"{t}{b}_in0": block.in0, f"{t}{b}_op0": block.op0,
                       f"{t}{b}_in1": block.in1, f"{t}{b}_op1": block.op1})
    values[f"{t}_cat"] = NO_CAT if cell.cat is None else str(cell.cat)
    return values


def format_cell(cell: Cell) -> str:
    blocks = [f"{b.op0}@{b.in0}+{b.op1}@{b.in1}" for b in cell.blocks]
    return ",".join([*blocks, f"cat{NO_CAT if cell.cat is None else cell.cat}"])


def format_genotype(genome: Mapping[str, Any]) -> str:
    cells = "-".join(f"{CELLS[t]}[{format_cell(cell_of(genome, t))}]" for t in CELLS)
    return f"N{genome['N']}-F{genome['F']}-{cells}"


_GENOTYPE = re.compile(r"^N(\d+)-F(\d+)-normal\[([^\]]*)\]-reduce\[([^\]]*)\]$")
_BLOCK = re.compile(r"^(\w+)@(\d+)\+(\w+)@(\d+)$")


def parse_cell(text: str, where: str) -> Cell:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != BLOCKS + 1 or not parts[-1].startswith("cat"):
        raise InvalidGenomeError(f"{where} cell {text!r} must read {BLOCKS} blocks opA@i+opB@j, then catK or cat-")
    blocks = []
    for b, part in enumerate(parts[:-1]):
        match = _BLOCK.match(part)
        if not match:
            raise InvalidGenomeError(f"{where} cell, block {b}: {part!r} is not opA@i+opB@j (ops {OPS})")
        op0, in0, op1, in1 = match.groups()
        blocks.append(Block(int(in0), op0, int(in1), op1))
    cat = parts[-1][3:]
    if cat != NO_CAT and not cat.isdigit():
        raise InvalidGenomeError(f"{where} cell: {parts[-1]!r} is not catK or cat{NO_CAT}")
    return Cell(tuple(blocks), None if cat == NO_CAT else int(cat))


def parse_genotype(text: str) -> dict[str, Any]:
    """Gene values from the readable notation (validation is the space's job)."""
    match = _GENOTYPE.match(text.strip())
    if not match:
        raise InvalidGenomeError(f"dvolver genome {text!r} must read NCELLS-FFILTERS-normal[...]-reduce[...]")
    cells_per_stage, filters, normal, reduce = match.groups()
    values: dict[str, Any] = {"N": int(cells_per_stage), "F": int(filters)}
    values.update(cell_values("n", parse_cell(normal, "normal")))
    values.update(cell_values("r", parse_cell(reduce, "reduce")))
    return values


# Published cells. NASNet-A (Zoph et al. 2018, as in TensorFlow's nasnet_utils and Dvolver's
# data/nasneta/nasneta.csv); "nasnet-a" is NASNet-A mobile, 4 @ 1056 (N = 4, F = 44).
PRESETS: dict[str, str] = {
    "nasnet-a": "N4-F44"
                "-normal[sep5@0+sep3@1,sep5@1+sep3@1,avg3@0+id@1,avg3@1+avg3@1,sep3@0+id@0,cat1]"
                "-reduce[sep5@0+sep7@1,max3@0+sep7@1,avg3@0+sep5@1,id@3+avg3@2,sep3@2+max3@0,cat3]",
}
