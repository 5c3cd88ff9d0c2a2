"""The engine: ask a strategy for a batch, evaluate it, record every evaluation as a trial, tell.

Strategies (:mod:`automl.engine.strategy`) only propose and learn; this loop owns the study.
For a generational strategy (nsga2, random) each batch is decided once and stored in the
study with the strategy's state (:meth:`StudyStore.save_engine_state`); a process that joins
or resumes reads that state and continues - it evaluates the batch members nobody holds,
waits for those that live peers are training, and retrains those whose process is gone
(heartbeats, :mod:`automl.store.heartbeat`). Batches are deterministic given the state, so
processes that reach the next generation together propose the same batch. Optuna's samplers
keep their own state in the study and are asked one genome at a time.

:meth:`Search.evaluate_batch` is the one step that trains. With an executor
(:mod:`automl.engine.executor`, e.g. Ray workers) it trains the batch's candidates in parallel
(:mod:`automl.engine.parallel`); claims, heartbeats and results stay in this process.
"""

from __future__ import annotations

import math
import os
import secrets
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from optuna.trial import FrozenTrial, TrialState

from automl.core import attrs
from automl.core.errors import AutomlError, CandidateFailed
from automl.core.evaluation import Evaluation, EvaluationContext
from automl.core.genome import Genome
from automl.core.progress import SilentProgress
from automl.engine.candidates import Candidate, Proposal, SearchResult, candidate_seed, default_population
from automl.engine.executor import Executor, as_evaluation
from automl.engine.nsga2.recipe import get_recipe
from automl.engine.nsga2.repair import repair_row
from automl.engine.nsga2.strategy import DEFAULT_PRESELECT
from automl.engine.recording import candidate_from_trial, genome_of, warm_parent
from automl.engine.strategy import STRATEGIES, make_strategy
from automl.store import claims
from automl.store.storage import absolute_url
from automl.store.study import StudyStore
from search_spaces.base import SearchSpace

# Names other rooms import from here (evaluate: candidate_seed; experiments: Search, repair_row).
__all__ = ["DEFAULT_PRESELECT", "STRATEGIES", "Candidate", "Search", "SearchResult", "candidate_seed", "repair_row"]

MAX_WASTED_PROPOSALS = 20  # per budget unit, for samplers that keep proposing known genomes

Evaluate = Callable[[Genome], "Evaluation | Mapping[str, float]"]


TIME_SPENT = "not evaluated: the time budget was spent"  # why a trial asked too late is FAILED


class _TimeUp(Exception):
    """Raised before a new evaluation once the search's wall-clock budget is spent."""


