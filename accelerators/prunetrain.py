"""``prunetrain``: group-lasso channel pruning during training, the model rebuilt smaller and
the mini-batch enlarged as it shrinks.

Lym, Choukse, Zangeneh, Wen, Sanghavi & Erez (2019), "PruneTrain: Fast Neural Network
Training by Dynamic Sparse Model Reconfiguration" (SC'19). As the paper describes it:

- **Group lasso on convolution weights**, added to the loss and trained with SGD: the sum of
  the L2 norms of every non-depthwise convolution's output-channel slices and input-channel
  slices (the first convolution's input - the image - excluded) and of the classifier's input
  slices (its outputs are the classes). Depthwise convolutions are not penalised: a depthwise
  filter reads one channel and lives or dies with it. BatchNorm parameters are not
  penalised either.
- ``step=prox`` (not the paper) applies the same lasso as a proximal step after each update
  instead, v <- v x max(0, 1 - lr' x lambda / ||v||) per slice, output slices then input
  slices, with lr' = lr / (1 - momentum), the step SGD with momentum takes on a steady
  gradient (so a ``ratio`` shrinks about as fast as the loss term's). Why: a loss term trained
  by SGD moves a dead slice by about lr' x lambda each step, so it oscillates around zero and
  falls under the paper's 1e-4 only once the learning rate has decayed - at the end of a
  one-cycle schedule, too late to save anything in a short run; the proximal step lands it on
  exact zeros at any learning rate.
- **Penalty ratio fixed at the first iteration**: lambda = r x L / ((1 - r) x GL), with L the
  loss and GL the group lasso of the first mini-batch, so the penalty is r of the total then;
  r = ``ratio``, 0.2 by default as in the paper and its reference code.
- **Reconfiguration** every ``every`` epochs (the reference code: every 10 of CIFAR's 182
  epochs; fractions of an epoch are allowed for short candidates). A channel whose weights
  have all fallen below ``threshold`` (1e-4, the paper's) in every layer that produces or
  reads it is zeroed and removed: convolutions, BatchNorms (running statistics too) and the
  classifier are sliced to smaller dense tensors. A channel still produced or still read by
  one layer stays (the paper's channel union); channels tied by residual connections form one
  group over the whole chain (the paper's union at shared nodes); an inverted residual's
  hidden channels (expand out, depthwise, project in) are one group per block; stem and head
  widths too. At FIT_END once more, so the evaluated model is the pruned one. Removal changes
  the outputs by at most what the sub-threshold weights contributed.
- **Optimizer state carried over**: momentum buffers are sliced like their weights and handed
  to the trainer's rebuilt optimizer (``state.optimizer_state``); the schedule continues.
- **Dynamic mini-batch** (``grow``): after a reconfiguration the mini-batch is enlarged so the
  activation memory of a step stays what the unpruned model used at the configured batch
  (base x activations before / activations now, down to a multiple of 8, at least 8 steps
  per epoch), and the learning rate is scaled by the same factor: the paper's dynamic
  mini-batch adjustment keeps each accelerator's memory and throughput in use as the model
  shrinks and scales the learning rate linearly with the mini-batch (the rule of Goyal et al.
  2017). The reference repository we read does not carry this part, so the memory model here
  (activation elements of the convolution outputs) is ours. The trainer applies both at the
  next epoch boundary (``state.batch_size``, ``state.lr_scale``); the budget and the
  learning-rate schedule stay in samples, so a run trains as many samples as without it.

Deviations, with the reason:

- Reconfiguration happens inside one training run (our candidates are one process), the
  reference restarts its script from a checkpoint every interval; the effect is the same.
- A group whose channels all died keeps its strongest channel instead of removing the layer
  (the paper removes dead residual branches): the mobile space's blocks have no identity path
  around a non-residual block, so the network must stay connected.
- Only the ``mobile`` space's networks are understood (stem, stages of inverted residuals,
  head, classifier); another model raises a user error.

FLOPs are counted from the layer shapes (equal to :func:`automl.flops.count_flops`, a test
checks it) so no forward pass runs through other accelerators' hooks.

What it saves, measured (``automl bench prunetrain --epochs 10 [--accelerate SPEC]``,
``docs/benchmarks/prunetrain-E10*.json``: an 8.4 MFLOPs mobile genome, 10 epochs of the
embedded mnist5k - 540 steps - one torch thread on a shared 2-core CPU, plain and PruneTrain
alternating epochs):

- the defaults (the paper's: loss term, r = 0.2, lambda 4.4e-04) prune nothing in 10
  epochs: the paper trains about 71,000 steps on CIFAR, while here lambda times the summed
  step sizes (lr / (1 - momentum)) over 540 steps is about 0.12 against slice norms near 1;
  1.00x the plain seconds, accuracy +0.1 pt;
- ``step=prox,ratio=0.8``: 87 -> 69 GFLOPs per epoch (8.4 -> 6.7 MFLOPs, 1144 -> 936
  channels, mini-batch 64 -> 72), 9% of the training FLOPs saved, 0.79x the plain seconds,
  accuracy -2.5 pt;
- ``step=prox,ratio=0.9``: 87 -> 40 GFLOPs per epoch (8.4 -> 3.8 MFLOPs, 1144 -> 548
  channels, mini-batch 64 -> 112), 35% of the training FLOPs saved, 0.91x the plain
  seconds, accuracy -19.6 pt.

The time per epoch does not follow the FLOPs on this CPU (narrow layers on 28x28 images are
bound by per-layer overhead; the lasso costs 5-10% per step; the pruned runs' epochs were
even slower, for reasons not pinned down), so ``kind`` stays
``regularizer``: what it saves here is training FLOPs, reported as ``training_flops_saved``
and per epoch in ``epochs``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from accelerators.base import Accelerator, InvariantBroken, Option
from accelerators.channel_groups import (ChannelGroup, _Slicer, activation_elements, architecture,  # noqa: F401
                                         architecture_string, channel_groups, channel_liveness, forward_flops,
                                         group_lasso, penalised_layers, proximal_step, remove_channels)
from automl.nn.flops import training_flops
from automl.train.events import Event, TrainState

BATCH_MULTIPLE = 8  # an enlarged mini-batch is a multiple of this
MIN_STEPS_PER_EPOCH = 8  # an enlarged mini-batch leaves at least this many steps per epoch


class PruneTrain(Accelerator):
    name = "prunetrain"
    kind = "regularizer"
    summary = ("group lasso on conv channels; every k epochs remove dead channels, train the smaller dense "
               "model with a larger mini-batch")
    paper = "Lym et al. 2019, PruneTrain: Fast Neural Network Training by Dynamic Sparse Model Reconfiguration"
    order = 30  # model: reshapes it before other accelerators act on a batch
    ddp_safe = False
    ddp_note = ("reshapes parameters and changes the mini-batch during training; a DDP wrapper keeps "
                "reducing the old parameters and every rank would have to agree on the new shapes")
    conflicts = frozenset({"wae", "ssf"})  # both replace or re-parameterise the layers it slices
    events = frozenset({Event.INIT, Event.BATCH, Event.LOSS, Event.AFTER_STEP, Event.EPOCH_END, Event.FIT_END})
    options = {
        "ratio": Option(0.2, "penalty ratio r: the group lasso's share of the first step's total loss (paper: 0.2)",
                        lambda v: 0.0 < v < 1.0, "0 < ratio < 1"),
        "every": Option(1.0, "epochs between reconfigurations (fractions allowed for short runs)",
                        lambda v: 0.0 < v <= 1000.0, "0 < every <= 1000"),
        "threshold": Option(1e-4, "a channel whose weights are all below this (in every layer producing or "
                            "reading it) is removed (paper: 1e-4)", lambda v: 0.0 <= v < math.inf,
                            "0 <= threshold, finite"),
        "step": Option("loss", "how the lasso is applied: 'loss' (a loss term trained by SGD, the paper) or "
                       "'prox' (a proximal step after each update: lands exact zeros)",
                       lambda v: v in ("loss", "prox"), "loss or prox"),
        "grow": Option(True, "enlarge the mini-batch (and the learning rate with it) as the model shrinks",
                       lambda v: isinstance(v, bool), "true or false"),
    }

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self.groups: list[ChannelGroup] = []
        self.layers: list[tuple[nn.Module, bool, bool]] = []
        self.lam: float | None = None
        self.lr = 0.0
        self.input_shape: tuple[int, int, int] = (1, 1, 1)
        self.next_at = 0.0
        self.base_batch = 0
        self.flops_before = self.flops_now = 0
        self.memory_before = 0
        self.params_before = 0
        self.widths_before: dict[str, int] = {}
        self.reconfigurations: list[dict[str, Any]] = []
        self.epochs: list[dict[str, Any]] = []
        self.epoch_flops = 0.0
        self.saved = 0.0
        self.samples = 0
        self.model: nn.Module | None = None

    def apply(self, event: Event, state: TrainState) -> None:
        if event is Event.INIT:
            self._start(state)
        elif event is Event.LOSS:
            self._penalise(state)
        elif event is Event.AFTER_STEP:
            if self.values["step"] == "prox":
                proximal_step(self.layers, self.lr * (self.lam or 0.0))
        elif event is Event.BATCH:
            self._reconfigure_due(state, state.epochs_done)
        elif event is Event.EPOCH_END:
            self.epochs.append({"epoch": state.epoch + 1, "batch_size": state.batch_size,
                                "mflops": self.flops_now / 1e6, "training_flops": self.epoch_flops})
            self.epoch_flops = 0.0
            # a pass over the data is done (its last partial mini-batch dropped): due ones now
            self._reconfigure_due(state, max(state.epochs_done, state.epoch + 1))
        elif event is Event.FIT_END:
            if self.reconfigure(state):  # the evaluated model is the pruned one
                state.model_changed, state.optimizer_state = False, {}
            self.model = state.model

    def _start(self, state: TrainState) -> None:
        self.groups = channel_groups(state.model)
        self.layers = penalised_layers(self.groups)
        self.input_shape = tuple(state.input_shape)
        self.next_at = self.values["every"]
        self.base_batch = state.batch_size or (state.config.batch_size if state.config is not None else 0)
        self.flops_before = self.flops_now = forward_flops(state.model, self.input_shape)
        self.memory_before = activation_elements(state.model, self.input_shape)
        self.params_before = sum(p.numel() for p in state.model.parameters())
        self.widths_before = {g.name: g.width for g in self.groups}
        self.model = state.model

    def _penalise(self, state: TrainState) -> None:
        """Add lambda x group lasso to the loss (or remember the step's lr for the proximal
        step); lambda from the first mini-batch (the paper's rule)."""
        as_loss = self.values["step"] == "loss"
        if as_loss or self.lam is None:
            with torch.set_grad_enabled(as_loss):
                penalty = group_lasso(self.layers)
            if self.lam is None:
                ratio, total = self.values["ratio"], float(penalty.detach())
                self.lam = ratio * float(state.loss.detach()) / ((1 - ratio) * total) if total > 0 else 0.0
            if as_loss:
                state.loss = state.loss + self.lam * penalty
        if state.optimizer is not None:  # the step to come's lr, as SGD with momentum m applies it: lr / (1 - m)
            group = state.optimizer.param_groups[0]
            self.lr = float(group["lr"]) / (1 - float(group.get("momentum", 0.0)))
        batch = len(state.targets)
        self.samples += batch
        self.epoch_flops += training_flops(self.flops_now, batch)
        self.saved += training_flops(self.flops_before - self.flops_now, batch)

    def _reconfigure_due(self, state: TrainState, progress: float) -> None:
        """Reconfigure when ``progress`` (epochs trained) reached the next multiple of ``every``."""
        if progress < self.next_at - 1e-9:
            return
        while self.next_at <= progress + 1e-9:
            self.next_at += self.values["every"]
        if self.reconfigure(state) and self.values["grow"]:
            self._grow_batch(state)

    def _grow_batch(self, state: TrainState) -> None:
        """A mini-batch that uses the activation memory the unpruned model used; lr scaled alike."""
        if not self.base_batch or state.train is None:
            return
        memory = activation_elements(state.model, self.input_shape)
        wanted = min(self.base_batch * self.memory_before / memory, len(state.train) / MIN_STEPS_PER_EPOCH)
        wanted = int(wanted) // BATCH_MULTIPLE * BATCH_MULTIPLE
        if wanted > state.batch_size:
            state.batch_size = wanted
            state.lr_scale = wanted / self.base_batch

    def reconfigure(self, state: TrainState) -> bool:
        """Remove the dead channels of every group; True when the model changed."""
        slicer = _Slicer()
        removed: dict[str, int] = {}
        for group in self.groups:
            liveness = channel_liveness(group)
            alive = liveness >= self.values["threshold"]
            if bool(alive.all()):
                continue
            if not bool(alive.any()):
                alive[liveness.argmax()] = True  # keep one channel: the network must stay connected
            keep = alive.nonzero().flatten()
            removed[group.name] = group.width - len(keep)
            remove_channels(group, keep, slicer)
        if not removed:
            return False
        state.optimizer_state = slicer.optimizer_state(state.model, state.optimizer)
        state.model_changed = True
        self.flops_now = forward_flops(state.model, self.input_shape)
        self.reconfigurations.append({"step": state.step, "epoch": round(state.epochs_done, 4),
                                      "removed": removed, "mflops": self.flops_now / 1e6})
        return True

    def check_invariants(self, event: Event, state: TrainState) -> None:
        """Every group's layers agree on its width: what prunetrain sliced stays consistent."""
        for group in self.groups:
            width = group.width
            widths = ([c.out_channels for c in group.producers] + [n.num_features for n in group.norms]
                      + [getattr(layer, "in_channels", getattr(layer, "in_features", None)) for layer in group.consumers])
            if any(w != width for w in widths) or any(c.weight.shape[0] != c.out_channels for c in group.producers):
                raise InvariantBroken(f"prunetrain: channel group {group.name} has inconsistent widths {widths}")

    def state_dict(self) -> dict[str, Any]:
        return {"lam": self.lam, "saved": self.saved, "samples": self.samples, "next_at": self.next_at}

    def report(self) -> dict[str, Any]:
        if self.model is None or not self.groups:
            return {"training_flops_saved": 0.0}
        arch = architecture(self.groups, self.model)
        params = sum(p.numel() for p in self.model.parameters())
        return {
            "lambda": self.lam, "ratio": self.values["ratio"], "every": self.values["every"],
            "reconfigurations": len(self.reconfigurations),
            "history": self.reconfigurations,
            "epochs": self.epochs,
            "flops_before": self.flops_before, "flops_after": self.flops_now,
            "params_before": self.params_before, "params_after": params,
            "channels_before": sum(self.widths_before.values()),
            "channels_after": sum(g.width for g in self.groups),
            "pruned_channels": {g.name: self.widths_before[g.name] - g.width for g in self.groups
                                if g.width != self.widths_before[g.name]},
            "batch_sizes": sorted({row["batch_size"] for row in self.epochs}),
            "architecture": arch,
            "architecture_string": architecture_string(arch),
            "smallest_channel_liveness": min(float(channel_liveness(g).min()) for g in self.groups),
            "threshold": self.values["threshold"],
            "training_flops_saved": self.saved,
            "note": "FLOPs saved: 3 x (forward FLOPs before - now) x samples trained after each reconfiguration",
        }
