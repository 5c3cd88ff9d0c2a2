"""A warm start whose parent weights are gone trains from scratch and records why; the search
goes on instead of aborting (and every later --resume with it)."""

from __future__ import annotations

import shutil

import search_spaces
from automl.core.attrs import SCRATCH_REASON, WARM_START_FROM
from automl.core.evaluation import EvaluationContext
from automl.core.pareto import DEFAULT_OBJECTIVES
from automl.evaluate.cnn import CNNEvaluator
from automl.engine.search import Search
from automl.store.study import StudyStore
from automl.train.loop import TrainConfig
from tests.conftest import SMALLEST_MOBILE


def _evaluator(data) -> CNNEvaluator:
    return CNNEvaluator(search_spaces.get("mobile"), data, TrainConfig(epochs=0.2), seed=0, warm_epochs=0.1)


def test_a_parent_without_weights_means_scratch_training_with_the_reason(small_mnist, in_tmp):
    space = search_spaces.get("mobile")
    parent_genome = space.parse(SMALLEST_MOBILE)
    store = StudyStore.create("gone", None, DEFAULT_OBJECTIVES, {})
    evaluator = _evaluator(small_mnist)
    trial = store.start(parent_genome, space.genes(), {"key": parent_genome.key()})
    parent = evaluator(parent_genome)
    frozen = store.complete(trial, parent.values, parent.attrs, parent.weights)
    shutil.rmtree(store.artifacts_dir)  # the weights were deleted (by hand, or by a dashboard user)
    child = evaluator(parent_genome.replace(s2_width=24), EvaluationContext(1, [0], frozen, store.download_weights))
    assert child.attrs["warm_start"] is False and WARM_START_FROM not in child.attrs
    assert child.attrs["epochs"] == 0.2  # the full scratch budget, not the warm one
    assert child.attrs[SCRATCH_REASON].startswith(f"not warm-started from trial {frozen.number}: weights of trial")


def test_resume_after_the_weights_were_deleted_completes_the_search(small_mnist, in_tmp):
    space = search_spaces.get("mobile")
    evaluator = _evaluator(small_mnist)

    def search(budget: int) -> Search:
        store = StudyStore.open("gone") if budget > 2 else StudyStore.create("gone", None, DEFAULT_OBJECTIVES, {})
        return Search(space, evaluator, store, budget=budget, population=2, seed=0, preselect=1,
                      violation=evaluator.violation(3e6, None))

    search(2).run()
    shutil.rmtree(in_tmp / "studies" / "gone-artifacts")
    result = search(6).run()
    trained = [c for c in result.candidates if not c.reused]
    assert len(result.candidates) == 6 and not any(c.failed for c in result.candidates)
    reasons = [c.attrs.get(SCRATCH_REASON) for c in trained]
    assert any(r and "cannot be read" in r for r in reasons), reasons