class Search:
    """Runs one strategy over a space, recording every evaluation in a study."""

    def __init__(self, space: SearchSpace, evaluate: Evaluate, store: StudyStore, *,
                 budget: int, strategy: str = "nsga2", population: int | None = None, seed: int = 0,
                 violation: Callable[[Genome], float] | None = None,
                 known: Callable[[Genome], Mapping[str, float]] | None = None,
                 preselect: int = DEFAULT_PRESELECT, recipe: str = "nsga2", warm_start: bool = True,
                 time_budget: float | None = None, progress: SilentProgress | None = None,
                 label: Callable[[Genome], str] | None = None, poll_seconds: float = 1.0,
                 executor: Executor | None = None) -> None:
        if budget < 1:
            raise AutomlError(f"budget must be at least 1 evaluation, got {budget}")
        if preselect < 1:
            raise AutomlError(f"preselect must be at least 1, got {preselect}")
        chosen = get_recipe(recipe)
        if chosen.name != "nsga2" and strategy != "nsga2":
            raise AutomlError(f"recipe {recipe!r} is a recipe of the nsga2 strategy, not of {strategy!r}")
        self.population = chosen.population or population or default_population(budget)
        if self.population < 2:
            raise AutomlError(f"population must be at least 2, got {self.population}")
        self.space, self.evaluate, self.store = space, evaluate, store
        self.objectives = store.objectives
        self.budget, self.seed, self.warm_start = budget, seed, warm_start
        self.time_budget, self.poll_seconds = time_budget, poll_seconds
        self.executor = executor
        self.progress = progress or SilentProgress()
        self.label = label or space.format
        self.choices = space.genes()
        self._violation_of = violation
        self._violations: dict[str, float] = {}
        options = dict(seed=seed, population=self.population, known=known,
                       violation=self._violation if violation is not None else None)
        if strategy == "nsga2":
            options.update(recipe=chosen, preselect=preselect)
        self.strategy = make_strategy(strategy, space, self.objectives, **options)
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.candidates: list[Candidate] = []
        self._by_key: dict[str, Candidate] = {}
        self._finished: dict[str, FrozenTrial] = {}
        self._started = 0.0

    # -- public -----------------------------------------------------------------------------

    def run(self) -> SearchResult:
        if self._violation_of is not None:
            self._check_feasible()
        self._note_stale(self.store.fail_stale())
        self._finished = self.store.finished_by_key()
        self.strategy.attach(self.store)
        if self.executor is not None:
            self.executor.open(self.evaluate)
            self.progress.message(f"training {self.executor.describe()}")
        self.progress.search_started(self.budget, 0)
        self._started = time.perf_counter()
        try:
            if self.strategy.generational:
                self._run_generations()
            else:
                self._run_sequential()
        except _TimeUp:
            pass
        finally:
            self.progress.search_finished()
            if self.executor is not None:
                self.executor.close()
        return self.result()

    def result(self) -> SearchResult:
        return SearchResult.of(self.candidates, self.objectives, self.store)

    def evaluate_batch(self, batch: Sequence[Proposal]) -> list[Candidate]:
        """Every proposal's result, in order: stored ones read back, the rest trained here
        (by the executor's workers when there is one), except those a live peer is training -
        waited for, and retrained here if its process is gone."""
        if self.executor is not None:
            from automl.engine.parallel import evaluate_in_parallel

            return evaluate_in_parallel(self, batch)
        results: dict[int, Candidate] = {}
        announced = False
        while len(results) < len(batch):
            progressed = False
            for i, proposal in enumerate(batch):
                if i not in results:
                    outcome = self._evaluate_one(proposal)
                    if outcome is not None:
                        results[i], progressed = outcome, True
            if len(results) < len(batch) and not progressed:
                if not announced:
                    self.progress.message(f"waiting for {len(batch) - len(results)} candidate(s) "
                                          "other processes are evaluating")
                    announced = True
                self.idle()
        return [results[i] for i in range(len(batch))]

    def idle(self) -> None:
        """Nothing to do but wait for peers: check the clock, sleep, fail their dead trials."""
        self._check_time()
        time.sleep(self.poll_seconds)
        self._note_stale(self.store.fail_stale())

    # -- loops ------------------------------------------------------------------------------

    def _run_generations(self) -> None:
        stored = self._stored_candidates()
        state = self.store.engine_state()
        if state is None or state.get("strategy") != self.strategy.name:
            self.strategy.adopt(stored)  # a new study, or one written before the state was stored
            if stored:
                self.strategy.generation = max(c.generation for c in stored) + 1
            asked, batch = len(stored), None
        else:
            asked, batch = self._load(state)
        while True:
            if batch is None:
                n = min(self.population, self.budget - asked)
                batch = self.strategy.ask(n) if n > 0 else []
                if not batch:
                    return
                asked += len(batch)
                self._save(asked, batch)
            self.progress.generation_started(batch[0].generation, len(batch))
            self.strategy.tell(batch, self.evaluate_batch(batch))
            batch = None
            state = self.store.engine_state() if self.store.shared else None
            ahead = state and state.get("strategy") == self.strategy.name
            if ahead and state["generation"] >= self.strategy.generation:
                asked, batch = self._load(state)  # a peer asked for the next batch already

    def _run_sequential(self) -> None:
        self.strategy.adopt(self._stored_candidates()[:self.budget])
        wasted, shown = 0, None
        while len(self.candidates) < self.budget and wasted < MAX_WASTED_PROPOSALS * self.budget:
            self._check_time()  # proposals answered without training take time too
            batch = self._ask_sequential()
            if not batch:
                wasted += 1
                continue
            starts = (len(self.candidates) % self.population == 0 if self.executor is None
                      else batch[0].generation != shown)
            if starts:
                shown = batch[0].generation
                self.progress.generation_started(batch[0].generation,
                                                 min(self.population, self.budget - len(self.candidates)))
            self.strategy.tell(batch, self.evaluate_batch(batch))

    def _ask_sequential(self) -> list[Proposal]:
        """One genome from an Optuna sampler; with an executor, one per worker (asked together,
        told together: the sampler sees none of them finished when it proposes the next).
        A proposal answered without training (known or infeasible) leaves the batch shorter."""
        if self.executor is None:
            return self.strategy.ask(1)
        batch: list[Proposal] = []
        for _ in range(min(self.executor.workers, self.budget - len(self.candidates))):
            batch += self.strategy.ask(1)
        return batch

    def _save(self, asked: int, batch: Sequence[Proposal]) -> None:
        self.store.save_engine_state({
            "strategy": self.strategy.name, "generation": batch[0].generation, "asked": asked,
            "batch": [{"x": self.space.encode(p.genome).tolist(), "parents": p.parents} for p in batch],
            "state": self.strategy.state_dict()})

    def _load(self, state: Mapping) -> tuple[int, list[Proposal]]:
        self.strategy.load_state_dict(state["state"])
        batch = [Proposal(self.space.decode(p["x"]), list(p["parents"]), int(state["generation"]))
                 for p in state["batch"]]
        return int(state["asked"]), batch

    def _stored_candidates(self) -> list[Candidate]:
        """What the study holds already, as candidates (reused), in trial order."""
        for trial in sorted(self._finished.values(), key=lambda t: t.number):
            genome = genome_of(self.space, trial)
            if genome is not None:
                self._add(candidate_from_trial(genome, trial, self.objectives,
                                               int(trial.user_attrs.get(attrs.GENERATION, 0))))
        return list(self.candidates)

    # -- one candidate ----------------------------------------------------------------------

    def _evaluate_one(self, proposal: Proposal) -> Candidate | None:
        """The proposal's result, or None while another process holds it."""
        running = self.refresh_finished()  # peers record results too
        stored = self.stored_result(proposal)
        if stored is not None:
            return stored
        if self.held_elsewhere(proposal, running):
            return None
        return self._claim_and_train(proposal)

    def stored_result(self, proposal: Proposal) -> Candidate | None:
        """The proposal's result when the study holds one already (as last read)."""
        stored = self._finished.get(proposal.genome.key())
        return self._reuse(proposal, stored) if stored is not None else None

    def refresh_finished(self) -> list[FrozenTrial]:
        """Read a shared study once: what it holds finished, and its RUNNING trials (returned)."""
        if not self.store.shared:
            return []
        trials = self.store.trials()
        self._finished = self.store.finished_by_key(trials)
        return [t for t in trials if t.state == TrialState.RUNNING]

    def held_elsewhere(self, proposal: Proposal, running: list[FrozenTrial] | None = None) -> bool:
        """Whether a live peer process is training the proposal's genome (``running``: the
        study's RUNNING trials, when the caller read them already)."""
        if not self.store.shared or proposal.trial is not None:
            return False
        running = self.store.trials((TrialState.RUNNING,)) if running is None else running
        return claims.running_elsewhere(running, proposal.genome.key(), self.worker) is not None

    def _reuse(self, proposal: Proposal, stored: FrozenTrial) -> Candidate:
        if proposal.trial is not None:  # an Optuna sampler proposed a stored genome
            self.store.answer_duplicate(proposal.trial, stored)
            proposal.trial = None
        known = self._by_key.get(stored.user_attrs[attrs.KEY])
        if known is not None:
            return known
        candidate = candidate_from_trial(proposal.genome, stored, self.objectives, proposal.generation)
        candidate.elapsed = time.perf_counter() - self._started
        self.progress.candidate_finished(self.label(proposal.genome), candidate.values, {"reused": True})
        return self._add(candidate)

    def _claim_and_train(self, proposal: Proposal) -> Candidate | None:
        claimed = self.claim(proposal)
        if claimed is None:
            return None
        trial, parents = claimed
        with self.store.heartbeat(trial):
            return self._train(proposal.genome, trial, proposal.generation, parents)

    def claim(self, proposal: Proposal) -> tuple[Any, list[int]] | None:
        """Open the proposal's RUNNING trial - its claim on the genome - and the parents' trial
        numbers; None when another process claimed the genome first."""
        return self.claim_all([proposal])[0]

    def claim_all(self, proposals: Sequence[Proposal]) -> list[tuple[Any, list[int]] | None]:
        """:meth:`claim` for several proposals: every trial is opened first, then the study is
        read once to settle them all (one read instead of one per claim)."""
        if self._time_is_up():
            for proposal in proposals[1:]:
                if proposal.trial is not None:
                    self.store.fail(proposal.trial, TIME_SPENT, retry=True)
            self._check_time(proposals[0].trial)
        opened = []
        for proposal in proposals:
            genome, key = proposal.genome, proposal.genome.key()
            parents = [self._finished[k].number for k in proposal.parents if k in self._finished]
            extra = {attrs.KEY: key, attrs.WORKER: self.worker, attrs.GENOME: self.label(genome),
                     attrs.GENERATION: proposal.generation, attrs.PARENTS: parents,
                     attrs.STRATEGY: self.strategy.name}
            trial = proposal.trial
            if trial is None:
                trial = self.store.start(genome, self.choices, extra)
            else:
                self.store.set_attrs(trial, extra)
            proposal.trial = None
            opened.append((trial, parents, key))
        winners = (claims.winners(self.store, [(t.number, k) for t, _, k in opened]) if self.store.shared
                   else [None] * len(opened))
        claimed: list[tuple[Any, list[int]] | None] = []
        for (trial, parents, _), winner in zip(opened, winners):
            if winner is not None:  # another process claimed the genome first: leave it to it
                self.store.fail(trial, f"trial {winner} evaluates this genome", {attrs.DUPLICATE_OF: winner})
                claimed.append(None)
            else:
                claimed.append((trial, parents))
        return claimed

    def context(self, genome: Genome, trial, generation: int, parents: list[int],
                portable: bool = False) -> EvaluationContext | None:
        """What the evaluator learns besides the genome (None when it takes no context).
        ``portable``: for a worker in another process - no open study, the weights read from
        the artifact folder, the study's address instead."""
        if not getattr(self.evaluate, "accepts_context", False):
            return None
        warm = warm_parent(self.space, genome, parents, list(self._finished.values())) if self.warm_start else None
        if portable:
            return EvaluationContext(generation, parents, warm, self.store.weights_reader(), self.store.cache_dir,
                                     storage=absolute_url(self.store.url) if self.store.shared else None,
                                     study_name=self.store.name, trial_number=trial.number)
        return EvaluationContext(generation, parents, warm, self.store.download_weights, self.store.cache_dir,
                                 trial=trial, study=self.store.study)

    def _train(self, genome: Genome, trial, generation: int, parents: list[int]) -> Candidate:
        context = self.context(genome, trial, generation, parents)
        self.progress.candidate_started(self.label(genome))
        numpy_state = np.random.get_state()  # training must not move the search's randomness
        started = time.perf_counter()
        try:
            evaluation = as_evaluation(self.evaluate(genome) if context is None else self.evaluate(genome, context))
        except CandidateFailed as failure:
            return self.record_failure(genome, trial, generation, parents, str(failure))
        except BaseException as error:
            self.abandon(trial, error)
            raise
        finally:
            np.random.set_state(numpy_state)
        return self.record(genome, trial, generation, parents, evaluation, time.perf_counter() - started)

    def record(self, genome: Genome, trial, generation: int, parents: list[int], evaluation: Evaluation,
               seconds: float, info: Mapping[str, Any] | None = None) -> Candidate:
        """Store a trained candidate's values, attributes and weights (COMPLETE or PRUNED)."""
        try:
            values = self._checked_values(evaluation.values)
        except CandidateFailed as failure:
            return self.record_failure(genome, trial, generation, parents, str(failure))
        except BaseException as error:
            self.abandon(trial, error)
            raise
        extra = dict(evaluation.attrs)
        extra.setdefault(attrs.SECONDS, seconds)
        record = self.store.prune if evaluation.pruned else self.store.complete
        self._finished[genome.key()] = record(trial, values, extra, evaluation.weights)
        candidate = Candidate(genome, values, trial.number, generation, parents, attrs=extra,
                              elapsed=time.perf_counter() - self._started, pruned=evaluation.pruned)
        shown = {"trial": trial.number, "seconds": extra[attrs.SECONDS], **(info or {})}
        if evaluation.pruned:
            shown["pruned"] = True
        self.progress.candidate_finished(self.label(genome), values, shown)
        return self._add(candidate)

    def record_failure(self, genome: Genome, trial, generation: int, parents: list[int], reason: str) -> Candidate:
        """A candidate that failed on its own (diverged, out of memory): FAILED for good."""
        self._finished[genome.key()] = self.store.fail(trial, reason, retry=False)
        candidate = Candidate(genome, None, trial.number, generation, parents, failed=reason,
                              elapsed=time.perf_counter() - self._started)
        self.progress.candidate_finished(self.label(genome), None, {"reason": reason, "trial": trial.number})
        return self._add(candidate)

    def abandon(self, trial, error: BaseException) -> None:
        """Interrupted, or a bug: FAIL the trial as retryable, so the study stays consistent
        and a resumed search trains the genome again."""
        reason = "interrupted" if isinstance(error, KeyboardInterrupt) else f"{type(error).__name__}: {error}"
        self.store.fail(trial, reason, retry=True)

    # -- helpers ----------------------------------------------------------------------------

    def _add(self, candidate: Candidate) -> Candidate:
        key = candidate.genome.key()
        if key not in self._by_key:
            self._by_key[key] = candidate
            self.candidates.append(candidate)
        return self._by_key[key]

    def _check_time(self, trial=None) -> None:
        """Raise _TimeUp once the wall-clock budget is spent (a trial already asked is failed,
        retryable, so a resumed search evaluates its genome)."""
        if self._time_is_up():
            if trial is not None:
                self.store.fail(trial, TIME_SPENT, retry=True)
            raise _TimeUp

    def _time_is_up(self) -> bool:
        return self.time_budget is not None and time.perf_counter() - self._started >= self.time_budget

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

    def _note_stale(self, numbers: list[int]) -> None:
        if numbers:
            self.progress.message(f"trial(s) {', '.join(map(str, numbers))} lost their process (no heartbeat): "
                                  "FAILED, their genomes are trained again")

    def _violation(self, genome: Genome) -> float:
        key = genome.key()
        if key not in self._violations:
            self._violations[key] = float(self._violation_of(genome))
        return self._violations[key]

    def _check_feasible(self) -> None:
        """The smallest genome decides at once whether anything meets the constraints."""
        smallest = self.space.smallest()
        violation = self._violation(smallest)
        if violation > 0:
            raise AutomlError(f"no architecture of the space satisfies the constraints: even the smallest, "
                              f"{self.label(smallest)}, violates them by {violation:.3g}")
