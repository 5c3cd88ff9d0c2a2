"""One batch trained by an executor's workers, recorded by the search's own process.

The search process claims each candidate (a RUNNING trial), beats its heartbeat while a
worker trains it, and records the result when it comes back - in the order results arrive,
not the order of the batch. Workers only train: the study has the same writers it has
without an executor, so claims, resumes and peers sharing the study work unchanged. A
worker that dies mid-candidate is the executor's business (Ray runs the task again); the
trial stays RUNNING and alive meanwhile, so the genome is trained once more and recorded once.
If this process stops (Ctrl-C, a bug, a lost node), its in-flight trials are FAILED as
retryable and their tasks cancelled, so a resume trains them again.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from automl.engine.candidates import Candidate, Proposal

if TYPE_CHECKING:
    from automl.engine.search import Search
    from automl.store.heartbeat import Heartbeat


@dataclass
class _Running:
    index: int
    proposal: Proposal
    trial: Any
    parents: list[int]
    heartbeat: Heartbeat


def evaluate_in_parallel(search: Search, batch: Sequence[Proposal]) -> list[Candidate]:
    """Every proposal's result, in order (as :meth:`Search.evaluate_batch`), up to the
    executor's number of workers trained at once."""
    executor = search.executor
    results: dict[int, Candidate] = {}
    running: dict[Hashable, _Running] = {}
    announced = False
    try:
        while len(results) < len(batch):
            progressed = _launch(search, batch, results, running)
            if running:
                for handle in executor.wait(list(running), timeout=search.poll_seconds):
                    done = running.pop(handle)
                    results[done.index] = _finish(search, done, handle)
                    progressed = True
            elif not progressed and len(results) < len(batch):
                if not announced:
                    search.progress.message(f"waiting for {len(batch) - len(results)} candidate(s) "
                                            "other processes are evaluating")
                    announced = True
                search.idle()
    except BaseException as error:
        for handle, left in running.items():
            executor.cancel(handle)
            left.heartbeat.__exit__(None, None, None)
            search.abandon(left.trial, error)
        raise
    return [results[i] for i in range(len(batch))]


def _launch(search: Search, batch: Sequence[Proposal], results: dict[int, Candidate],
            running: dict[Hashable, _Running]) -> bool:
    """Read back stored results and send unclaimed genomes to free workers; whether anything
    was resolved or started. The claims of one pass are settled together (one read)."""
    busy = {r.index for r in running.values()}
    pending = [i for i in range(len(batch)) if i not in results and i not in busy]
    if not pending or len(running) >= search.executor.workers:
        return False  # nothing left to start, or every worker busy: peers' results can wait
    peers = search.refresh_finished()  # once per pass: peers record results too
    progressed, chosen = False, []
    for i in pending:
        reused = search.stored_result(batch[i])
        if reused is not None:
            results[i], progressed = reused, True
        elif len(running) + len(chosen) < search.executor.workers and not search.held_elsewhere(batch[i], peers):
            chosen.append(i)
    if not chosen:
        return progressed
    claimed = list(zip(chosen, search.claim_all([batch[i] for i in chosen])))
    for n, (i, claim) in enumerate(claimed):
        if claim is None:
            continue
        trial, parents = claim
        try:
            handle, heartbeat = _submit(search, batch[i], trial, parents)
        except BaseException as error:  # the claims opened after this one are abandoned too
            for _, later in claimed[n + 1:]:
                if later is not None:
                    search.abandon(later[0], error)
            raise
        running[handle] = _Running(i, batch[i], trial, parents, heartbeat)
    return True


def _submit(search: Search, proposal: Proposal, trial, parents: list[int]) -> tuple[Hashable, Heartbeat]:
    """Send one claimed candidate to a worker; its heartbeat beats from here on."""
    heartbeat = search.store.heartbeat(trial).__enter__()
    try:
        context = search.context(proposal.genome, trial, proposal.generation, parents, portable=True)
        search.progress.candidate_started(search.label(proposal.genome))
        return search.executor.submit(proposal.genome, context), heartbeat
    except BaseException as error:
        heartbeat.__exit__(None, None, None)
        search.abandon(trial, error)
        raise


def _finish(search: Search, done: _Running, handle: Hashable) -> Candidate:
    """Record what a worker sent back (the heartbeat stops once the trial is finished)."""
    genome = done.proposal.genome
    try:
        outcome = search.executor.outcome(handle)
    except BaseException as error:
        done.heartbeat.__exit__(None, None, None)
        search.abandon(done.trial, error)
        raise
    try:
        if outcome.evaluation is None:
            return search.record_failure(genome, done.trial, done.proposal.generation, done.parents,
                                         outcome.failure or "failed")
        return search.record(genome, done.trial, done.proposal.generation, done.parents, outcome.evaluation,
                             outcome.seconds, {"host": outcome.host})
    finally:
        done.heartbeat.__exit__(None, None, None)
