"""The divergence rule: NaN at once; a loss far above its start for several checks in a row."""

import math

import pytest
import torch

from automl.core.errors import CandidateFailed
from automl.train.divergence import CHECK_EVERY, FACTOR, PATIENCE, DivergenceGuard


def _run(losses, num_classes=10):
    """Feed per-step losses as the loop does (one epoch); returns the guard."""
    guard = DivergenceGuard(num_classes)
    total = torch.zeros(())
    for step, loss in enumerate(losses, start=1):
        loss = torch.tensor(float(loss))
        total += loss
        guard.after_step(loss, total, step, epoch=0)
    guard.check(total, len(losses), epoch=0)
    return guard


def test_falling_and_noisy_losses_pass():
    _run([2.3 - 0.01 * i + (0.5 if i % 7 == 0 else 0) for i in range(200)])


def test_a_non_finite_loss_fails_at_the_first_check():
    with pytest.raises(CandidateFailed, match="^diverged: the loss is nan in epoch 1 by step 16"):
        _run([2.3] * 5 + [math.nan] + [2.3] * 20)


def test_a_loss_far_above_its_start_for_several_checks_fails():
    high = 2.3 * FACTOR * 2
    with pytest.raises(CandidateFailed, match=f"^diverged: mean loss .* at {PATIENCE} checks in a row"):
        _run([2.3] + [high] * (CHECK_EVERY * PATIENCE))


def test_a_spike_shorter_than_the_patience_passes():
    high = 2.3 * FACTOR * 2
    spike = [high] * (CHECK_EVERY * (PATIENCE - 1))
    _run([2.3] * CHECK_EVERY + spike + [2.0] * CHECK_EVERY + spike + [1.0] * CHECK_EVERY)


def test_a_warm_start_that_starts_low_is_measured_against_chance_loss():
    # starting at 0.1, 10x would be 1.0: a rise to 2.0 (below 10 x ln 10 = 23) is not divergence
    _run([0.1] + [2.0] * (CHECK_EVERY * (PATIENCE + 2)))
    with pytest.raises(CandidateFailed, match="diverged"):
        _run([0.1] + [30.0] * (CHECK_EVERY * PATIENCE))


def test_a_search_records_a_diverged_candidate_as_a_failed_trial(small_mnist):
    """lr=1e6 on the embedded data: the trial FAILS with reason "diverged" instead of
    completing at chance accuracy and becoming a Pareto point and a warm-start parent."""
    import search_spaces
    from automl.core.pareto import DEFAULT_OBJECTIVES
    from automl.evaluate.cnn import CNNEvaluator
    from automl.engine.search import Search
    from automl.store.study import StudyStore
    from automl.train.config import TrainConfig

    space = search_spaces.get("mobile")
    evaluator = CNNEvaluator(space, small_mnist, TrainConfig(epochs=2, lr=1e6), seed=0)
    store = StudyStore.create("diverge", "memory", DEFAULT_OBJECTIVES, {})
    result = Search(space, evaluator, store, budget=1, seed=0, violation=evaluator.violation(2.5e6, None)).run()
    trial = result.study.trials[0]
    assert trial.state.name == "FAIL" and trial.user_attrs["fail_reason"].startswith("diverged")
    assert result.candidates[0].failed and not result.front
