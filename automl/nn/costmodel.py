"""A per-layer roofline model of one training epoch, in any number format.

Why: the training-cost rule (3 x forward FLOPs) ranks architectures but does not say how long
an epoch takes, nor how that time changes with the number format (Gupta et al. 2015 train in
16-bit fixed point). Here every operator one training step dispatches - forward, backward and
the optimizer's update - is traced once on the ``meta`` device (shapes only, no arithmetic),
classified by kind (dense convolution, depthwise convolution, matrix product, elementwise)
and charged, per number format ``f``::

    t_op      = k[f] x ( max(FLOPs_op / P[kind, phase, f],  elements_op x bytes(f) / B)  +  L )
    t_step    = sum over ops of t_op  +  S
    t_epoch   = steps x t_step

``P`` is the machine's throughput for that kind, phase (forward or backward) and format -
for a depthwise convolution also for its kernel size and stride, which pick different kernels
(in bf16 on a CPU a strided depthwise backward can run ten times slower than fp32's) - ``B``
its memory bandwidth, ``L`` the fixed cost of dispatching one operator and ``S`` the per-step
cost outside the operators (batching, the schedule, the Python loop), and ``k[f]`` the
level whole networks run at: measured over predicted seconds of training steps of reference
networks (:mod:`automl.nn.reference`), because operators run at another pace in a network
than alone, by a factor that differs between CPUs; all come from :mod:`automl.nn.calibrate`. An operator without an entry of its own (a depthwise kernel size
not calibrated, the optimizer's update) takes the next coarser one (kind and phase, then kind).
FLOPs of convolutions and matrix products follow ``torch.utils.flop_counter`` (2 per
multiply-add, backward included); an elementwise operator counts one FLOP per output element.
``elements_op`` are the elements of every tensor the operator reads or writes; views move
nothing and are skipped.
"""

from __future__ import annotations

import copy
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry
from torch.utils.module_tracker import ModuleTracker

from automl.core.errors import AutomlError
from automl.nn.flops import shape_only_result

CALIBRATION_VERSION = 5  # 2: per phase, depthwise kernel and stride, channel width; 4: dense kernel and stride;
# 5: the level of whole reference networks (network_scale)
FORMATS: dict[str, int] = {"fp32": 4, "bf16": 2, "fp16": 2, "int8": 1, "fx16": 2}  # bytes per element
NATIVE_CANDIDATES = ("fp32", "bf16", "fp16")  # formats torch may run natively; int8/fx16 never train here
KINDS = ("conv", "depthwise", "matmul", "elementwise")
PHASES = ("forward", "backward", "optimizer")
_MATMULS = {"mm", "addmm", "bmm", "matmul", "linear", "baddbmm", "_int_mm"}
_CONVS = {"convolution", "convolution_backward", "_convolution", "mkldnn_convolution"}


@dataclass(frozen=True)
class Op:
    """One dispatched operator of a training step: who ran it, what kind, how much work."""

    layer: str
    kind: str
    phase: str
    flops: float
    elements: float  # elements read and written
    name: str = ""  # the aten operator (convolution, native_batch_norm_backward, add_, ...)
    variant: str = ""  # a convolution's kernel size and stride ("k5s2"): they pick its kernel and its FLOP/s
    width: float = 0.0  # channels the SIMD lanes run over (a convolution's, a 4-d tensor's); 0: unknown

    def rate_keys(self) -> tuple[str, ...]:
        """Throughput entries that may price this operator, most specific first: a convolution
        by kernel, stride and phase, any other by kind and phase, then the kind."""
        keys = (f"{self.kind}:{self.variant}:{self.phase}",) if self.variant else ()
        return (*keys, f"{self.kind}:{self.phase}", self.kind)


