"""``prunetrain``: group-lasso channel pruning during training, with the model rebuilt smaller.

Lym, Choukse, Zangeneh, Wen, Sanghavi & Erez (2019), "PruneTrain: Fast Neural Network
Training by Dynamic Sparse Model Reconfiguration". What is implemented:

- **Group lasso** on channel groups, as the paper's groups include the BatchNorm parameters:
  with BatchNorm a channel leaves its layer as gamma_c * xhat + beta_c, so its group is the
  pair (gamma_c, beta_c) of each BatchNorm it leaves by (the depthwise one for a block's hidden
  channel; every producer's for a residual stream, stem included). The convolution weights are
  not penalised there: BatchNorm makes the output invariant to their scale, and penalising
  them only shrank whole layers (the smallest channel norm stayed at 0.3-0.7). Networks without
  normalisation (``norm=none``) use each producing convolution's output slice with its bias
  and each consumer's input slice.
- **Proximal step** instead of a loss term: after every optimizer step (at the next BATCH
  event, and at FIT_END for the last one) every group v is soft-thresholded,
  v <- v * max(0, 1 - lr * lambda / ||v||), with lr the learning rate of that step. Unlike the
  subgradient, this lands small groups on exact zeros.
- **Lambda from the first iteration**: lambda = r * L / ((1 - r) * GL), with L the loss and
  GL the group-lasso sum at the first step and r = ``ratio``, so the penalty starts as r of
  the total (loss + penalty), as in the paper.
- **Reconfiguration** every ``every`` epochs (fractions allowed: candidates here train about
  one epoch, where the paper reconfigures every few epochs of a long run): channels whose
  liveness - the smaller of max over emitters of ||(gamma_c, beta_c)|| (or conv slice and bias)
  and the L2 norm of all consumers' input slices - fell below
  ``threshold`` are removed (also once more at FIT_END, so the evaluated model is the pruned
  one) and the convolutions, BatchNorms (running statistics too) and the
  classifier are sliced to smaller dense tensors. The default, every 0.25 epoch, checks four
  times per epoch (a check costs one norm per channel, nothing when no channel died). Channels tied by residual connections form one group shared by every
  block of the chain and its consumers (the paper's "channel union"); an inverted residual's
  hidden channels (expand out, depthwise, project in) are pruned per block; the stem and head
  widths too. At least one channel of every group is kept.
- **Optimizer state carried over**: momentum buffers are sliced like their weights and handed
  to the trainer's rebuilt optimizer (``state.optimizer_state``); the schedule continues.

Why removal is exact: a channel whose BatchNorm (gamma, beta) are exactly zero in every
emitter outputs 0 (after ReLU6 too; a residual sum of zeros is zero), and a channel whose
readers' weights are all zero contributes nothing, whatever it holds. The proximal step makes
these zeros exact, so removal changes no output (a test checks it). A residual stream channel
zero in only some of its producers is live.

Reconfiguration happens at a step boundary (BATCH event): the trainer rebuilds the optimizer
when ``state.model_changed`` is set there. Parameters are replaced inside the existing module
objects (same modules, smaller tensors), so hooks other accelerators installed stay attached.

What it saves, measured (1 epoch of load_mnist5k, batch 64, one-cycle lr 0.1, seed 0, on a
shared 2-core CPU so times are noisy): with the default r = 0.9 nothing is pruned in one
epoch. SMALLEST_MOBILE (1.14 MFLOPs): plain 70.9%; r = 0.9: 70.4%, 0 pruned; r = 0.96: 53%,
one head channel; r = 0.97: 59.6%, none; r = 0.99: every group collapses to one channel
(96.6% FLOPs, 10% accuracy). The mid genome
``stem16-ir_r1_k3_e1_c16-ir_r2_k3_e6_c24-ir_r2_k5_e6_c32-ir_r3_k3_e6_c64-ir_r1_k7_e3_c96-head256``
(18.4 MFLOPs): r = 0.95: 94.9%, nothing pruned (lambda 0.018: the ratio rule divides by GL,
which grows with the width, so wider nets get a weaker per-group shrink); plain 94.7%; r = 0.99 (lambda 0.095): 94.3%, still nothing
pruned (smallest liveness 0.08).
The transition from "nothing" to "everything" is sharp within one epoch (about 60 steps):
the 20-50% target was not reached with the ratio rule at these budgets. So ``kind`` stays
``regularizer``; ``training_flops_saved`` counts the real saving when channels die.

Networks without normalisation (the space's ``norm=none`` gene) prune alike: the producing
convolutions' biases are sliced with their weights (a dead channel's constant bias is never
read, so removal stays exact).

Not implemented: the paper's mini-batch enlargement as the model shrinks, and removing a
layer whose whole group died (we keep one channel). Only the ``mobile`` space's networks are
understood (stem, stages of inverted residuals, head, classifier); another model raises a
user error. FLOPs are counted from the layer shapes (equal to
:func:`automl.flops.count_flops`, a test checks it) so no forward pass runs through hooks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from accelerators.base import Accelerator, Option
from automl.core.errors import AutomlError
from automl.nn.flops import training_flops
from automl.train.events import Event, TrainState


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


class PruneTrain(Accelerator):
    name = "prunetrain"
    kind = "regularizer"  # at 1 epoch the defaults prune nothing (module docstring); see report()
    summary = "group lasso on channels; every k epochs remove dead channels and train the smaller dense model"
    paper = "Lym et al. 2019, PruneTrain: Fast Neural Network Training by Dynamic Sparse Model Reconfiguration"
    order = 30  # model: reshapes it before other accelerators act on a batch
    ddp_safe = False
    ddp_note = "reshapes parameters during training; a DDP wrapper keeps reducing the old ones"
    conflicts = frozenset({"wae", "ssf"})  # both replace or re-parameterise the layers it slices
    events = frozenset({Event.INIT, Event.BATCH, Event.LOSS, Event.FIT_END})
    options = {
        "ratio": Option(0.9, "penalty ratio r: group lasso's share of the first step's loss "
                        "(paper: 0.2; too weak for 1-epoch budgets)",
                        lambda v: 0.0 < v < 1.0, "0 < ratio < 1"),
        "every": Option(0.25, "epochs between reconfigurations (fractions allowed)",
                        lambda v: 0.0 < v <= 1000.0, "0 < every <= 1000"),
        "threshold": Option(1e-4, "channel norm (L2 of all weights producing and reading it) under which "
                            "a channel is removed", lambda v: 0.0 <= v < math.inf, "0 <= threshold, finite"),
    }

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self.groups: list[ChannelGroup] = []
        self.lam: float | None = None
        self.lr = 0.0
        self.input_shape: tuple[int, int, int] = (1, 1, 1)
        self.interval = 1
        self.flops_before = self.flops_now = 0
        self.params_before = 0
        self.widths_before: dict[str, int] = {}
        self.reconfigurations: list[dict[str, Any]] = []
        self.saved = 0.0
        self.samples = 0
        self.model: nn.Module | None = None


    def apply(self, event: Event, state: TrainState) -> None:
        if event is Event.INIT:
            self._start(state)
        elif event is Event.LOSS:
            if self.lam is None:  # the paper's rule, measured once at the first iteration
                ratio, total = self.values["ratio"], float(group_lasso(self.groups))
                self.lam = ratio * float(state.loss.detach()) / ((1 - ratio) * total) if total > 0 else 0.0
            if state.optimizer is not None:
                self.lr = float(state.optimizer.param_groups[0]["lr"])  # the lr of the step to come
            batch = len(state.targets)
            self.samples += batch
            self.saved += training_flops(self.flops_before - self.flops_now, batch)
        elif event is Event.BATCH:
            if state.step > 0:  # the previous optimizer step is done: its proximal step now
                proximal_step(self.groups, self.lr * (self.lam or 0.0))
                if state.step % self.interval == 0:
                    self.reconfigure(state)
        elif event is Event.FIT_END:
            proximal_step(self.groups, self.lr * (self.lam or 0.0))  # the last step's
            if self.reconfigure(state):  # the evaluated model is the pruned one (exact)
                state.model_changed, state.optimizer_state = False, {}
            self.model = state.model

    def state_dict(self) -> dict[str, Any]:
        return {"lam": self.lam, "lr": self.lr, "saved": self.saved, "samples": self.samples}

    def _start(self, state: TrainState) -> None:
        self.groups = channel_groups(state.model)
        self.input_shape = tuple(state.input_shape)
        self.interval = max(1, round(self.values["every"] * state.steps_per_epoch))
        self.flops_before = self.flops_now = forward_flops(state.model, self.input_shape)
        self.params_before = sum(p.numel() for p in state.model.parameters())
        self.widths_before = {g.name: g.width for g in self.groups}
        self.model = state.model

    def reconfigure(self, state: TrainState) -> bool:
        """Remove the dead channels of every group; True when the model changed."""
        slicer = _Slicer()
        removed: dict[str, int] = {}
        for group in self.groups:
            norms = channel_norms(group)
            alive = norms >= self.values["threshold"]
            if bool(alive.all()):
                continue
            if not bool(alive.any()):
                alive[norms.argmax()] = True  # keep one channel: the network must stay connected
            keep = alive.nonzero().flatten()
            removed[group.name] = group.width - len(keep)
            remove_channels(group, keep, slicer)
        if not removed:
            return False
        state.optimizer_state = slicer.optimizer_state(state.model, state.optimizer)
        state.model_changed = True
        self.flops_now = forward_flops(state.model, self.input_shape)
        self.reconfigurations.append({"step": state.step, "removed": removed, "mflops": self.flops_now / 1e6})
        return True

    def report(self) -> dict[str, Any]:
        if self.model is None:
            return {"training_flops_saved": 0.0}
        arch = architecture(self.groups, self.model)
        params = sum(p.numel() for p in self.model.parameters())
        return {
            "lambda": self.lam,
            "interval_steps": self.interval,
            "reconfigurations": len(self.reconfigurations),
            "history": self.reconfigurations,
            "flops_before": self.flops_before, "flops_after": self.flops_now,
            "params_before": self.params_before, "params_after": params,
            "pruned_channels": {g.name: self.widths_before[g.name] - g.width for g in self.groups
                                if g.width != self.widths_before[g.name]},
            "architecture": arch,
            "architecture_string": architecture_string(arch),
            "smallest_channel_norm": min(float(channel_norms(g).min()) for g in self.groups),
            "threshold": self.values["threshold"],
            "training_flops_saved": self.saved,
            "note": "FLOPs saved: 3 x (forward FLOPs before - now) x samples trained after each reconfiguration",
        }
