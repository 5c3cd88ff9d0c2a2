"""The Ray executor: each candidate a Ray task, on this machine or on a Ray cluster.

``RayExecutor(workers=N)`` starts a local Ray instance sized for N candidates at once and
stops it at the end; ``address="auto"`` (or ``ray://host:port``, any address ``ray.init``
takes) joins a running cluster instead. Each task asks for ``cpus_per_trial`` CPUs and
``gpus_per_trial`` GPUs (Ray pins the GPU: the evaluator sees it as ``cuda``) and sets
torch's threads to its CPUs. Ray runs a task again when its worker process or node dies
(``max_retries``); the engine keeps the trial RUNNING and its heartbeat alive meanwhile, so the
candidate is trained again and recorded once (:mod:`automl.engine.parallel`). Workers import
``automl`` themselves: on a cluster, the same version must be installed on every node.

Ray is optional (``pip install 'automl[ray]'``) and imported only when an executor opens.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from pathlib import Path
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from automl.core.errors import AutomlError
from automl.core.evaluation import EvaluationContext
from automl.core.genome import Genome
from automl.engine.executor import Executor, Outcome, WorkerLost, run_evaluator

MAX_RETRIES = 3  # times Ray runs a candidate again after its worker or node died
_EVALUATORS: dict[str, Any] = {}  # in a worker process: the search's evaluator, unpickled once
_STUDIES: dict[tuple[str, str], Any] = {}  # in a worker process: studies reopened for early stopping


def require_ray():
    """The ``ray`` module, or one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise AutomlError("--workers and --ray need Ray, which is not installed: "
                          "pip install 'automl[ray]' (or pip install ray)") from None
    return ray


