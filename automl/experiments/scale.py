"""``bench scale``: what the engine and its storage cost per trial, and how well --workers scales.

The parts (``--parts``), one function each, return JSON-able dicts that ``bench_scale`` puts
under their names:

- ``overhead``: a search whose evaluator only sleeps, in one process, on each storage
  (SQLite, a journal file, PostgreSQL when a URL is given, and in memory as the engine alone):
  wall-clock per trial minus the sleep is what the engine and the study cost per trial -
  proposing, claiming, heartbeats, recording, reading peers' results back;
- ``parallel``: the same search (a fixed number of evaluations of an evaluator sleeping
  ``sleep`` seconds) with 1, 2, 4 and 8 Ray workers on one local Ray instance, against the
  ideal evaluations x sleep / workers; and the search's result at 1 and 4 workers, for nsga2
  (generational: the fronts must be identical) and Optuna's TPE (asked ``workers`` genomes at
  a time: a different search), as hypervolumes.

Another part (DDP, one candidate on several processes) is a function here with the same
signature style and an entry in :data:`PARTS`.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from automl.core.pareto import Objective, as_minimisation, hypervolume
from automl.engine.search import Search
from automl.experiments.problems import PROBLEMS
from automl.store.study import StudyStore
from search_spaces.base import DictSpace

TARGET_OVERHEAD_MS = 30.0
TARGET_EFFICIENCY = 0.9
GENES, _, OBJECTIVES, REFERENCE = PROBLEMS["nas"]


class SleepEvaluator:
    """A stand-in for training: sleeps, then scores the genome on the NAS-shaped test problem
    (deterministic, so runs can be compared genome by genome). Picklable for Ray workers."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, genome) -> dict[str, float]:
        if self.seconds > 0:
            time.sleep(self.seconds)
        return PROBLEMS["nas"][1](dict(genome))


def _search(url: str, name: str, evaluate: Callable, budget: int, population: int, seed: int = 0,
            strategy: str = "nsga2", executor=None, artifacts: Path | None = None):
    """One search on a fresh study: (result, wall-clock seconds, store, SQL statements it sent
    to an RDB storage - None for the others)."""
    store = StudyStore.create(name, url, [Objective(*o) for o in OBJECTIVES], {"benchmark": "scale"},
                              artifacts=artifacts)
    statements = _StatementCounter(store.storage)
    started = time.perf_counter()
    result = Search(DictSpace(GENES), evaluate, store, budget=budget, population=population, seed=seed,
                    strategy=strategy, executor=executor).run()
    wall = time.perf_counter() - started
    return result, wall, store, statements.stop()


class _StatementCounter:
    """Counts the SQL statements sent through an RDB storage's engine (a machine-independent
    measure of what a trial costs the database)."""

    def __init__(self, storage) -> None:
        self.engine = getattr(storage, "engine", None)
        self.count = 0
        if self.engine is not None:
            import sqlalchemy

            sqlalchemy.event.listen(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args) -> None:
        self.count += 1

    def stop(self) -> int | None:
        if self.engine is None:
            return None
        import sqlalchemy

        sqlalchemy.event.remove(self.engine, "before_cursor_execute", self._seen)
        return self.count


