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
from typing import Any

from torch import nn

from accelerators.base import Accelerator, Option
from accelerators.channel_groups import (ChannelGroup, _Slicer, architecture, architecture_string,  # noqa: F401
                                         channel_groups, channel_norms, forward_flops, group_lasso,
                                         proximal_step, remove_channels)
from automl.nn.flops import training_flops
from automl.train.events import Event, TrainState


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
