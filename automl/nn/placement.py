"""Where layers go when training is distributed: bytes moved per step and step time for ring
all-reduce, a parameter server holding every layer, and Park et al.'s resource-aware placement.

Why: Park et al. (2019) find that in parameter-server training the network is the bottleneck,
and that layers should be placed by the resources each uses: a parameter-heavy, compute-light
layer (a large fully connected classifier) is cheaper to run on the server itself - workers
send it their activations and get activation gradients back - than to ship its weights and
gradients every step; compute-heavy convolutions stay data-parallel on the workers.

Per step, with ``N`` workers of batch ``b`` each, ``S`` the bytes of all gradients (one per
parameter) and link bandwidth ``W`` (bytes/s), on top of each worker's compute ``t_c``:

- ring all-reduce: each worker sends and receives ``2 (N-1)/N x S``;
  ``t = t_c + 2 (N-1)/N x S / W``.
- parameter server: each worker pushes ``S`` of gradients and pulls ``S`` of weights; the
  server's link carries ``2 N S``: ``t = t_c + 2 N S / W``.
- resource-aware (Park): the units after a cut point ``k`` run on the server for all ``N``
  workers' samples; only the units before it are data-parallel. The server's link carries
  ``2 N (S_<k + A_k)``, ``A_k`` the activation bytes of ``b`` samples crossing the cut (sent
  forward, their gradient sent back), and the server computes the suffix for ``N b`` samples:
  ``t = t_c,<k + N t_c,>=k + 2 N (S_<k + A_k) / W``; ``k`` minimises ``t`` (``k`` = all units is
  the plain parameter server).

Units are the model's top-level children, with ``nn.Sequential``/``nn.ModuleList`` containers
expanded in order: the places a network that runs its children one after the other can be
cut with one tensor crossing.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from automl.nn.costmodel import StepCost

BYTES = 4  # fp32 gradients and weights, as DistributedDataParallel all-reduces them


@dataclass
class Unit:
    """One place-able unit: its parameters, work and the activation it hands on."""

    name: str
    params: int
    forward_flops: float
    activation_elements: int  # output elements for the whole per-worker batch
    seconds: float  # predicted training-step seconds (forward, backward, update) of the unit


@dataclass
class Strategy:
    """Bytes and predicted step time of one way to distribute a step."""

    name: str
    bytes_per_worker: float  # sent plus received by one worker per step
    bytes_busiest_link: float  # what the most loaded link carries per step
    step_seconds: float
    detail: dict[str, Any] = field(default_factory=dict)


def units_of(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model's units in execution order (containers expanded)."""
    found: list[tuple[str, nn.Module]] = []

    def walk(prefix: str, module: nn.Module) -> None:
        for name, child in module.named_children():
            full = f"{prefix}.{name}" if prefix else name
            if isinstance(child, (nn.Sequential, nn.ModuleList)):
                walk(full, child)
            else:
                found.append((full, child))
    walk("", model)
    return found


def gradient_bytes(model: nn.Module) -> int:
    """Bytes of one step's gradients: what data parallelism all-reduces."""
    return BYTES * sum(p.numel() for p in model.parameters() if p.requires_grad)


def measure_units(model: nn.Module, input_shape: tuple[int, ...], batch_size: int, cost: StepCost) -> list[Unit]:
    """Per unit: parameters, forward FLOPs and seconds (from the cost model's layers, summed
    under the unit's name) and output elements at ``batch_size`` (a forward pass on meta)."""
    meta = copy.deepcopy(model).to("meta")
    named = dict(units_of(meta))
    outputs: dict[str, int] = {}
    hooks = [module.register_forward_hook(lambda m, i, o, n=name: outputs.__setitem__(n, o.numel()))
             for name, module in named.items()]
    try:
        with torch.no_grad():
            meta(torch.empty((batch_size, *input_shape), device="meta"))
    finally:
        for hook in hooks:
            hook.remove()

    def under(layer: str, unit: str) -> bool:
        return layer == unit or layer.startswith(unit + ".")

    units = []
    for name, module in units_of(model):
        layers = [layer for layer in cost.layers if under(layer.layer, name)]
        units.append(Unit(name, sum(p.numel() for p in module.parameters()),
                          sum(layer.forward_flops for layer in layers), outputs.get(name, 0),
                          sum(layer.seconds for layer in layers)))
    return units


def ring_allreduce(grad_bytes: float, workers: int, compute: float, bandwidth: float) -> Strategy:
    moved = 2 * (workers - 1) / workers * grad_bytes
    return Strategy("ring all-reduce", moved, moved, compute + moved / bandwidth,
                    {"gradient_bytes": grad_bytes})


def parameter_server(grad_bytes: float, workers: int, compute: float, bandwidth: float) -> Strategy:
    server = 2 * workers * grad_bytes
    return Strategy("parameter server", 2 * grad_bytes, server, compute + server / bandwidth,
                    {"gradient_bytes": grad_bytes})


def resource_aware(units: list[Unit], workers: int, overhead: float, bandwidth: float) -> Strategy:
    """Park et al.: the cut that minimises the step time, the suffix on the server."""
    best: Strategy | None = None
    for k in range(1, len(units) + 1):
        prefix, suffix = units[:k], units[k:]
        params = BYTES * sum(u.params for u in prefix)
        crossing = BYTES * prefix[-1].activation_elements if suffix else 0
        server = 2 * workers * (params + crossing)
        seconds = (overhead + sum(u.seconds for u in prefix) + workers * sum(u.seconds for u in suffix)
                   + server / bandwidth)
        if best is None or seconds < best.step_seconds:
            best = Strategy("resource-aware (Park)", 2 * (params + crossing), server, seconds,
                            {"server_units": [u.name for u in suffix], "cut_after": prefix[-1].name,
                             "activation_bytes_crossing": crossing, "data_parallel_gradient_bytes": params})
    assert best is not None
    return best


def placements(model: nn.Module, units: list[Unit], workers: int, bandwidth: float, cost: StepCost) -> list[Strategy]:
    """The three strategies for ``workers`` workers on links of ``bandwidth`` bytes/s."""
    grad = gradient_bytes(model)
    return [ring_allreduce(grad, workers, cost.step_seconds, bandwidth),
            parameter_server(grad, workers, cost.step_seconds, bandwidth),
            resource_aware(units, workers, cost.step_seconds - sum(u.seconds for u in units), bandwidth)]