def overhead(trials: int = 40, sleep: float = 0.05, population: int = 8, postgres: str | None = None,
             repeats: int = 3, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Engine and storage cost per trial: (wall-clock - trials x sleep) / trials, per storage;
    each storage measured ``repeats`` times (a fresh study each), the best and the median
    reported (the best is the least disturbed by other load on the machine)."""
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="automl-scale-") as tmp:
        storages = {"memory": "memory", "sqlite": f"sqlite:///{tmp}/scale.db", "journal": f"journal:///{tmp}/scale.log"}
        if postgres:
            storages["postgresql"] = postgres
        for kind, url in storages.items():
            runs = []
            for _ in range(repeats):
                name = f"bench-scale-{int(time.time() * 1000)}"
                _, wall, store, statements = _search(url, name, SleepEvaluator(sleep), trials, population,
                                                     artifacts=Path(tmp) / "artifacts")
                runs.append(1000 * (wall / trials - sleep))
                if kind == "postgresql":
                    _delete(store)
            best, median = min(runs), statistics.median(runs)
            graded = kind in ("sqlite", "postgresql")
            rows[kind] = {"url": url if kind != "postgresql" else "postgresql://(given)", "trials": trials,
                          "overhead_ms_per_trial_runs": runs, "overhead_ms_per_trial": best,
                          "overhead_ms_per_trial_median": median,
                          "sql_statements_per_trial": statements / trials if statements is not None else None,
                          "target_ms": TARGET_OVERHEAD_MS if graded else None,
                          "met": best <= TARGET_OVERHEAD_MS if graded else None}
            if progress:
                progress(f"overhead {kind}: {best:.1f} ms per trial (best of {repeats}; median {median:.1f})")
    if not postgres:
        rows["postgresql"] = {"skipped": "no PostgreSQL URL given (--postgres URL or AUTOML_TEST_POSTGRES)"}
    return {"trials": trials, "sleep_s": sleep, "population": population, "repeats": repeats, "strategy": "nsga2",
            "storages": rows, "note": "one process, no Ray; overhead = wall-clock per trial minus the sleep: "
                                      "proposing (nsga2 with surrogate pre-selection), claiming (one trial with "
                                      "its genes as params), heartbeat, recording, reading the study back"}


def _delete(store: StudyStore) -> None:
    import optuna

    optuna.delete_study(study_name=store.name, storage=store.storage)


def parallel(workers: tuple[int, ...] = (1, 2, 4, 8), sleep: float = 2.0, evaluations: int = 16,
             population: int = 8, hv_budget: int = 64, hv_seeds: int = 2,
             progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Parallel efficiency of --workers N against the ideal, and what N does to the search."""
    from automl.engine.ray_executor import RayExecutor, require_ray, start_local

    ray = require_ray()
    started = time.perf_counter()
    start_local(ray, max(workers))
    try:
        startup = time.perf_counter() - started
        _warm_up(ray, max(workers))
        warm_up = time.perf_counter() - started - startup
        rows = {}
        with tempfile.TemporaryDirectory(prefix="automl-scale-") as tmp:
            for n in workers:
                _warm_up(ray, n)  # again: Ray may have let idle worker processes go meanwhile
                cpu = time.process_time()
                _, wall, _, _ = _search(f"sqlite:///{tmp}/parallel-{n}.db", f"parallel-{n}", SleepEvaluator(sleep),
                                     evaluations, population, executor=RayExecutor(n))
                ideal = evaluations * sleep / n
                generations = -(-evaluations // population) * -(-min(population, evaluations) // n)
                cpu = time.process_time() - cpu
                rows[str(n)] = {"wall_s": wall, "ideal_s": ideal, "efficiency": ideal / wall,
                                "rounds": generations,
                                "overhead_s_per_round": (wall - ideal) / generations,
                                "search_cpu_s_per_round": cpu / generations}
                if progress:
                    progress(f"parallel {n} worker(s): {wall:.1f} s for {evaluations} evaluations "
                             f"(ideal {ideal:.1f} s): efficiency {ideal / wall:.2f}")
        quality = _search_quality(RayExecutor, hv_budget, hv_seeds, population, progress)
    finally:
        ray.shutdown()
    top = rows[str(max(workers))]["efficiency"]
    return {"sleep_s": sleep, "evaluations": evaluations, "population": population, "storage": "sqlite",
            "ray_start_s": startup, "worker_warm_up_s": warm_up, "workers": rows, "target_efficiency": TARGET_EFFICIENCY,
            "met": top >= TARGET_EFFICIENCY, "search_quality": quality,
            "note": "nsga2, generational: each generation of `population` candidates is trained in parallel and "
                    "the next one is asked when all are back; one local Ray instance (started once) shared by all "
                    "rows, its workers warmed up before each row (engine and evaluator imported; not timed). A "
                    "round is one wave of at most `workers` candidates (a generation, or part of one with fewer "
                    "workers); overhead_s_per_round = (wall - ideal) / rounds: the search's own serial time per "
                    "wave (asking, claiming, recording); search_cpu_s_per_round: CPU seconds the search's process "
                    "(with its heartbeat and Ray client threads) used per wave - what that overhead would be on "
                    "an idle machine, where it does not wait for a core"}


def _warm_up(ray, count: int) -> None:
    """Start ``count`` worker processes that have imported the engine and the stand-in
    evaluator's module (optuna, numpy: seconds per process on a busy machine), outside the
    timings: a worker pays that once, not per candidate."""

    def ready() -> bool:
        import automl.engine.ray_executor  # noqa: F401
        import automl.experiments.scale  # noqa: F401

        time.sleep(1.0)  # held, so each of the count tasks gets a process of its own
        return True

    task = ray.remote(ready).options(num_cpus=1)
    ray.get([task.remote() for _ in range(count)])


def _search_quality(executor_type, budget: int, seeds: int, population: int,
                    progress: Callable[[str], None] | None) -> dict[str, Any]:
    """The same seeded search at 1 and 4 workers (evaluator without sleep): fronts and hypervolumes."""
    objectives = [Objective(*o) for o in OBJECTIVES]
    rows: dict[str, Any] = {}
    for strategy in ("nsga2", "optuna-tpe"):
        runs = []
        for seed in range(seeds):
            run = {}
            for n in (1, 4):
                result, _, _, _ = _search("memory", f"quality-{strategy}-{seed}-{n}", SleepEvaluator(0.0), budget,
                                       population, seed=seed, strategy=strategy, executor=executor_type(n))
                points = as_minimisation([[c.values[o.name] for o in objectives] for c in result.candidates
                                          if c.values is not None], objectives)
                run[n] = {"hypervolume": hypervolume(points, REFERENCE),
                          "front": sorted((c.genome.key(), tuple(c.values.values())) for c in result.front)}
            runs.append({"seed": seed, "hypervolume_1_worker": run[1]["hypervolume"],
                         "hypervolume_4_workers": run[4]["hypervolume"],
                         "same_front": run[1]["front"] == run[4]["front"]})
            if progress:
                progress(f"{strategy} seed {seed}: hypervolume {run[1]['hypervolume']:.2f} at 1 worker, "
                         f"{run[4]['hypervolume']:.2f} at 4, same front: {run[1]['front'] == run[4]['front']}")
        rows[strategy] = runs
    return {"problem": "nas", "budget": budget, "population": population, "reference": list(REFERENCE),
            "strategies": rows}


def ddp(processes: int = 2, steps: int = 20, global_batch: int = 64, rounds: int = 3,
        progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """One candidate on several processes: DDP (gloo) against one process on the same global
    batches (see :func:`automl.experiments.ddp.ddp_equivalence`)."""
    from automl.experiments.ddp import ddp_equivalence

    if progress is not None:
        progress(f"ddp: {steps} steps in one process, then on {processes} gloo processes, {rounds} round(s)")
    return ddp_equivalence(processes=processes, steps=steps, global_batch=global_batch, rounds=rounds)


PARTS: dict[str, Callable[..., dict[str, Any]]] = {"overhead": overhead, "parallel": parallel, "ddp": ddp}


def bench_scale(parts: list[str], options: dict[str, dict[str, Any]] | None = None,
                progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the named parts (keys of :data:`PARTS`), each with its own options."""
    import os

    options = options or {}
    result: dict[str, Any] = {"benchmark": "scale", "parts": list(parts),
                              "load_average_before": list(os.getloadavg())}
    for part in parts:
        result[part] = PARTS[part](progress=progress, **options.get(part, {}))
    result["load_average_after"] = list(os.getloadavg())
    return result
