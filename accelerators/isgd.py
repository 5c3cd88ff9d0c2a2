"""``isgd``: inconsistent SGD - extra steps on batches whose loss is an outlier (a regularizer).

Wang, Yang, Min & Chakradhar (2016/2017), "Accelerating Deep Neural Network Training with
Inconsistent Stochastic Gradient Descent" (Neural Networks). ISGD treats the batch losses as a
stochastic process and watches them with a control chart: a batch whose loss exceeds the
upper control limit, mean + 3 sigma of the recent batch losses, is "under-trained", and ISGD
spends extra effort on it by solving a small sub-problem on that batch,

    min_w  psi(w; batch) + eps / (2 n_w) * ||w - w_prev||^2

where the second, conservative term keeps w near the weights w_prev it had before the batch
(n_w: number of weights), stopping as soon as the batch's loss falls below the limit or after a
fixed number of iterations.

What is implemented, exactly:

- Every batch's task loss (``state.criterion(outputs, targets)``, before other accelerators
  add to it) enters a window of the last ``window`` losses (0: one epoch's batches, as in the
  paper). Once the window is full, a batch is flagged when its loss > mean + ``sigmas`` x std
  of the window (population std, the window before this batch). Every loss, flagged or not,
  then enters the window.
- For a flagged batch the weights before its regular step are kept (w_prev); the regular
  optimizer step happens as usual. At the next BATCH event (or at EPOCH_END for an epoch's
  last batch) the sub-problem is solved on the flagged batch by plain gradient descent at the
  schedule's current learning rate, w <- w - lr * (grad psi + eps / n_w * (w - w_prev)), not
  through the optimizer (its momentum is left alone); each iteration first evaluates the loss
  and stops when it is at or below the limit. At most ``max_extra`` iterations per flagged
  batch, and at most ``max_fraction`` x (planned steps) extra iterations in the whole run.
- The extra work happens at the next BATCH (written before the trainer had AFTER_STEP; kept
  there so results stay comparable with the committed ones).

Not implemented: the paper's parallel/pipelined implementation. Interaction: the extra forward
passes run through the model's hooks, so accelerators that collect per-forward statistics
(``stdloss``) see them; ``isgd`` runs early (order 30) so such collectors clear at BATCH after it.
Deciding whether a batch is an outlier reads its loss on the host (one device sync per step).

``kind`` is ``regularizer``: ISGD changes what is learned and *adds* work per epoch; its claim
is fewer epochs to a target accuracy, which a fixed epoch budget does not turn into a saving.
``training_flops_saved`` is 0; report() gives the batches flagged, the extra forward passes
and steps, and the extra training FLOPs (``extra_flops``, forward = 1, backward = 2 units) as
a fraction of the regular run's.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import torch
from torch import Tensor

from accelerators.base import Accelerator, Option
from automl.train.events import Event, TrainState
from automl.nn.flops import count_flops, training_flops


class ControlChart:
    """A window of recent losses and the mean + k sigma upper control limit."""

    def __init__(self, size: int, sigmas: float) -> None:
        self.losses: deque[float] = deque(maxlen=size)
        self.sigmas = sigmas

    @property
    def full(self) -> bool:
        return len(self.losses) == self.losses.maxlen

    def limit(self) -> float:
        n = len(self.losses)
        mean = sum(self.losses) / n
        std = math.sqrt(sum((x - mean) ** 2 for x in self.losses) / n)
        return mean + self.sigmas * std

    def observe(self, loss: float) -> float | None:
        """Add ``loss``; return the limit it exceeded (an outlier), else None."""
        limit = self.limit() if self.full else None
        self.losses.append(loss)
        return limit if limit is not None and loss > limit else None


class InconsistentSGD(Accelerator):
    name = "isgd"
    kind = "regularizer"
    summary = "extra conservative steps on batches whose loss exceeds mean + 3 sigma of recent batches"
    paper = "Wang et al. 2016, Accelerating Deep Neural Network Training with Inconsistent Stochastic Gradient Descent"
    order = 30  # before loss-collecting accelerators, so their per-batch state is cleared after the extra passes
    ddp_safe = False
    ddp_note = (
        "the extra steps on a flagged batch update weights outside the optimizer, per rank and "
        "unsynchronised")
    events = frozenset({Event.INIT, Event.BATCH, Event.LOSS, Event.EPOCH_END})
    options = {
        "window": Option(0, "batch losses in the control chart (0: one epoch)", lambda v: v == 0 or v >= 2,
                         "0 or >= 2"),
        "sigmas": Option(3.0, "control limit: mean + sigmas x std", lambda v: v > 0, "sigmas > 0"),
        "max_extra": Option(5, "most extra iterations per flagged batch", lambda v: 1 <= v <= 100,
                            "1 <= max_extra <= 100"),
        "max_fraction": Option(0.1, "most extra iterations in all, as a fraction of the planned steps",
                               lambda v: 0.0 < v <= 1.0, "0 < max_fraction <= 1"),
        "eps": Option(0.1, "strength of the conservative term eps / (2 n_w) ||w - w_prev||^2",
                      lambda v: v >= 0.0, "eps >= 0"),
    }

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self.chart: ControlChart | None = None
        self.pending: tuple[Tensor, Tensor, list[Tensor], float] | None = None
        self.flagged = 0
        self.extra_forwards = 0
        self.extra_steps = 0
        self.regular_steps = 0
        self.budget = 0
        self.flops_per_sample = 0
        self.batch_size = 0


    def apply(self, event: Event, state: TrainState) -> None:
        if event is Event.INIT:
            size = self.values["window"] or state.steps_per_epoch
            self.chart = ControlChart(max(size, 2), self.values["sigmas"])
            planned = state.total_steps or state.steps_per_epoch
            self.budget = int(self.values["max_fraction"] * planned)
            self.flops_per_sample = count_flops(state.model, state.input_shape)
        elif event is Event.BATCH:
            self._solve_pending(state)
        elif event is Event.LOSS:
            self.regular_steps += 1
            self.batch_size = len(state.targets)
            loss = float(state.criterion(state.outputs, state.targets).detach())
            limit = self.chart.observe(loss)
            if limit is not None:
                self.flagged += 1
                if self.extra_steps < self.budget:
                    anchor = [p.detach().clone() for p in state.model.parameters()]
                    self.pending = (state.inputs, state.targets, anchor, limit)
        elif event is Event.EPOCH_END:
            self._solve_pending(state)

    def _solve_pending(self, state: TrainState) -> None:
        if self.pending is None:
            return
        inputs, targets, anchor, limit = self.pending
        self.pending = None
        model = state.model
        params = [p for p in model.parameters() if p.requires_grad]
        anchor = [a for p, a in zip(model.parameters(), anchor) if p.requires_grad]
        if len(params) != len(anchor) or any(p.shape != a.shape for p, a in zip(params, anchor)):
            return  # the model was reshaped since the batch was flagged
        n_w = sum(p.numel() for p in params)
        lr = state.optimizer.param_groups[0]["lr"]
        eps = self.values["eps"]
        for _ in range(self.values["max_extra"]):
            if self.extra_steps >= self.budget:
                break
            loss = state.criterion(model(inputs), targets)
            self.extra_forwards += 1
            if float(loss.detach()) <= limit:
                break
            if eps > 0:
                loss = loss + eps / (2 * n_w) * sum(((p - a) ** 2).sum() for p, a in zip(params, anchor))
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            with torch.no_grad():
                for p, g in zip(params, grads):
                    if g is not None:
                        p.sub_(g, alpha=lr)
            self.extra_steps += 1

    def teardown(self, state: TrainState) -> None:
        self.pending = None  # a flagged batch of a candidate that died is not solved later

    def state_dict(self) -> dict[str, Any]:
        return {"window": list(self.chart.losses) if self.chart else [], "flagged": self.flagged,
                "extra_forwards": self.extra_forwards, "extra_steps": self.extra_steps,
                "regular_steps": self.regular_steps, "budget": self.budget}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = dict(state)
        window = state.pop("window", [])
        super().load_state_dict(state)
        if self.chart is not None:
            self.chart.losses.clear()
            self.chart.losses.extend(window)

    def report(self) -> dict[str, Any]:
        per_sample = float(self.flops_per_sample) * self.batch_size
        extra = per_sample * (self.extra_forwards + 2 * self.extra_steps)
        regular = training_flops(per_sample, self.regular_steps)
        return {"batches_flagged": self.flagged, "extra_forwards": self.extra_forwards,
                "extra_steps": self.extra_steps, "regular_steps": self.regular_steps,
                "extra_flops": extra, "extra_fraction": extra / regular if regular else 0.0,
                "training_flops_saved": 0.0}
