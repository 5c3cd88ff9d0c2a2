"""When a candidate's training has diverged, and it should fail rather than be scored.

A NaN or infinite loss is divergence; so is a loss that climbs far above where it started
and stays there: with a learning rate of 1e6 the loss sits at 1e13 and the candidate scores
chance, yet it would complete, land on the Pareto front and seed Net2Net children.

The rule, checked where the loop already reads the loss (every :data:`CHECK_EVERY` steps of an
epoch and at its end; each read syncs with the device, so no extra reads are added):

- the *window* is the steps since the previous check; its mean task loss is compared with
  :data:`FACTOR` x the *starting loss*, the loss of the very first step (the model before any
  update) but at least ln(classes), a uniform guess's loss, so a warm-started child that
  starts low is not failed for a brief rise to chance;
- the candidate fails with :class:`CandidateFailed` ("diverged") when :data:`PATIENCE` checks
  in a row are above that limit, or at once when the loss is not finite.
"""

from __future__ import annotations

import math

from torch import Tensor

from automl.core.errors import CandidateFailed

CHECK_EVERY = 16  # steps between checks (each check syncs with the device)
FACTOR = 10.0  # a window mean above FACTOR x the starting loss counts against the candidate
PATIENCE = 3  # checks in a row above the limit before the candidate fails


class DivergenceGuard:
    """Watches the running sum of one epoch's task loss; raises when training diverged."""

    def __init__(self, num_classes: int) -> None:
        self.floor = math.log(max(num_classes, 2))
        self.first: Tensor | float | None = None  # the first step's loss, read at the first check
        self.strikes = 0
        self.begin_epoch()

    def begin_epoch(self) -> None:
        self.read_sum, self.read_steps = 0.0, 0

    def after_step(self, task_loss: Tensor, loss_sum: Tensor, steps: int, epoch: int) -> None:
        """Called with the epoch's running loss sum after each of its ``steps``."""
        if self.first is None:
            self.first = task_loss  # kept on the device: no sync here
        if steps % CHECK_EVERY == 0:
            self.check(loss_sum, steps, epoch)

    def check(self, loss_sum: Tensor, steps: int, epoch: int) -> float:
        """Read the epoch's loss sum (one sync); returns it. Raises when training diverged."""
        total = float(loss_sum)
        where = f"in epoch {epoch + 1} by step {steps}"
        if not math.isfinite(total):
            raise CandidateFailed(f"diverged: the loss is {total} {where}")
        window = steps - self.read_steps
        if window > 0:
            mean = (total - self.read_sum) / window
            limit = FACTOR * max(self.starting_loss(), self.floor)
            self.strikes = self.strikes + 1 if mean > limit else 0
            if self.strikes >= PATIENCE:
                raise CandidateFailed(
                    f"diverged: mean loss {mean:.3g} over the last {window} steps {where} is above "
                    f"{FACTOR:g}x the starting loss ({self.starting_loss():.3g}) at {PATIENCE} checks in a row")
        self.read_sum, self.read_steps = total, steps
        return total

    def starting_loss(self) -> float:
        if isinstance(self.first, Tensor):
            self.first = float(self.first)
        return self.first if self.first is not None and math.isfinite(self.first) else self.floor