@dataclass
class Calibration:
    """What a machine does per second, per operator kind and number format.

    ``source[kind][format]`` says how each throughput was obtained: ``measured`` (a
    micro-benchmark ran in that format), ``scaled`` (no native kernel: fp32's throughput times
    4 / bytes per element, the lanes a SIMD unit of the same width holds) or ``modelled``
    (fx16: 16-bit fixed point as such hardware would run it; predicted, never measured).
    """

    device: str
    threads: int
    throughput: dict[str, dict[str, float]]  # kind, kind:phase or depthwise:k5s2:phase -> format -> FLOP/s
    bandwidth: float  # bytes/s
    op_latency: float  # s per operator
    step_overhead: float  # s per training step outside the operators
    source: dict[str, dict[str, str]] = field(default_factory=dict)
    machine: str = ""
    clock: str = "wall"  # or "cpu": timed in process CPU time (a shared machine's honest clock)
    # entry -> format -> [[width, FLOP/s], ...] of the calibration layers, narrow to wide
    by_width: dict[str, dict[str, list[list[float]]]] = field(default_factory=dict)
    # format -> k: measured over predicted operator seconds of whole reference networks' steps
    # (geometric mean); format -> network -> that ratio per network. Missing: 1 (not measured).
    network_scale: dict[str, float] = field(default_factory=dict)
    reference_ratios: dict[str, dict[str, float]] = field(default_factory=dict)
    # the native candidates the micro-benchmarks ran in (measured, or found without kernels);
    # the others are scaled from fp32 until a command that needs them measures them
    tried: list[str] = field(default_factory=lambda: list(NATIVE_CANDIDATES))
    version: int = CALIBRATION_VERSION  # of the micro-benchmarks: an older cached calibration is measured again

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def check_formats(names: list[str]) -> list[str]:
    """The formats named, or an error naming the unknown one and the known ones."""
    for name in names:
        if name not in FORMATS:
            raise AutomlError(f"unknown number format {name!r} (known: {', '.join(FORMATS)})")
    if not names:
        raise AutomlError(f"no number format given (known: {', '.join(FORMATS)})")
    return names


def conv_variant(name: str, args: tuple) -> str:
    """``k{kernel}s{stride}`` of a convolution (forward or backward), else ''. A 3x3 dense
    convolution does 9 multiply-adds per value it loads where a 1x1 does one: on a CPU it runs
    at several times the 1x1's FLOP/s (ResNets were over-predicted 1.3-2.5x at one rate)."""
    if name not in _CONVS:
        return ""
    weight, stride = (args[2], args[4]) if name == "convolution_backward" else (args[1], args[3])
    kernel = max(weight.shape[2:]) if weight.dim() > 2 else 1
    return f"k{int(kernel)}s{int(max(stride)) if isinstance(stride, (list, tuple)) else int(stride)}"


def op_width(name: str, kind: str, args: tuple, outputs: list[torch.Tensor]) -> float:
    """Channels an operator's inner loop runs over: a depthwise convolution's channels, the
    geometric mean of a dense convolution's input and output channels, a 4-d output's
    channels for anything else; 0 where there is no such thing (matrix products, 2-d tensors)."""
    if name in _CONVS:
        data, weight = (args[1], args[2]) if name == "convolution_backward" else (args[0], args[1])
        if kind == "depthwise":
            return float(weight.shape[0])
        return math.sqrt(float(data.shape[1]) * float(weight.shape[0]))
    if kind == "elementwise" and outputs and outputs[0].dim() == 4:
        return float(outputs[0].shape[1])
    return 0.0


def op_kind(name: str, args: tuple) -> str:
    """Classify an aten operator: convolutions by their groups, matrix products, the rest."""
    if name in _CONVS:
        groups = args[-2] if name == "convolution_backward" else args[8] if len(args) > 8 else 1
        return "depthwise" if isinstance(groups, int) and groups > 1 else "conv"
    return "matmul" if name in _MATMULS else "elementwise"


def _conv_backward_flops(args: tuple) -> float:
    """FLOPs of a convolution's backward: one forward's worth for the input gradient and one
    for the weight gradient, each only where asked for. (torch's own formula ignores
    ``groups`` and charges a depthwise backward ~100x its forward.)"""
    grad_output, weight, mask = args[0], args[2], args[-1]
    forward = 2.0 * grad_output.numel() * weight[0].numel()
    return forward * (int(bool(mask[0])) + int(bool(mask[1])))


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _tensors(item)]
    return []


def _is_view(func) -> bool:
    """An operator that returns an alias without writing it (view, detach, t, expand)."""
    returns = func._schema.returns
    return bool(returns) and all(r.alias_info is not None and not r.alias_info.is_write for r in returns)


class _Recorder(TorchDispatchMode):
    """Records every operator with its layer (the innermost module running), kind and work."""

    def __init__(self, tracker: ModuleTracker) -> None:
        super().__init__()
        self.tracker = tracker
        self.phase = "forward"
        self.ops: list[Op] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = shape_only_result(func, args)
        if out is None:
            out = func(*args, **kwargs)
        name = func._overloadpacket.__name__
        if name.startswith("_record_function") or _is_view(func):
            return out
        outputs = _tensors(out)
        if not outputs:
            return out
        formula = flop_registry.get(func._overloadpacket)
        kind = op_kind(name, args)
        if name == "convolution_backward":
            flops = _conv_backward_flops(args)
        elif formula is not None:
            flops = float(formula(*args, **kwargs, out_val=out))
        else:
            flops = float(sum(t.numel() for t in outputs))
        elements = float(sum(t.numel() for t in _tensors(args) + _tensors(list(kwargs.values())) + outputs))
        self.ops.append(Op(self._layer(), kind, self._phase(), flops, elements, name, conv_variant(name, args),
                           op_width(name, kind, args, outputs)))
        return out

    def _phase(self) -> str:
        return "backward" if self.phase == "forward" and self.tracker.is_bw else self.phase

    def _layer(self) -> str:
        names = [n for n in self.tracker.parents if n != "Global"]
        if not names or self.phase == "optimizer":
            return "optimizer" if self.phase == "optimizer" else "loss"
        innermost = max(names, key=lambda n: n.count("."))
        return innermost.split(".", 1)[1] if "." in innermost else innermost


