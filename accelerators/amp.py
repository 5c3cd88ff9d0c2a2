"""``amp``: native mixed precision with torch.autocast - the real-hardware counterpart of fx16.

Micikevicius et al. (2018), "Mixed Precision Training", ICLR; implemented with PyTorch's
autocast. The forward pass and the loss run under ``torch.autocast`` in bfloat16 (default) or
float16; the backward pass follows the same casts; weights and optimizer state stay float32.
float16 (CUDA only) uses dynamic loss scaling: the loss is multiplied by a scale, gradients
are divided by it before the step, and a step with overflowed gradients is skipped and the
scale halved (doubled again after 2000 clean steps), as torch.cuda.amp.GradScaler does.

Wall-clock on hardware with fast 16-bit units (tensor cores, AMX); on a CPU without them the
casts can make training slower - the benchmark measures which.
"""

from __future__ import annotations

from typing import Any

import torch

from accelerators.base import Accelerator, InvariantBroken, Option
from automl.core.errors import AutomlError
from automl.train.events import Event, TrainState

GROWTH_INTERVAL = 2000


class MixedPrecision(Accelerator):
    name = "amp"
    kind = "wall-clock"
    summary = "native mixed precision (torch.autocast, bf16 or fp16 with loss scaling)"
    paper = "Micikevicius et al. 2018, Mixed Precision Training"
    order = 80
    ddp_safe = True
    ddp_note = (
        "autocast and loss scaling are per process; the overflow check reads the all-reduced "
        "gradients, so every rank skips alike")
    conflicts = frozenset({"fx16"})
    events = frozenset({Event.INIT, Event.BATCH, Event.LOSS, Event.BEFORE_STEP, Event.FIT_END})
    options = {"dtype": Option("bf16", "bf16 or fp16 (fp16 needs CUDA)", lambda v: v in ("bf16", "fp16"),
                               "bf16 or fp16")}

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self.dtype = torch.bfloat16 if self.values["dtype"] == "bf16" else torch.float16
        self.context = None
        self.scale = 2.0 ** 16
        self.clean_steps = 0
        self.skipped = 0
        self.steps = 0

    def apply(self, event: Event, state: TrainState) -> None:
        fp16 = self.dtype is torch.float16
        if event is Event.INIT:
            if fp16 and state.device.type != "cuda":
                raise AutomlError("accelerator 'amp': dtype=fp16 needs a CUDA device; use dtype=bf16")
        elif event is Event.BATCH:
            self.context = torch.autocast(device_type=state.device.type, dtype=self.dtype)
            self.context.__enter__()
        elif event is Event.LOSS:
            self._leave()
            if fp16:
                state.loss = state.loss * self.scale
        elif event is Event.BEFORE_STEP:
            self.steps += 1
            if not fp16:
                return
            grads = [p.grad for p in state.model.parameters() if p.grad is not None]
            for grad in grads:
                grad.div_(self.scale)
            if not all(torch.isfinite(g).all() for g in grads):
                state.skip_step = True
                self.skipped += 1
                self.scale /= 2
                self.clean_steps = 0
            else:
                self.clean_steps += 1
                if self.clean_steps % GROWTH_INTERVAL == 0:
                    self.scale *= 2
        elif event is Event.FIT_END:
            self._leave()

    def check_invariants(self, event: Event, state: TrainState) -> None:
        """The forward pass ran in the chosen 16-bit type; weights stay float32."""
        if event is Event.LOSS and state.outputs.dtype != self.dtype:
            raise InvariantBroken(f"amp: the forward pass gave {state.outputs.dtype}, not {self.dtype}")
        if any(p.dtype != torch.float32 for p in state.model.parameters()):
            raise InvariantBroken("amp: a weight is no longer float32")

    def teardown(self, state: TrainState) -> None:
        self._leave()  # a candidate that died between BATCH and LOSS left autocast entered

    def state_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "clean_steps": self.clean_steps, "skipped": self.skipped, "steps": self.steps}

    def _leave(self) -> None:
        if self.context is not None:
            self.context.__exit__(None, None, None)
            self.context = None

    def report(self) -> dict[str, Any]:
        return {"dtype": self.values["dtype"], "steps": self.steps, "skipped_steps": self.skipped,
                "loss_scale": self.scale if self.dtype is torch.float16 else None,
                "training_flops_saved": 0.0}
