"""The CNN evaluator: scratch training, Net2Net warm starts from stored weights, constraints."""

import torch

import search_spaces
from automl.core.evaluation import EvaluationContext
from automl.engine.search import Search
from automl.evaluate.cnn import CNNEvaluator
from automl.core.pareto import DEFAULT_OBJECTIVES
from automl.store.study import StudyStore
from automl.train.loop import TrainConfig
from tests.conftest import SMALLEST_MOBILE


def _evaluator(data, warm_epochs=0.3):
    return CNNEvaluator(search_spaces.get("mobile"), data, TrainConfig(epochs=1), seed=0, warm_epochs=warm_epochs)


def test_scratch_evaluation_reports_objectives_and_facts(small_mnist):
    space = search_spaces.get("mobile")
    evaluation = _evaluator(small_mnist)(space.parse(SMALLEST_MOBILE))
    assert set(evaluation.values) == {"accuracy", "flops"}
    assert evaluation.attrs["warm_start"] is False and evaluation.attrs["epochs"] == 1
    assert evaluation.values["flops"] == evaluation.attrs["flops"] > 0 and evaluation.weights


def test_warm_start_inherits_stored_weights_and_trains_less(small_mnist, in_tmp):
    space = search_spaces.get("mobile")
    parent_genome = space.parse(SMALLEST_MOBILE)
    child_genome = parent_genome.replace(s2_width=24, s3_kernel=5)
    store = StudyStore.create("w", None, DEFAULT_OBJECTIVES, {})
    evaluator = _evaluator(small_mnist)
    parent_eval = evaluator(parent_genome)
    trial = store.start(parent_genome, space.genes(), {"key": parent_genome.key()})
    parent_trial = store.complete(trial, parent_eval.values, parent_eval.attrs, parent_eval.weights)
    child_eval = evaluator(child_genome, EvaluationContext(1, [0], parent_trial, store.download_weights))
    assert child_eval.attrs["warm_start"] and child_eval.attrs["warm_start_from"] == 0
    assert child_eval.attrs["transforms"] == ["s2 width widen 16->24", "s3 kernel 3->5"]
    assert abs(child_eval.attrs["epochs"] - 0.3) < 0.05
    # warm starts off: the same child trains from scratch for the full budget
    assert _evaluator(small_mnist, None)(child_genome, EvaluationContext(1, [0], parent_trial, store.download_weights)).attrs["epochs"] == 1


def test_engine_warm_starts_children_from_near_trained_parents(small_mnist, in_tmp):
    space = search_spaces.get("mobile")
    store = StudyStore.create("e", None, DEFAULT_OBJECTIVES, {})
    evaluator = _evaluator(small_mnist)
    result = Search(space, evaluator, store, budget=10, population=4, seed=0,
                    violation=evaluator.violation(2.5e6, None)).run()
    warm = [c for c in result.candidates if c.attrs.get("warm_start")]
    for c in warm:
        parent = next(p for p in result.candidates if p.trial == c.attrs["warm_start_from"])
        assert space.distance(parent.genome, c.genome) <= len(space.genes()) // 4
    assert all(not c.attrs.get("warm_start") for c in result.candidates[:1])


def test_constraint_violation_is_measured_on_built_models(small_mnist):
    space = search_spaces.get("mobile")
    evaluator = _evaluator(small_mnist)
    genome = space.parse(SMALLEST_MOBILE)
    flops, params = evaluator.cost(genome)
    over = evaluator.violation(flops / 2, None)
    assert abs(over(genome) - 1.0) < 1e-9 and evaluator.violation(flops, params)(genome) == 0
    assert evaluator.violation(None, None) is None
    assert torch.is_tensor(next(iter(evaluator(genome).weights.values())))


def test_a_reshaped_model_is_recorded_as_a_discovered_architecture_not_a_parent(small_mnist, monkeypatch):
    """PruneTrain-like: the model ends smaller than its genome, so its weights are not offered
    for Net2Net and the architecture it found is recorded with its own accuracy and FLOPs."""
    import accelerators
    from automl.train.events import Event

    class DropHeadChannels:
        name = "shrink"

        def match(self, event, state):
            return event is Event.FIT_END

        def apply(self, event, state):
            head = state.model.classifier
            state.model.classifier = torch.nn.Linear(head.in_features, head.out_features + 1)

        def spec(self):
            return "shrink"

        def report(self):
            return {"architecture_string": "smaller", "flops_before": 2e6, "flops_after": 1e6,
                    "params_after": 10, "training_flops_saved": 0.0}

    monkeypatch.setattr(accelerators, "parse", lambda text: [DropHeadChannels()] if text else [])
    space = search_spaces.get("mobile")
    evaluator = CNNEvaluator(space, small_mnist, TrainConfig(epochs=0.2), seed=0, accelerate="shrink")
    evaluation = evaluator(space.parse(SMALLEST_MOBILE))
    found = evaluation.attrs["discovered_architecture"]
    assert found["by"] == "shrink" and found["flops"] == 1e6 and found["accuracy"] == evaluation.values["accuracy"]
    assert evaluation.weights is None and "not stored" in evaluation.attrs["weights"]
