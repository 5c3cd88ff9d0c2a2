"""Executors: where the engine's candidates train.

The engine (:mod:`automl.engine.search`) claims each candidate in the study, beats its
heartbeat and records its result; an executor only trains. Without one, a search trains
each candidate in its own process, one after another. An executor trains up to ``workers``
candidates at once in other processes (:class:`~automl.engine.ray_executor.RayExecutor`:
Ray tasks on this machine or on a cluster) and hands each result back as it finishes
(:mod:`automl.engine.parallel`), so the study is written by the search's process alone and
a worker needs no database connection, only the genome, its context and the artifact folder
holding its warm-start parent's weights.

An evaluator may define ``for_worker(gpus)`` returning the copy of itself to send to
workers (the CNN evaluator: silent, on the worker's own device); any other callable is sent
as it is.
"""

from __future__ import annotations

import os
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from automl.core.errors import AutomlError, CandidateFailed
from automl.core.evaluation import Evaluation, EvaluationContext
from automl.core.genome import Genome


class WorkerLost(AutomlError):
    """A candidate's worker died more often than the executor retries it (a node lost for good)."""


def as_evaluation(outcome: Evaluation | Mapping[str, float]) -> Evaluation:
    """An evaluator may return an :class:`Evaluation` or a plain dict of objective values."""
    return outcome if isinstance(outcome, Evaluation) else Evaluation(dict(outcome))


@dataclass
class Outcome:
    """What a worker sends back for one candidate: its evaluation, or why it failed on its own
    (:class:`CandidateFailed`), the evaluator's wall-clock seconds, and where it ran."""

    evaluation: Evaluation | None
    failure: str | None = None
    seconds: float = 0.0
    host: str = ""


def run_evaluator(evaluate: Callable[..., Any], genome: Genome, context: EvaluationContext | None) -> Outcome:
    """Call the evaluator as the engine would, in whatever process trains the candidate."""
    host = f"{socket.gethostname()}:{os.getpid()}"
    started = time.perf_counter()
    try:
        result = evaluate(genome) if context is None else evaluate(genome, context)
    except CandidateFailed as failure:
        return Outcome(None, str(failure), time.perf_counter() - started, host)
    return Outcome(as_evaluation(result), None, time.perf_counter() - started, host)


class Executor(ABC):
    """Trains candidates in other processes, up to :attr:`workers` at once."""

    workers: int = 1

    def connect(self) -> None:
        """Start or reach the workers without training anything yet, so a caller can learn
        that they cannot be reached before it creates anything (a study). Optional:
        :meth:`open` connects when this was not called."""

    @abstractmethod
    def open(self, evaluate: Callable[..., Any]) -> None:
        """Get ready to train with ``evaluate`` (start or join the workers)."""

    @abstractmethod
    def submit(self, genome: Genome, context: EvaluationContext | None) -> Hashable:
        """Start training one candidate; a handle to wait for."""

    @abstractmethod
    def wait(self, handles: Sequence[Hashable], timeout: float) -> list[Hashable]:
        """The handles whose candidates finished, waiting at most ``timeout`` seconds for one."""

    @abstractmethod
    def outcome(self, handle: Hashable) -> Outcome:
        """A finished candidate's outcome. Raises what the evaluator raised (other than
        :class:`CandidateFailed`), or :class:`WorkerLost`."""

    @abstractmethod
    def cancel(self, handle: Hashable) -> None:
        """Stop a candidate still training (the search was interrupted)."""

    @abstractmethod
    def close(self) -> None:
        """Release the workers (stop what :meth:`open` started)."""

    def describe(self) -> str:
        """One phrase for the search's first progress line."""
        return f"{self.workers} worker(s)"