class RayExecutor(Executor):
    """Up to ``workers`` candidates at once as Ray tasks; see the module docstring."""

    def __init__(self, workers: int | None = None, address: str | None = None, cpus_per_trial: float = 1.0,
                 gpus_per_trial: float = 0.0, max_retries: int = MAX_RETRIES) -> None:
        check_resources(workers, cpus_per_trial, gpus_per_trial)
        if workers is None and address is None:
            raise AutomlError("give --workers N (a local Ray instance) or --ray ADDRESS (a Ray cluster)")
        self.requested, self.address = workers, address
        self.workers = workers or 1
        self.cpus_per_trial, self.gpus_per_trial = float(cpus_per_trial), float(gpus_per_trial)
        self.max_retries = max_retries
        self.fits: int | None = None  # candidates the cluster's resources hold at once
        self._ray = None
        self._owned = False
        self._ref = None
        self._task = None

    def connect(self) -> None:
        """Start the local instance or join the cluster, and check it holds one trial."""
        if self.fits is not None and self._ray.is_initialized():  # connected already (fits is set last)
            return
        ray = self._ray = require_ray()
        if not ray.is_initialized():
            self._start(ray)
        resources = ray.cluster_resources()
        cpus, gpus = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
        fits = int(cpus // self.cpus_per_trial) if self.cpus_per_trial else 0
        if self.gpus_per_trial:
            fits = min(fits, int(gpus // self.gpus_per_trial))
        if fits < 1:
            self.close()
            raise AutomlError(f"the Ray cluster has {cpus:g} CPU(s) and {gpus:g} GPU(s): no room for one trial "
                              f"asking for {self.cpus_per_trial:g} CPU(s) and {self.gpus_per_trial:g} GPU(s)")
        self.fits = fits
        self.workers = self.requested or fits

    def open(self, evaluate: Callable[..., Any]) -> None:
        self.connect()
        ray = self._ray
        for_worker = getattr(evaluate, "for_worker", None)
        self._ref = ray.put(for_worker(self.gpus_per_trial) if callable(for_worker) else evaluate)
        self._task = ray.remote(_train).options(num_cpus=self.cpus_per_trial, num_gpus=self.gpus_per_trial,
                                                max_retries=self.max_retries, retry_exceptions=False)

    def _start(self, ray) -> None:
        try:
            if self.address is None:  # a local instance holding exactly the workers asked for
                start_local(ray, math.ceil(self.workers * self.cpus_per_trial))
            else:
                ray.init(address=self.address, logging_level=logging.WARNING, log_to_driver=False)
        except Exception as error:  # ConnectionError, RuntimeError, ValueError: ray words them
            where = f"at {self.address!r}" if self.address else "locally"
            reason = " ".join(str(error).split())[:300] or type(error).__name__
            raise AutomlError(f"cannot start or reach Ray {where}: {reason}") from None
        self._owned = True

    def submit(self, genome: Genome, context: EvaluationContext | None) -> Hashable:
        return self._task.remote([self._ref], genome, context, self.cpus_per_trial)

    def wait(self, handles: Sequence[Hashable], timeout: float) -> list[Hashable]:
        handles = list(handles)
        ready, _ = self._ray.wait(handles, num_returns=1, timeout=timeout)
        if ready and len(handles) > 1:  # everything else that is done too
            ready, _ = self._ray.wait(handles, num_returns=len(handles), timeout=0)
        return ready

    def outcome(self, handle: Hashable) -> Outcome:
        ray = self._ray
        try:
            return ray.get(handle)
        except ray.exceptions.RayTaskError:
            raise  # the evaluator's own error (a bug): Ray re-raises it with the worker's traceback
        except ray.exceptions.RayError as error:
            raise WorkerLost(f"a candidate's Ray worker died and was retried {self.max_retries} time(s) "
                             f"({type(error).__name__}); its trial is FAILED and --resume trains it "
                             "again") from None

    def cancel(self, handle: Hashable) -> None:
        try:
            self._ray.cancel(handle, force=True)
        except Exception:  # finished meanwhile, or the cluster is gone: nothing to stop
            pass

    def close(self) -> None:
        if self._owned and self._ray is not None:
            self._ray.shutdown()
        self._owned = False

    def describe(self) -> str:
        each = f"{self.cpus_per_trial:g} CPU" + (f", {self.gpus_per_trial:g} GPU" if self.gpus_per_trial else "")
        where = "a local Ray instance" if self.address is None else f"the Ray cluster at {self.address}"
        room = f"; the cluster holds {self.fits} at once" if self.fits is not None and self.fits < self.workers else ""
        return f"{self.workers} candidates at once on {where} ({each} each{room})"


def start_local(ray, num_cpus: int) -> None:
    """A local Ray instance whose workers import the same ``automl`` as this process: the
    folder holding the package goes first on their path (a worker's own working folder and
    installed packages could hold another copy)."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})


def check_resources(workers: int | None, cpus_per_trial: float, gpus_per_trial: float) -> None:
    """The numbers a user gives, checked before anything starts."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise AutomlError(f"--workers must be an integer of at least 1, got {workers!r}")
    if not (isinstance(cpus_per_trial, (int, float)) and math.isfinite(cpus_per_trial) and cpus_per_trial > 0):
        raise AutomlError(f"--cpus-per-trial must be a positive number, got {cpus_per_trial!r}")
    if not (isinstance(gpus_per_trial, (int, float)) and math.isfinite(gpus_per_trial) and gpus_per_trial >= 0):
        raise AutomlError(f"--gpus-per-trial must be 0 or more, got {gpus_per_trial!r}")


# -- in a Ray worker process -----------------------------------------------------------------

def _train(box: list, genome: Genome, context: EvaluationContext | None, cpus: float) -> Outcome:
    """One candidate, in a Ray worker: the evaluator (fetched once per process), torch's
    threads set to the task's CPUs, the running trial reopened for early stopping."""
    import ray

    ref = box[0]  # in a list, so Ray hands the reference over instead of the object
    evaluate = _EVALUATORS.get(ref.hex())
    if evaluate is None:
        evaluate = ray.get(ref)
        _EVALUATORS.clear()  # one search's evaluator at a time per worker process
        _EVALUATORS[ref.hex()] = evaluate
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(max(1, int(cpus)))
    if context is not None and context.storage and context.trial is None:
        _reopen_trial(context)
    outcome = run_evaluator(evaluate, genome, context)
    weights = outcome.evaluation.weights if outcome.evaluation is not None else None
    if weights is not None:  # back to the search's process as CPU tensors
        outcome.evaluation.weights = {k: v.detach().to("cpu") if hasattr(v, "detach") else v
                                      for k, v in weights.items()}
    return outcome


def _reopen_trial(context: EvaluationContext) -> None:
    """Give the context its study and running trial (early stopping records rungs on it)."""
    import optuna

    from automl.store.storage import open_storage

    where = (context.storage, context.study_name)
    if where not in _STUDIES:
        storage = open_storage(context.storage, must_exist=True)
        _STUDIES[where] = (storage, optuna.load_study(study_name=context.study_name, storage=storage))
    storage, study = _STUDIES[where]
    study_id = storage.get_study_id_from_name(context.study_name)
    context.study = study
    context.trial = optuna.trial.Trial(study, storage.get_trial_id_from_study_id_trial_number(
        study_id, context.trial_number))
