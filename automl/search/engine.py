"""The search engine: NSGA-II (Dvolver's recipe) through pymoo's ask/tell, and baselines.

``nsga2`` - the Dvolver recipe on integer-encoded genomes: binary tournament on rank then
crowding, uniform crossover, per-gene mutation to a *different* legal value, (mu+lambda)
survival by rank and crowding. A genome that was already asked for is never offered again
(duplicates are eliminated against the whole archive), so every evaluation is new. On top,
each generation proposes ``preselect`` times more children than it evaluates and a cheap
surrogate picks the ones worth training (:mod:`automl.surrogate`); ``preselect=1`` is plain
Dvolver.
``random`` - uniform sampling without repeats. ``optuna-nsga2`` and ``optuna-tpe`` - Optuna's
own samplers on the same study, for side-by-side comparison.

Every evaluation is a trial in the study (:mod:`automl.study`). A resume re-runs the
algorithm from the same seed, answering every genome the study already holds from storage
instead of training it: the replay reconstructs the exact population, and the search then
continues where it stopped. Training never touches the algorithm's random state.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from optuna.trial import FrozenTrial, TrialState
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.duplicate import DuplicateElimination
from pymoo.core.evaluator import Evaluator as PymooEvaluator
from pymoo.core.mutation import Mutation
from pymoo.core.problem import Problem
from pymoo.core.repair import Repair
from pymoo.core.sampling import Sampling
from pymoo.core.termination import NoTermination
from pymoo.operators.crossover.ux import UniformCrossover
from pymoo.problems.static import StaticProblem

from automl.core.errors import AutomlError, CandidateFailed, UnknownNameError
from automl.core.evaluation import Evaluation, EvaluationContext
from automl.core.genome import Genome
from automl.core.pareto import Objective, as_minimisation, non_dominated
from automl.core.progress import SilentProgress
from automl.store.study import StudyStore
from automl.search import surrogate
from search_spaces.base import SearchSpace

STRATEGIES = ("nsga2", "random", "optuna-nsga2", "optuna-tpe")
FAILED_PENALTY = 1e30  # objective value (minimisation form) given to failed candidates
MAX_WASTED_PROPOSALS = 20  # per budget unit, for samplers that keep proposing known genomes
DEFAULT_PRESELECT = 8  # children proposed per child evaluated (1: plain Dvolver NSGA-II)


class _TimeUp(Exception):
    """Raised before a new evaluation once the search's wall-clock budget is spent."""


@dataclass
class Candidate:
    """One evaluated genome as the search saw it."""

    genome: Genome
    values: dict[str, float] | None
    trial: int | None
    generation: int
    parents: list[int] = field(default_factory=list)
    failed: str | None = None
    reused: bool = False
    attrs: dict[str, Any] = field(default_factory=dict)
    elapsed: float = 0.0  # seconds from the start of the search to this candidate's end
    pruned: bool = False  # stopped early: values are the partial ones at its last checkpoint

    def as_dict(self) -> dict[str, Any]:
        return {"trial": self.trial, "genome": dict(self.genome), "values": self.values,
                "generation": self.generation, "parents": self.parents, "failed": self.failed}


@dataclass
class SearchResult:
    """Every genome the search evaluated (in order) and the Pareto front among them."""

    candidates: list[Candidate]
    front: list[Candidate]
    objectives: list[Objective]
    store: StudyStore | None = None

    @property
    def study(self):
        return self.store.study if self.store is not None else None


