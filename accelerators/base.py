"""The Accelerator contract: methods that lower what one candidate evaluation costs.

An accelerator reacts to the trainer's events (:class:`automl.train.events.Event`): ``match``
says whether it acts on an event, ``apply`` acts, and ``teardown`` undoes whatever it set up
(hooks, swapped forwards, autocast contexts, frozen ``requires_grad`` flags); the trainer calls
it from ``finally``, also when the candidate died, so it must be idempotent. A method that
keeps state across steps gives it as ``state_dict()`` (plain, JSON-able values) and takes it
back with ``load_state_dict()``; ``ddp_safe`` says whether it may run under
DistributedDataParallel, ``ddp_note`` why. Each declares an honest ``kind`` - what it
saves:

- ``wall-clock``: measurably less time on this hardware;
- ``emulated``: arithmetic a specialised chip would make cheaper, emulated here at no saving
  (it reports the FLOPs it would save, never a measured speed-up);
- ``regularizer``: changes what is learned, not what it costs;
- ``fidelity``: trains on less (data, epochs, resolution) and so ranks candidates cheaper.

Options come from ``name:key=value,...`` and are validated against :attr:`options`.
Accelerators run in ascending ``order`` (data, then model, then loss, then gradients, then
arithmetic), ties in the order the user gave; pairs named in ``conflicts`` are refused.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from accelerators.layers import Hooks
from automl.core.errors import AutomlError
from automl.train.events import Event, TrainState

KINDS = ("wall-clock", "emulated", "regularizer", "fidelity")
INVARIANT_EVENTS = (Event.LOSS, Event.AFTER_STEP)  # where check_invariants is asked


class InvariantBroken(AssertionError):
    """What a method guarantees no longer holds: another method in the run undid it."""


@dataclass(frozen=True)
class Option:
    """One option: its default, its type and the check its value must pass."""

    default: Any
    help: str
    check: Callable[[Any], bool] = lambda value: True
    rule: str = ""

    def parse(self, accelerator: str, key: str, raw: str) -> Any:
        kind = type(self.default)
        try:
            if kind is bool:
                if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(raw)
                value: Any = raw.lower() in ("true", "1", "yes")
            else:
                value = kind(raw)
        except ValueError:
            raise AutomlError(f"accelerator {accelerator!r}: option {key}={raw!r} is not a {kind.__name__}") from None
        if not self.check(value):
            raise AutomlError(f"accelerator {accelerator!r}: option {key}={raw} is out of range ({self.rule})")
        return value


class Accelerator(ABC):
    """Base class; subclasses set the class attributes, implement ``apply`` and, where they
    set up more than :attr:`hooks`, extend ``teardown``."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    events: ClassVar[frozenset[Event]] = frozenset()
    options: ClassVar[dict[str, Option]] = {}
    conflicts: ClassVar[frozenset[str]] = frozenset()
    order: ClassVar[int] = 50
    ddp_safe: ClassVar[bool] = False  # may run under DistributedDataParallel (each method says why)
    ddp_note: ClassVar[str] = ""
    # may train a model for export (``automl export --retrain-epochs E --accelerate``), where the
    # trainer's validation split is the held-out test split and the trained model is written out
    export_safe: ClassVar[bool] = True
    export_note: ClassVar[str] = ""  # why not, where it may not

    def __init__(self, **values: Any) -> None:
        unknown = sorted(set(values) - set(self.options))
        if unknown:
            known = ", ".join(self.options) or "none"
            raise AutomlError(f"accelerator {self.name!r} has no option {unknown[0]!r} (options: {known})")
        self.values = {key: values.get(key, option.default) for key, option in self.options.items()}
        for key, option in self.options.items():  # values given in Python are checked as parsed ones are
            if not option.check(self.values[key]):
                raise AutomlError(f"accelerator {self.name!r}: option {key}={self.values[key]} "
                                  f"is out of range ({option.rule})")
        self.hooks = Hooks()  # forward hooks and swapped forwards, removed by teardown
        self.check()

    def check(self) -> None:
        """Validate combinations of options (single options are checked by their Option)."""

    def match(self, event: Event, state: TrainState) -> bool:
        return event in self.events

    @abstractmethod
    def apply(self, event: Event, state: TrainState) -> None:
        """Act on ``event``; read and change ``state``."""

    def teardown(self, state: TrainState) -> None:
        """Undo what this method set up for the candidate (the trainer's TEARDOWN, from
        ``finally``): by default remove :attr:`hooks`. Idempotent: it also runs after a
        normal FIT_END and after a failure at any point."""
        self.hooks.remove()

    def check_invariants(self, event: Event, state: TrainState) -> None:
        """Raise :class:`InvariantBroken` when what this method guarantees no longer holds at
        ``event`` (one of :data:`INVARIANT_EVENTS`: after the forward pass, after the update).
        The composition contract test asks every method in every allowed pair; training does not."""

    def state_dict(self) -> dict[str, Any]:
        """The state this method keeps across steps (empty for a stateless one)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back what :meth:`state_dict` gave; unknown keys are an error."""
        mine = self.state_dict()
        unknown = sorted(set(state) - set(mine))
        if unknown:
            raise AutomlError(f"accelerator {self.name!r} keeps no state {unknown[0]!r}")
        for key, value in state.items():
            setattr(self, key, value)

    def report(self) -> dict[str, Any]:
        """What this accelerator measured during training (densities, sampled fractions, ...),
        with ``training_flops_saved``: the FLOPs of the whole training run it would save in
        theory (0 for methods that save none)."""
        return {"training_flops_saved": 0.0}

    def spec(self) -> str:
        """The ``name:key=value,...`` form of this instance (every option spelled out)."""
        if not self.values:
            return self.name
        return f"{self.name}:" + ",".join(f"{k}={v}" for k, v in self.values.items())