def trace_ops(fn: Callable[[], object]) -> list[Op]:
    """The operators ``fn`` dispatches (run it on meta tensors: shapes only), each with its
    layer (the innermost module running), kind and work."""
    tracker = ModuleTracker()
    recorder = _Recorder(tracker)
    with tracker, recorder:
        fn()
    return recorder.ops


def trace_step(model: nn.Module, input_shape: tuple[int, ...], batch_size: int,
               label_smoothing: float = 0.1, momentum: float = 0.9, weight_decay: float = 5e-4) -> list[Op]:
    """The operators of one training step of ``model`` (channels_last, cross-entropy with label
    smoothing, SGD with Nesterov momentum - the trainer's recipe), traced on the meta device.

    The model itself is not touched: a copy moves to ``meta``, where operators compute shapes
    only. Meta kernels still cost Python time per operator, and the optimizer's are most of a
    step's operators (a few per parameter): they depend on nothing but the parameter's shape,
    so they are traced once per shape (:func:`_update_ops`) and reused across models.
    """
    meta = copy.deepcopy(model).to(device="meta")
    inputs = torch.empty((batch_size, *input_shape), device="meta")
    if inputs.dim() == 4:
        meta = meta.to(memory_format=torch.channels_last)
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    meta.train()
    targets = torch.zeros(batch_size, dtype=torch.long, device="meta")
    ops = trace_ops(lambda: F.cross_entropy(meta(inputs), targets, label_smoothing=label_smoothing).backward())
    for parameter in meta.parameters():
        if parameter.grad is not None:  # SGD skips a parameter the step left without a gradient
            ops.extend(_update_ops(tuple(parameter.shape), parameter.dtype, momentum, weight_decay))
    return ops


@lru_cache(maxsize=4096)
def _update_ops(shape: tuple[int, ...], dtype: torch.dtype, momentum: float, weight_decay: float) -> tuple[Op, ...]:
    """The operators SGD's update of one parameter of ``shape`` dispatches in a step after the
    first (the first creates the momentum buffer: not a step's work)."""
    parameter = torch.empty(shape, dtype=dtype, device="meta", requires_grad=True)  # an Op holds shapes, not strides
    parameter.grad = torch.empty_like(parameter)
    optimizer = torch.optim.SGD([parameter], lr=0.1, momentum=momentum, nesterov=True, weight_decay=weight_decay)
    optimizer.step()
    tracker = ModuleTracker()
    recorder = _Recorder(tracker)
    recorder.phase = "optimizer"
    with tracker, recorder:
        optimizer.step()
    return tuple(recorder.ops)


def trace_forward(model: nn.Module, input_shape: tuple[int, ...], batch_size: int) -> list[Op]:
    """The operators of one evaluation batch (eval mode, no gradients), traced on meta."""
    meta = copy.deepcopy(model).to(device="meta").eval()
    inputs = torch.empty((batch_size, *input_shape), device="meta")
    if inputs.dim() == 4:
        meta = meta.to(memory_format=torch.channels_last)
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        return trace_ops(lambda: meta(inputs).argmax(dim=1))


def evaluation_seconds(model: nn.Module, input_shape: tuple[int, ...], samples: int, batch_size: int,
                       calibration: Calibration, fmt: str = "fp32") -> float:
    """Predicted seconds of the validation pass over ``samples`` images (what a trial spends
    after training: eval-mode forward batches of ``batch_size``, the last one partial)."""
    if samples <= 0:
        return 0.0
    full, rest = divmod(samples, batch_size)
    seconds = 0.0
    for size, count in ((batch_size, full), (rest, 1 if rest else 0)):
        if count:
            ops = trace_forward(model, input_shape, size)
            seconds += count * (sum(op_seconds(op, fmt, calibration)[0] for op in ops) + calibration.op_latency)
    return seconds


