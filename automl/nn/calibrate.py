"""Micro-benchmarks that give the cost model its machine: throughput per operator kind and
number format, memory bandwidth, the cost of one operator call and of one training step.

Why a calibration rather than datasheet numbers: what decides a small CNN's epoch on a CPU
is what the kernels reach at the shapes such networks have (1x1 convolutions of tens of
channels, depthwise kernels, 28x28 maps), and the fixed cost per operator. Each benchmark
runs a layer of a mobile network's shape forward and backward in the format, and its
operators are traced (:func:`automl.nn.costmodel.trace_ops`) so the FLOPs it did are counted
exactly as a candidate's are. Run once per machine and cached as JSON under the user's cache
directory (``$AUTOML_CACHE_DIR``, else ``$XDG_CACHE_HOME/automl``, else ``~/.cache/automl``),
keyed by device, its model name and the thread count.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from automl.core.errors import AutomlError
from automl.nn.costmodel import (CALIBRATION_VERSION, FORMATS, KINDS, NATIVE_CANDIDATES, Calibration, Op, step_cost,
                                  trace_ops, trace_step)
from automl.nn.reference import INPUT_SHAPE, reference_networks, training_step

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
BATCH = 64
WINDOW_S = 0.1  # seconds per timing window
COPIES = 8  # inputs each benchmark cycles through: training streams activations from memory, not cache


def cache_dir() -> Path:
    if os.environ.get("AUTOML_CACHE_DIR"):
        return Path(os.environ["AUTOML_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "automl"


def cache_path() -> Path:
    machine = "".join(c if c.isalnum() or c in "-_." else "_" for c in platform.node() or "machine")
    return cache_dir() / f"costmodel-{machine}.json"


def device_key(device: torch.device, clock: str = "wall") -> str:
    """What a calibration is valid for: device kind, its model name, the threads used (and the
    clock, where it is CPU time rather than wall-clock)."""
    suffix = "" if clock == "wall" else f":{clock}-time"
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}{suffix}"
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"cpu:{cpu}:{torch.get_num_threads()}threads{suffix}"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = CLOCKS["wall"]  # the clock timed() reads; calibrate(clock=...) switches it for its run


def timed(fn: Callable[[], object], device: torch.device, windows: int = 3) -> float:
    """Median seconds of one call over ``windows`` windows of about WINDOW_S each, after warm-up."""
    fn()
    _sync(device)
    started = _clock()
    fn()
    _sync(device)
    once = max(_clock() - started, 1e-7)
    windows = windows if once < WINDOW_S else 1  # a slow kernel (fp16 on most CPUs): one more call is enough
    repeats = max(1, min(200, round(WINDOW_S / once)))
    samples = []
    for _ in range(windows):
        started = _clock()
        for _ in range(repeats):
            fn()
        _sync(device)
        samples.append((_clock() - started) / repeats)
    return statistics.median(samples)


def _layer_step(module: nn.Module, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device
                ) -> tuple[Callable[[], object], Callable[[], object], Callable[[], object]]:
    """A forward-and-backward call of ``module`` on inputs of ``shape`` and a forward-only one
    (cycling through COPIES inputs on ``device``), and the forward-and-backward call on meta
    (one input, for the trace)."""
    def make(layer: nn.Module, dev: torch.device, copies: int) -> tuple[Callable[[], object], Callable[[], object]]:
        layer = layer.to(device=dev, dtype=dtype)
        if len(shape) == 4:
            layer = layer.to(memory_format=torch.channels_last)
        pairs = []
        for _ in range(copies):
            x = torch.empty(shape, device=dev, dtype=dtype)
            if dev.type != "meta":
                x.normal_()
            x = (x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x).requires_grad_(True)
            pairs.append((x, torch.ones_like(layer(x))))
        turn = itertools.cycle(pairs)

        def step() -> None:
            x, grad = next(turn)
            layer.zero_grad(set_to_none=True)
            layer(x).backward(grad)

        def forward() -> None:
            layer(next(turn)[0])  # the graph is built, as in training, and dropped
        return step, forward

    step, forward = make(module, device, COPIES)
    return step, forward, make(copy.deepcopy(module), torch.device("meta"), 1)[0]


def _depthwise(channels: int, kernel: int, stride: int) -> nn.Module:
    return nn.Conv2d(channels, channels, kernel, stride, kernel // 2, groups=channels, bias=False)


DEPTHWISE_VARIANTS = tuple((k, s) for k in (3, 5, 7) for s in (1, 2))


def _micro_layers() -> dict[str, list[tuple[nn.Module, tuple[int, ...]]]]:
    """Layers per throughput entry, at shapes candidates on 28x28 have, from an early stage's
    (few channels, 28x28) to a late one's (hundreds of channels, 4x4 to 14x14): a kernel fills its SIMD
    lanes with channels, so narrow layers run well below wide ones' rate. Convolutions get one
    entry per kernel size and stride: their kernels differ by both (a 3x3 dense convolution
    reuses each loaded value 9 times; a bf16 strided depthwise backward runs several times
    slower than fp32's on some CPUs); other sizes take the kind's rate over all entries."""
    layers: dict[str, list[tuple[nn.Module, tuple[int, ...]]]] = {
        "conv:k1s1": [(nn.Conv2d(8, 8, 1, bias=False), (BATCH, 8, 28, 28)),
                      (nn.Conv2d(8, 24, 1, bias=False), (BATCH, 8, 28, 28)),
                      (nn.Conv2d(24, 72, 1, bias=False), (BATCH, 24, 14, 14)),
                      (nn.Conv2d(48, 144, 1, bias=False), (BATCH, 48, 14, 14)),
                      (nn.Conv2d(128, 256, 1, bias=False), (BATCH, 128, 7, 7)),
                      (nn.Conv2d(256, 1024, 1, bias=False), (BATCH, 256, 4, 4))],  # a bottleneck's expansion
        "conv:k1s2": [(nn.Conv2d(32, 64, 1, 2, bias=False), (BATCH, 32, 14, 14))],
        "conv:k3s1": [(nn.Conv2d(16, 16, 3, padding=1, bias=False), (BATCH, 16, 28, 28)),
                      (nn.Conv2d(64, 64, 3, padding=1, bias=False), (BATCH, 64, 14, 14)),
                      (nn.Conv2d(128, 128, 3, padding=1, bias=False), (BATCH, 128, 7, 7)),
                      (nn.Conv2d(256, 256, 3, padding=1, bias=False), (BATCH, 256, 4, 4))],
        "conv:k3s2": [(nn.Conv2d(16, 32, 3, 2, 1, bias=False), (BATCH, 16, 28, 28)),
                      (nn.Conv2d(64, 128, 3, 2, 1, bias=False), (BATCH, 64, 14, 14)),
                      (nn.Conv2d(128, 256, 3, 2, 1, bias=False), (BATCH, 128, 7, 7))],
        "conv:k5s1": [(nn.Conv2d(16, 16, 5, padding=2, bias=False), (BATCH, 16, 28, 28)),
                      (nn.Conv2d(64, 64, 5, padding=2, bias=False), (BATCH, 64, 14, 14)),
                      (nn.Conv2d(128, 128, 5, padding=2, bias=False), (BATCH, 128, 7, 7))],
        "conv:k5s2": [(nn.Conv2d(16, 32, 5, 2, 2, bias=False), (BATCH, 16, 28, 28)),
                      (nn.Conv2d(64, 128, 5, 2, 2, bias=False), (BATCH, 64, 14, 14))],
        "matmul": [(nn.Linear(512, 512), (4 * BATCH, 512))],
        "elementwise": [(nn.Sequential(nn.BatchNorm2d(8), nn.ReLU6()), (BATCH, 8, 28, 28)),
                        (nn.Sequential(nn.BatchNorm2d(24), nn.ReLU6()), (BATCH, 24, 28, 28)),
                        (nn.Sequential(nn.BatchNorm2d(144), nn.ReLU6()), (BATCH, 144, 14, 14))],
    }
    for kernel, stride in DEPTHWISE_VARIANTS:
        layers[f"depthwise:k{kernel}s{stride}"] = [(_depthwise(24, kernel, stride), (BATCH, 24, 28, 28)),
                                                   (_depthwise(96, kernel, stride), (BATCH, 96, 14, 14))]
    return layers


def _other_seconds(ops: list[Op], kind: str, phase: str, fmt: str, latency: float, bandwidth: float) -> float:
    """What the cost model charges the ops of ``phase`` that are not ``kind``'s: each call's
    latency, and an elementwise op's memory time."""
    others = [op for op in ops if op.phase == phase and op.kind != kind]
    return len(others) * latency + sum(op.elements * FORMATS[fmt] / bandwidth for op in others
                                       if op.kind == "elementwise")


def _measure_entry(entry: str, fmt: str, device: torch.device, latency: float, bandwidth: float
                   ) -> dict[str, list[tuple[float, float, float]]]:
    """(width, FLOPs, seconds) of one entry's kind per phase (forward, backward, both) and
    layer: the seconds its own operators took, the other operators' charges taken off."""
    kind = entry.split(":")[0]
    found: dict[str, list[tuple[float, float, float]]] = {"forward": [], "backward": [], "both": []}
    for module, shape in _micro_layers()[entry]:
        step, forward, meta_step = _layer_step(module, shape, _DTYPES[fmt], device)
        ops = trace_ops(meta_step)
        width = max(op.width for op in ops if op.kind == kind)
        both, ahead = timed(step, device), timed(forward, device)
        for phase, seconds in (("forward", ahead), ("backward", max(both - ahead, 0.05 * both))):
            flops = sum(op.flops for op in ops if op.kind == kind and op.phase == phase)
            own = max(seconds - _other_seconds(ops, kind, phase, fmt, latency, bandwidth), 0.05 * seconds, 1e-9)
            found[phase].append((width, flops, own))
        found["both"].append((width, found["forward"][-1][1] + found["backward"][-1][1],
                              found["forward"][-1][2] + found["backward"][-1][2]))
    return found


def _measure_format(fmt: str, device: torch.device, latency: float, bandwidth: float
                    ) -> tuple[dict[str, float], dict[str, list[list[float]]]] | None:
    """FLOP/s per throughput entry in ``fmt`` (``kind``, ``kind:phase``, and for convolutions
    ``conv:k3s1[:phase]``, ``depthwise:k5s2[:phase]``) over all its layers, and (width, FLOP/s) of each layer; None
    where torch has no kernels for ``fmt`` here."""
    rates: dict[str, float] = {}
    by_width: dict[str, list[list[float]]] = {}
    pooled: dict[str, list[tuple[float, float, float]]] = {}  # a kind over all its variants: the fallback
    try:
        for entry in _micro_layers():
            kind = entry.split(":")[0]
            for phase, samples in _measure_entry(entry, fmt, device, latency, bandwidth).items():
                key = entry if phase == "both" else f"{entry}:{phase}"
                rates[key] = sum(f for _, f, _ in samples) / sum(t for _, _, t in samples)
                by_width[key] = sorted([width, f / t] for width, f, t in samples)
                if kind != entry:
                    pooled.setdefault(kind if phase == "both" else f"{kind}:{phase}", []).extend(samples)
    except (RuntimeError, NotImplementedError):
        return None
    rates.update({key: sum(f for _, f, _ in s) / sum(t for _, _, t in s) for key, s in pooled.items()})
    return rates, by_width


def _op_latency(device: torch.device) -> float:
    """Seconds per operator: a chain of elementwise ops on 16 elements, forward and backward."""
    def chain(dev: torch.device):
        x = torch.ones(16, device=dev, requires_grad=True)

        def step() -> None:
            y = x
            for _ in range(32):
                y = y * 1.0001
            y.sum().backward()
        return step
    ops = trace_ops(chain(torch.device("meta")))
    return timed(chain(device), device) / max(len(ops), 1)


def _bandwidth(device: torch.device, latency: float) -> float:
    """Bytes/s of an elementwise add over tensors the size of a mobile candidate's activations,
    cycling through 4 x COPIES of them as training streams through its activations."""
    sets = [tuple(torch.randn(BATCH * 96 * 14 * 14, device=device) for _ in range(3)) for _ in range(4 * COPIES)]
    turn = itertools.cycle(sets)

    def add() -> None:
        a, b, c = next(turn)
        torch.add(a, b, out=c)
    seconds = timed(add, device)
    return 3 * sets[0][0].numel() * 4 / max(seconds - latency, 1e-9)


def _step_overhead(device: torch.device, latency: float) -> float:
    """Seconds of a training step of a one-layer model, less its operators: batching, the
    schedule and the Python loop, which every step pays whatever the model."""
    model = nn.Linear(4, 2).to(device)
    data = torch.randn(1024, 4, device=device)
    labels = torch.zeros(1024, dtype=torch.long, device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=10**6)
    order = torch.randperm(1024, device=device)

    def step() -> None:
        index = order[:BATCH]
        loss = F.cross_entropy(model(data[index]), labels[index], label_smoothing=0.1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        loss.detach()
    ops = trace_step(model, (4,), BATCH)
    return max(timed(step, device) - len(ops) * latency, 0.0)


def _reference_ratios(calibration: Calibration, fmt: str, device: torch.device) -> dict[str, float]:
    """Per reference network: measured over predicted seconds of its operators in a training
    step in ``fmt`` (the per-step overhead taken off both), predicted at level 1."""
    ratios = {}
    for name, model in reference_networks().items():
        cost = step_cost(trace_step(model, INPUT_SHAPE, BATCH), calibration, fmt, BATCH)
        measured = timed(training_step(model, _DTYPES[fmt], device, BATCH, COPIES), device)
        ratios[name] = max(measured - cost.overhead_seconds, 1e-9) / (cost.step_seconds - cost.overhead_seconds)
    return ratios


def _set_network_scale(calibration: Calibration, device: torch.device, formats: Sequence[str]) -> None:
    """``k[f]``: the geometric mean of the reference networks' ratios, for each of ``formats``
    measured natively; formats scaled or modelled from fp32 take fp32's level."""
    for fmt in formats:
        if calibration.source["conv"].get(fmt) == "measured":
            ratios = _reference_ratios(calibration, fmt, device)
            calibration.reference_ratios[fmt] = ratios
            calibration.network_scale[fmt] = math.exp(statistics.fmean(math.log(r) for r in ratios.values()))
    for fmt in FORMATS:
        calibration.network_scale.setdefault(fmt, calibration.network_scale.get("fp32", 1.0))


@contextmanager
def _clock_of(device: torch.device | str, clock: str) -> Iterator[None]:
    """timed() reads ``clock`` inside the block: wall-clock, or process CPU time on a CPU."""
    global _clock
    if clock not in CLOCKS or (clock == "cpu" and torch.device(device).type != "cpu"):
        raise AutomlError(f"unknown clock {clock!r} for {device} (wall, or cpu on a CPU)")
    _clock = CLOCKS[clock]
    try:
        yield
    finally:
        _clock = CLOCKS["wall"]


def calibrate(device: torch.device | str = "cpu", clock: str = "wall",
              formats: Sequence[str] = NATIVE_CANDIDATES) -> Calibration:
    """Run the micro-benchmarks on ``device`` in fp32 and the native ``formats`` (fp32 about
    half a minute on a 2-core CPU, all three two minutes, most of it fp16's slow kernels);
    formats not measured are scaled from fp32 until a command asks for them.

    ``clock="cpu"`` times them in process CPU time instead of wall-clock: on a machine shared
    with other work, wall-clock mostly measures how long the process waited for a core; CPU
    time (with one torch thread) measures what the model describes.
    """
    with _clock_of(device, clock):
        device = torch.device(device)
        latency = _op_latency(device)
        bandwidth = _bandwidth(device, latency)
        calibration = Calibration(str(device), torch.get_num_threads(), {}, bandwidth, latency,
                                  _step_overhead(device, latency), {kind: {} for kind in KINDS},
                                  device_key(device, clock), clock, tried=[])
        _measure_formats(calibration, ["fp32", *formats], device)
    return calibration


def _measure_formats(calibration: Calibration, formats: Sequence[str], device: torch.device) -> None:
    """Add ``formats`` not yet tried to ``calibration`` (fp32 must be among them or already in):
    measured where torch has kernels for them here, scaled from fp32 where not."""
    new = [fmt for fmt in dict.fromkeys(formats) if fmt in NATIVE_CANDIDATES and fmt not in calibration.tried]
    for fmt in new:
        found = _measure_format(fmt, device, calibration.op_latency, calibration.bandwidth)
        calibration.tried.append(fmt)
        if found is None:
            continue
        for key, value in found[0].items():
            calibration.throughput.setdefault(key, {})[fmt] = value
        for key, points in found[1].items():
            calibration.by_width.setdefault(key, {})[fmt] = points
        for kind in KINDS:
            calibration.source[kind][fmt] = "measured"
    for fmt, size in FORMATS.items():
        for key, rates in calibration.throughput.items():
            if fmt not in rates:  # no kernel here, or not measured yet: fp32's lanes, 4 / bytes as many of them
                rates[fmt] = rates["fp32"] * 4 / size
                if key in calibration.by_width:
                    calibration.by_width[key][fmt] = [[w, r * 4 / size] for w, r in calibration.by_width[key]["fp32"]]
        for kind in KINDS:
            calibration.source[kind].setdefault(fmt, "modelled" if fmt == "fx16" else "scaled")
    _set_network_scale(calibration, device, new)


def load_calibration(device: torch.device | str = "cpu", clock: str = "wall") -> Calibration | None:
    """The cached calibration of this device, or None."""
    path = cache_path()
    try:
        entries = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise AutomlError(f"cannot read the cost-model cache {str(path)!r}: {error}; delete it and "
                          f"run `automl costmodel --calibrate`") from None
    entry = entries.get(device_key(torch.device(device), clock))
    if not entry or entry.get("version", 1) < CALIBRATION_VERSION:  # none, or measured by older benchmarks
        return None
    return Calibration.from_json(entry)


def save_calibration(calibration: Calibration) -> Path:
    path = cache_path()
    try:
        entries = json.loads(path.read_text()) if path.exists() else {}
    except ValueError:
        entries = {}
    entries[calibration.machine] = calibration.to_json()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(entries, indent=2) + "\n")
    except OSError as error:
        raise AutomlError(f"cannot write the cost-model cache {str(path)!r}: {error.strerror or error}") from None
    return path


def calibration_for(device: torch.device | str = "cpu", refresh: bool = False, clock: str = "wall",
                    formats: Sequence[str] = NATIVE_CANDIDATES) -> Calibration:
    """The cached calibration with ``formats`` measured (where torch runs them natively here):
    measured and cached first where there is none (or on ``refresh``), and a cached one missing
    a format gets it added. A search asks for fp32 alone, so a new machine's first search
    waits for one format's micro-benchmarks, not all of them."""
    found = None if refresh else load_calibration(device, clock)
    if found is None:
        found = calibrate(device, clock, formats)
    elif all(fmt in found.tried for fmt in formats if fmt in NATIVE_CANDIDATES):
        return found
    else:
        with _clock_of(device, clock):
            _measure_formats(found, formats, torch.device(device))
    save_calibration(found)
    return found