def split_spec(text: str) -> list[str]:
    """``"fx16,sparsegrad:sparsity=0.9,keep=2"`` -> ``["fx16", "sparsegrad:sparsity=0.9,keep=2"]``.

    A comma-separated token with ``=`` and no ``:`` continues the options of the accelerator
    before it; any other token starts a new accelerator.
    """
    specs: list[str] = []
    for token in (t.strip() for t in text.split(",")):
        if not token:
            continue
        if "=" in token and ":" not in token:
            if not specs:
                raise AutomlError(f"accelerator option {token!r} comes before any accelerator name")
            specs[-1] += "," + token
        else:
            specs.append(token)
    return specs


def parse_spec(text: str, lookup: Callable[[str], type[Accelerator]]) -> list[Accelerator]:
    """``"fx16,sparsegrad:sparsity=0.9,keep=2"`` -> configured accelerators in run order
    (see :func:`split_spec` for how tokens group)."""
    chosen: list[Accelerator] = []
    for spec in split_spec(text):
        name, _, options = spec.partition(":")
        name, pairs = name.strip(), options.split(",") if options else []
        cls = lookup(name)
        values: dict[str, Any] = {}
        for pair in pairs:
            key, sep, raw = pair.partition("=")
            key = key.strip()
            if not sep:
                raise AutomlError(f"accelerator {name!r}: option {pair!r} is not key=value")
            if key not in cls.options:
                known = ", ".join(cls.options) or "none"
                raise AutomlError(f"accelerator {name!r} has no option {key!r} (options: {known})")
            values[key] = cls.options[key].parse(name, key, raw.strip())
        chosen.append(cls(**values))
    names = [a.name for a in chosen]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise AutomlError(f"accelerator {duplicates[0]!r} is named twice")
    for a in chosen:
        for b in chosen:
            if b.name in a.conflicts:
                raise AutomlError(f"accelerators {a.name!r} and {b.name!r} cannot be combined")
    return sorted(chosen, key=lambda a: a.order)  # stable: ties keep the user's order