def candidate_seed(seed: int, genome: Genome) -> int:
    """Training seed of a genome: fixed by (--seed, genome), independent of search order."""
    digest = hashlib.sha256(f"{seed}:{genome.key()}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def default_population(budget: int) -> int:
    """Population size for a budget: a twentieth of it, between 8 and 64 (small budgets do
    best with small populations and more generations; `automl bench engine` measures it)."""
    return int(min(64, max(8, budget // 20)))


# -- pymoo operators on integer-encoded genomes --------------------------------------------

def _row(x: np.ndarray) -> tuple[int, ...]:
    return tuple(int(v) for v in x)


class GenomeSampling(Sampling):
    """Random genomes, no two alike, with every gene's values spread evenly over the
    population (a Latin-hypercube-like design for categorical genes): small populations then
    cover each choice, including the cheapest and the largest."""

    def __init__(self, n_choices: np.ndarray) -> None:
        super().__init__()
        self.n_choices = n_choices

    def _do(self, problem, n_samples, random_state=None, **kwargs):
        rows: dict[tuple[int, ...], None] = {}
        for _ in range(100):
            columns = []
            for n in self.n_choices:
                balanced = np.concatenate([random_state.permutation(n) for _ in range(-(-n_samples // n))])
                columns.append(random_state.permutation(balanced[:n_samples]))
            for x in np.stack(columns, axis=1):
                rows[_row(x)] = None
                if len(rows) == n_samples:
                    return np.array(list(rows), dtype=int)
        return np.array(list(rows), dtype=int)  # a tiny space: fewer distinct genomes exist


class ParentTrackingCrossover(UniformCrossover):
    """Uniform crossover whose offspring remember their parents' genome rows."""

    def do(self, problem, pop, parents=None, *args, random_state=None, **kwargs):
        matings = [pop[m] for m in parents] if parents is not None else list(pop)
        off = super().do(problem, pop, parents, *args, random_state=random_state, **kwargs)
        for i, child in enumerate(off):
            child.set("parents", tuple(_row(p.X) for p in matings[i % len(matings)]))
        return off


class GeneMutation(Mutation):
    """Each gene mutates with probability 1/n_genes to a different legal value."""

    def __init__(self, n_choices: np.ndarray) -> None:
        super().__init__(prob=1.0)
        self.n_choices = n_choices

    def _do(self, problem, X, random_state=None, **kwargs):
        X = np.array(X, dtype=int, copy=True)
        p = min(0.5, 1.0 / X.shape[1])
        mask = (random_state.random(X.shape) < p) & (self.n_choices > 1)
        for i, j in zip(*np.nonzero(mask)):
            other = int(random_state.integers(self.n_choices[j] - 1))
            X[i, j] = other if other < X[i, j] else other + 1
        return X


class ArchiveDuplicates(DuplicateElimination):
    """Drop offspring already in the archive of everything asked, or twice in a batch."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple[int, ...]] = set()

    def do(self, pop, *args, return_indices=False, to_itself=True):
        known = set(self.seen)
        for other in args:
            known.update(_row(ind.X) for ind in other)
        keep = []
        for i, ind in enumerate(pop):
            row = _row(ind.X)
            if row not in known:
                keep.append(i)
                if to_itself:
                    known.add(row)
        kept = pop[keep]
        if return_indices:
            return kept, keep, [i for i in range(len(pop)) if i not in set(keep)]
        return kept


class FeasibilityRepair(Repair):
    """Move infeasible genomes (over --max-flops/--max-params) into the feasible region.

    Greedy: random single-gene changes that lower the violation, then fresh samples. The
    constraint is checked on built models before any training, so none is wasted.
    """

    def __init__(self, n_choices: np.ndarray, violation: Callable[[np.ndarray], float]) -> None:
        super().__init__()
        self.n_choices = n_choices
        self.violation = violation

    def _do(self, problem, X, random_state=None, **kwargs):
        X = np.array(X, dtype=int, copy=True)
        for i in range(len(X)):
            X[i] = repair_row(X[i], self.n_choices, self.violation, random_state)
        return X


def repair_row(x: np.ndarray, n_choices: np.ndarray, violation: Callable[[np.ndarray], float],
               rng: np.random.Generator, steps: int = 200) -> np.ndarray:
    """Greedy descent on the violation by single-gene moves, kept when not worse.

    Most moves go to an earlier choice: choices are ordered small to large (the SearchSpace
    contract), so for FLOPs and parameter limits that is the direction that helps; a few
    moves are arbitrary, for constraints of other shapes. Falls back to fresh samples.
    """
    x = np.array(x, dtype=int, copy=True)
    current = violation(x)
    for _ in range(steps):
        if current <= 0:
            return x
        trial = x.copy()
        shrinkable = np.flatnonzero(trial > 0)
        if len(shrinkable) and rng.random() < 0.8:
            j = int(rng.choice(shrinkable))
            trial[j] = int(rng.integers(trial[j]))
        else:
            j = int(rng.integers(len(x)))
            trial[j] = int(rng.integers(n_choices[j]))
        value = violation(trial)
        if value <= current:
            x, current = trial, value
    for _ in range(steps):
        if current <= 0:
            return x
        x = rng.integers(n_choices)
        current = violation(x)
    return x


# -- the search --------------------------------------------------------------------------------

Evaluate = Callable[[Genome], "Evaluation | Mapping[str, float]"]


class Search:
    """Runs one strategy over a space, recording every evaluation in a study."""

    def __init__(self, space: SearchSpace, evaluate: Evaluate, store: StudyStore, *,
                 budget: int, strategy: str = "nsga2", population: int | None = None, seed: int = 0,
                 violation: Callable[[Genome], float] | None = None,
                 known: Callable[[Genome], Mapping[str, float]] | None = None,
                 preselect: int = DEFAULT_PRESELECT, warm_start: bool = True,
                 time_budget: float | None = None,
                 progress: SilentProgress | None = None, label: Callable[[Genome], str] | None = None) -> None:
        if strategy not in STRATEGIES:
            raise UnknownNameError(f"unknown strategy {strategy!r} (known: {', '.join(STRATEGIES)})")
        if budget < 1:
            raise AutomlError(f"budget must be at least 1 evaluation, got {budget}")
        self.space = space
        self.evaluate = evaluate
        self.store = store
        self.objectives = store.objectives
        self.budget = budget
        self.strategy = strategy
        self.population = population or default_population(budget)
        if self.population < 2:
            raise AutomlError(f"population must be at least 2, got {self.population}")
        self.seed = seed
        if preselect < 1:
            raise AutomlError(f"preselect must be at least 1, got {preselect}")
        self.preselect = preselect
        self.warm_start = warm_start
        self.time_budget = time_budget
        self._started = 0.0
        self._known = known
        self.progress = progress or SilentProgress()
        self.label = label or space.format
        self.choices = space.genes()
        self.n_choices = np.array([len(c) for c in self.choices.values()], dtype=int)
        self._violation_of = violation
        self._violations: dict[str, float] = {}
        self._finished: dict[str, FrozenTrial] = {}
        self._trial_of: dict[str, int] = {}
        self.candidates: list[Candidate] = []

    # -- public -----------------------------------------------------------------------------

    def run(self) -> SearchResult:
        interrupted = self.store.mark_interrupted()
        self._finished = self.store.finished_by_key()
        self._trial_of = {key: t.number for key, t in self._finished.items()}
        if self._violation_of is not None:
            self._check_feasible_exists()
        if interrupted:
            self.progress.message(f"{interrupted} interrupted trial(s) marked FAILED; their genomes are retried")
        self.progress.search_started(self.budget, 0)
        self._started = time.perf_counter()
        try:
            if self.strategy == "nsga2":
                self._run_nsga2()
            elif self.strategy == "random":
                self._run_random()
            else:
                self._run_optuna()
        except _TimeUp:
            pass
        finally:
            self.progress.search_finished()
        return self.result()

    def result(self) -> SearchResult:
        done = [c for c in self.candidates if c.values is not None and not c.pruned]
        front: list[Candidate] = []
        if done:
            points = as_minimisation([[c.values[o.name] for o in self.objectives] for c in done], self.objectives)
            front = sorted((done[i] for i in non_dominated(points)),
                           key=lambda c: c.values[self.objectives[-1].name])
        return SearchResult(self.candidates, front, self.objectives, self.store)

    # -- strategies -------------------------------------------------------------------------

    def _run_nsga2(self) -> None:
        n = len(self.n_choices)
        problem = Problem(n_var=n, n_obj=len(self.objectives), n_ieq_constr=1,
                          xl=np.zeros(n), xu=self.n_choices - 1, vtype=int)
        duplicates = ArchiveDuplicates()
        repair = FeasibilityRepair(self.n_choices, self._row_violation) if self._violation_of else None
        algorithm = NSGA2(pop_size=self.population, sampling=GenomeSampling(self.n_choices),
                          crossover=ParentTrackingCrossover(), mutation=GeneMutation(self.n_choices),
                          eliminate_duplicates=duplicates, repair=repair)
        algorithm.tournament_type = "comp_by_rank_and_crowding"  # Dvolver: rank, then crowding
        algorithm.setup(problem, seed=self.seed, termination=NoTermination())
        generation = 0
        evaluated_x: list[np.ndarray] = []
        evaluated_f: list[list[float]] = []
        while len(self.candidates) < self.budget:
            use_surrogate = generation > 0 and self.preselect > 1 and len(evaluated_x) >= 2
            algorithm.n_offsprings = self.population * (self.preselect if use_surrogate else 1)
            pop = algorithm.ask()
            if pop is None or len(pop) == 0:
                break  # the space holds no new genome
            if use_surrogate and len(pop) > self.population:
                pop = pop[self._preselect(pop, evaluated_x, evaluated_f, problem, algorithm.random_state)]
            duplicates.seen.update(_row(ind.X) for ind in pop)
            take = min(len(pop), self.budget - len(self.candidates))
            self.progress.generation_started(generation, take)
            F, G = [], []
            for ind in pop[:take]:
                genome = self.space.decode(ind.X)
                parents = [self._trial_of[k] for k in
                           (self.space.decode(p).key() for p in (ind.get("parents") or ()))
                           if k in self._trial_of]
                candidate = self._evaluate(genome, generation, parents)
                F.append(self._minimised(candidate))
                G.append([self._violation(genome) if candidate.values is not None else 1.0])
                if candidate.values is not None:
                    evaluated_x.append(np.asarray(ind.X, dtype=int))
                    evaluated_f.append(F[-1])
            if take < len(pop):
                break
            PymooEvaluator().eval(StaticProblem(problem, F=np.array(F), G=np.array(G)), pop)
            algorithm.tell(infills=pop)
            generation += 1

    def _preselect(self, pool, evaluated_x, evaluated_f, problem, random_state) -> np.ndarray:
        """Indices of the population's worth of children the surrogate ranks best."""
        X = np.array([ind.X for ind in pool], dtype=int)
        predicted = surrogate.OneHotRidge(self.n_choices).fit(np.array(evaluated_x), np.array(evaluated_f)).predict(X)
        if self._known is not None:  # exact values for objectives that cost nothing to compute
            for row, x in enumerate(X):
                exact = self._known(self.space.decode(x))
                for column, objective in enumerate(self.objectives):
                    if objective.name in exact:
                        predicted[row, column] = objective.minimised(float(exact[objective.name]))
        return surrogate.preselect(predicted, self.population, problem, random_state)

    def _run_random(self) -> None:
        rng = np.random.default_rng(self.seed)
        seen: set[str] = set()
        wasted = 0
        while len(self.candidates) < self.budget and wasted < MAX_WASTED_PROPOSALS * self.budget:
            self._check_time()  # proposals answered without training take time too
            x = rng.integers(self.n_choices)
            if self._violation_of is not None:
                x = repair_row(x, self.n_choices, self._row_violation, rng)
            genome = self.space.decode(x)
            if genome.key() in seen:
                wasted += 1
                continue
            seen.add(genome.key())
            generation = len(self.candidates) // self.population
            if len(self.candidates) % self.population == 0:
                self.progress.generation_started(generation, min(self.population, self.budget - len(self.candidates)))
            self._evaluate(genome, generation, [])

    def _run_optuna(self) -> None:
        import optuna

        if self.strategy == "optuna-nsga2":
            sampler = optuna.samplers.NSGAIISampler(population_size=self.population, seed=self.seed)
        else:
            sampler = optuna.samplers.TPESampler(seed=self.seed)
        self.store.study.sampler = sampler
        seen: set[str] = set()
        for key, trial in sorted(self._finished.items(), key=lambda item: item[1].number):
            if len(self.candidates) < self.budget:  # a resumed study: what is stored counts
                seen.add(key)
                genome = self.space.make(trial.params) if trial.params else None
                if genome is not None:
                    self._evaluate(genome, trial.user_attrs.get("generation", 0), [])
        wasted = 0
        rng = np.random.default_rng(self.seed)
        while len(self.candidates) < self.budget and wasted < MAX_WASTED_PROPOSALS * self.budget:
            self._check_time()  # a sampler stuck on known or infeasible genomes must not outlive the budget
            trial, genome = self.store.ask(self.choices, self.space.name)
            key = genome.key()
            infeasible = key not in seen and self._violation_of is not None and self._violation(genome) > 0
            if key in seen or infeasible:
                wasted += 1
                self._answer_without_training(trial, genome, key in seen)
                if infeasible:
                    self._enqueue_repaired(genome, seen, rng)
                continue
            seen.add(key)
            generation = len(self.candidates) // self.population
            if len(self.candidates) % self.population == 0:
                self.progress.generation_started(generation, min(self.population, self.budget - len(self.candidates)))
            self._evaluate(genome, generation, [], trial=trial)

    def _enqueue_repaired(self, genome: Genome, seen: set[str], rng: np.random.Generator) -> None:
        """Queue the repaired form of an infeasible proposal as the sampler's next trial.

        Optuna's samplers never see why a trial failed, so under a FLOPs limit they keep
        proposing genomes that break it (TPE spent a whole benchmark budget so). Our own
        strategies repair such genomes; this gives Optuna's the same repaired genome, which
        they then learn from like any trial of theirs."""
        x0 = self.space.encode(genome)
        for _ in range(10):
            x = repair_row(x0, self.n_choices, self._row_violation, rng)
            repaired = self.space.decode(x)
            if self._violation(repaired) <= 0 and repaired.key() not in seen:
                self.store.study.enqueue_trial(dict(repaired))
                return

    # -- evaluation ---------------------------------------------------------------------------

    def _check_time(self, trial=None) -> None:
        """Raise _TimeUp once the wall-clock budget is spent (a trial already asked is failed,
        retryable, so a resumed search evaluates its genome)."""
        if self.time_budget is not None and time.perf_counter() - self._started >= self.time_budget:
            if trial is not None:
                self.store.fail(trial, "not evaluated: the time budget was spent", retry=True)
            raise _TimeUp

    def _evaluate(self, genome: Genome, generation: int, parents: list[int], trial=None) -> Candidate:
        self._check_time(trial)
        key = genome.key()
        label = self.label(genome)
        stored = self._finished.get(key)
        if stored is not None:
            if trial is not None:  # an Optuna sampler proposed a stored genome
                self._copy_trial(trial, stored)
            candidate = self._from_trial(genome, stored, generation, reused=True)
            candidate.elapsed = time.perf_counter() - self._started
            self.candidates.append(candidate)
            self.progress.candidate_finished(label, candidate.values, {"reused": True})
            return candidate

        attrs = {"key": key, "genome": label, "generation": generation, "parents": parents,
                 "strategy": self.strategy}
        context = None
        if getattr(self.evaluate, "accepts_context", False):
            warm = self._warm_parent(genome, parents) if self.warm_start else None
            context = EvaluationContext(generation, parents, warm, self.store.download_weights, self.store.cache_dir,
                                        study=self.store.study)
        if trial is None:
            trial = self.store.start(genome, self.choices, attrs)
        else:
            for name, value in attrs.items():
                trial.set_user_attr(name, value)
        if context is not None:
            context.trial = trial
        self._trial_of[key] = trial.number
        self.progress.candidate_started(label)
        numpy_state = np.random.get_state()  # training must not move the search's randomness
        started = time.perf_counter()
        try:
            outcome = self.evaluate(genome) if context is None else self.evaluate(genome, context)
            evaluation = outcome if isinstance(outcome, Evaluation) else Evaluation(dict(outcome))
            values = self._checked_values(evaluation.values)
        except CandidateFailed as failure:
            self.store.fail(trial, str(failure), retry=False)
            candidate = Candidate(genome, None, trial.number, generation, parents, failed=str(failure),
                                  elapsed=time.perf_counter() - self._started)
            self.candidates.append(candidate)
            self.progress.candidate_finished(label, None, {"reason": str(failure), "trial": trial.number})
            return candidate
        except BaseException as error:  # interrupted, or a bug: keep the study consistent, retry later
            reason = "interrupted" if isinstance(error, KeyboardInterrupt) else f"{type(error).__name__}: {error}"
            self.store.fail(trial, reason, retry=True)
            raise
        finally:
            np.random.set_state(numpy_state)
        attrs = dict(evaluation.attrs)
        attrs.setdefault("seconds", time.perf_counter() - started)
        if evaluation.pruned:
            self._finished[key] = self.store.prune(trial, values, attrs, evaluation.weights)
        else:
            self._finished[key] = self.store.complete(trial, values, attrs, evaluation.weights)
        candidate = Candidate(genome, values, trial.number, generation, parents, attrs=attrs,
                              elapsed=time.perf_counter() - self._started, pruned=evaluation.pruned)
        self.candidates.append(candidate)
        info = {"trial": trial.number, "seconds": attrs["seconds"]}
        if evaluation.pruned:
            info["pruned"] = True
        self.progress.candidate_finished(label, values, info)
        return candidate

    def _checked_values(self, values: Mapping[str, float]) -> dict[str, float]:
        checked = {}
        for objective in self.objectives:
            if objective.name not in values:
                raise AutomlError(f"the evaluator returned no value for objective {objective.name!r}")
            value = float(values[objective.name])
            if not math.isfinite(value):
                raise CandidateFailed(f"objective {objective.name!r} is {value}")
            checked[objective.name] = value
        return checked

    def _minimised(self, candidate: Candidate) -> list[float]:
        if candidate.values is None:
            return [FAILED_PENALTY] * len(self.objectives)
        return [o.minimised(candidate.values[o.name]) for o in self.objectives]

    def _from_trial(self, genome: Genome, trial: FrozenTrial, generation: int, reused: bool) -> Candidate:
        values = None
        if trial.state == TrialState.COMPLETE:
            values = {o.name: float(v) for o, v in zip(self.objectives, trial.values)}
        elif trial.state == TrialState.PRUNED:
            values = {o.name: float(trial.user_attrs["partial_values"][o.name]) for o in self.objectives}
        return Candidate(genome, values, trial.number, generation, list(trial.user_attrs.get("parents", [])),
                         failed=trial.user_attrs.get("fail_reason"), reused=reused, attrs=dict(trial.user_attrs),
                         pruned=trial.state == TrialState.PRUNED)

    def _copy_trial(self, trial, stored: FrozenTrial) -> None:
        """Answer a repeated proposal with the stored result (no training)."""
        trial.set_user_attr("key", stored.user_attrs.get("key"))
        trial.set_user_attr("genome", stored.user_attrs.get("genome"))
        trial.set_user_attr("duplicate_of", stored.number)
        if stored.state == TrialState.COMPLETE:
            self.store.study.tell(trial, list(stored.values))
        elif stored.state == TrialState.PRUNED:
            trial.set_user_attr("partial_values", stored.user_attrs["partial_values"])
            self.store.study.tell(trial, state=TrialState.PRUNED)
        else:
            self.store.fail(trial, f"same genome as failed trial {stored.number}", retry=False)

    def _answer_without_training(self, trial, genome: Genome, duplicate: bool) -> None:
        """Optuna samplers may propose known or infeasible genomes: answer them for free."""
        key = genome.key()
        stored = self._finished.get(key)
        if duplicate and stored is not None:
            self._copy_trial(trial, stored)
        else:
            trial.set_user_attr("key", key)
            trial.set_user_attr("infeasible", True)
            self.store.fail(trial, f"infeasible: violates the constraints by {self._violation(genome):.3g}",
                            retry=False)

    def _warm_parent(self, genome: Genome, parents: list[int]) -> FrozenTrial | None:
        """The trained trial a child inherits from: the closer of its NSGA-II parents, else
        the nearest trained genome (fewest genes changed, then L1 distance between choice
        indices, then lower trial). None when even that one differs in more than a quarter of
        the genes: so distant a parent helps less than training from scratch."""
        trained = [t for t in self._finished.values()
                   if t.state == TrialState.COMPLETE and t.user_attrs.get("weights_artifact")]
        x = self.space.encode(genome)

        def distance(trial: FrozenTrial) -> tuple[int, int, int]:
            other = self.space.encode(Genome(self.space.name, tuple((g, trial.params[g]) for g in self.choices)))
            return int((x != other).sum()), int(np.abs(x - other).sum()), trial.number

        limit = max(2, len(self.choices) // 4)
        near = [t for t in trained if distance(t)[0] <= limit]
        own = [t for t in near if t.number in set(parents)]
        pool = own or near
        return min(pool, key=distance) if pool else None

    # -- constraints -------------------------------------------------------------------------

    def _violation(self, genome: Genome) -> float:
        if self._violation_of is None:
            return 0.0
        key = genome.key()
        if key not in self._violations:
            self._violations[key] = float(self._violation_of(genome))
        return self._violations[key]

    def _row_violation(self, x: np.ndarray) -> float:
        return self._violation(self.space.decode(x))

    def _check_feasible_exists(self) -> None:
        rng = np.random.default_rng(self.seed)
        for _ in range(20):
            x = repair_row(rng.integers(self.n_choices), self.n_choices, self._row_violation, rng)
            if self._row_violation(x) <= 0:
                return
        raise AutomlError("no architecture of the space satisfies the constraints (--max-flops/--max-params)")