def rate(calibration: Calibration, op: Op, fmt: str) -> float:
    """FLOP/s of ``op`` in ``fmt`` from the most specific entry the calibration holds for it:
    where the entry was measured at several widths, interpolated at the op's width (in log
    width, held flat beyond the ends), else the entry's rate over all its layers."""
    for key in op.rate_keys():
        found = calibration.throughput.get(key, {}).get(fmt)
        if found:
            points = calibration.by_width.get(key, {}).get(fmt)
            if points and op.width > 0 and op.phase != "optimizer":  # updates: parameters, not activations
                widths = [math.log(w) for w, _ in points]
                return float(np.interp(math.log(op.width), widths, [r for _, r in points]))
            return found
    raise AutomlError(f"the calibration of {calibration.device} has no throughput for {op.kind} in {fmt}")


def op_seconds(op: Op, fmt: str, calibration: Calibration) -> tuple[float, bool]:
    """Roofline time of one operator in ``fmt``, at the level whole networks run at, and
    whether memory, not compute, bounds it."""
    compute = op.flops / rate(calibration, op, fmt)
    memory = op.elements * FORMATS[fmt] / calibration.bandwidth
    level = calibration.network_scale.get(fmt, 1.0)
    return (max(compute, memory) + calibration.op_latency) * level, memory > compute


@dataclass
class LayerCost:
    """One layer's share of a training step in one format."""

    layer: str
    kind: str
    forward_flops: float
    backward_flops: float
    bytes: float
    seconds: float
    memory_bound: bool


@dataclass
class StepCost:
    """Predicted seconds of a training step and an epoch in one number format."""

    format: str
    batch_size: int
    step_seconds: float
    forward_seconds: float  # the forward ops alone (BatchNorm re-estimation runs only these)
    overhead_seconds: float
    layers: list[LayerCost]
    source: dict[str, str]  # kind -> measured / scaled / modelled

    def epoch_seconds(self, steps: int) -> float:
        return steps * self.step_seconds


def _dominant_kind(kinds: dict[str, float]) -> str:
    heavy = {k: v for k, v in kinds.items() if k != "elementwise"}
    return max(heavy, key=heavy.get) if heavy else "elementwise"


def step_cost(ops: list[Op], calibration: Calibration, fmt: str, batch_size: int) -> StepCost:
    """Charge every traced operator its roofline time and sum them per layer."""
    if fmt not in calibration.throughput.get("conv", {}):
        raise AutomlError(f"the calibration of {calibration.device} has no number format {fmt!r}")
    rows: dict[str, dict[str, Any]] = {}
    forward = 0.0
    for op in ops:
        seconds, memory_bound = op_seconds(op, fmt, calibration)
        row = rows.setdefault(op.layer, {"kinds": defaultdict(float), "fwd": 0.0, "bwd": 0.0, "bytes": 0.0,
                                         "seconds": 0.0, "memory": 0.0})
        row["kinds"][op.kind] += op.flops
        row["fwd" if op.phase == "forward" else "bwd"] += op.flops if op.phase != "optimizer" else 0.0
        row["bytes"] += op.elements * FORMATS[fmt]
        row["seconds"] += seconds
        row["memory"] += seconds if memory_bound else 0.0
        forward += seconds if op.phase == "forward" else 0.0
    layers = [LayerCost(name, _dominant_kind(r["kinds"]), r["fwd"], r["bwd"], r["bytes"], r["seconds"],
                        r["memory"] > r["seconds"] / 2) for name, r in rows.items()]
    total = sum(layer.seconds for layer in layers) + calibration.step_overhead
    source = {kind: calibration.source.get(kind, {}).get(fmt, "measured") for kind in KINDS}
    return StepCost(fmt, batch_size, total, forward, calibration.step_overhead, layers, source)


def training_seconds(cost: StepCost, steps: int, bn_batches: int = 0) -> float:
    """Predicted seconds of a training run: ``steps`` steps plus the forward-only batches the
    trainer's BatchNorm re-estimation runs at the end (they are part of its measured time)."""
    return steps * cost.step_seconds + bn_batches * (cost.forward_seconds + cost.overhead_seconds)


def predict_training(model: nn.Module, input_shape: tuple[int, ...], batch_size: int, steps: int,
                     calibration: Calibration, fmt: str = "fp32", bn_samples: int = 0) -> float:
    """Predicted seconds for the trainer to train ``model`` for ``steps`` steps of ``batch_size``,
    its BatchNorm re-estimation over ``bn_samples`` training images included."""
    cost = step_cost(trace_step(model, input_shape, batch_size), calibration, fmt, batch_size)
    return training_seconds(cost, steps, -(-bn_samples // batch_size) if bn_samples > 0 else 0)
