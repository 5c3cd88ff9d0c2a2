import numpy as np
import pytest
from optuna.trial import TrialState

from accelerators import parse
from accelerators.earlystop import PROCESS_BOARD, EarlyStop, MemoryBoard, survives
from automl.core.pareto import nsga_order
from automl.core.errors import AutomlError
from automl.train.loop import TrainConfig, train
from tests.test_end_to_end import SMALL, automl, load


def test_nsga_order_puts_the_first_front_first_with_its_extremes():
    points = np.array([[-0.9, 10.0], [-0.5, 1.0], [-0.7, 5.0], [-0.6, 6.0], [-0.4, 20.0]])
    order = nsga_order(points)
    assert set(order[:3]) == {0, 1, 2} and order[:2] in ([0, 1], [1, 0])  # extremes of front 0 first
    assert order[3:] == [3, 4]


def test_a_cheap_candidate_survives_expensive_accurate_peers():
    peers = [(0.95, 50e6), (0.94, 40e6), (0.93, 45e6), (0.92, 60e6), (0.91, 55e6)]
    assert survives((0.60, 1e6), peers, eta=3)  # it is on the first front, at its extreme
    assert not survives((0.90, 70e6), peers, eta=3)  # dominated by all of them


def test_the_stopped_candidate_reports_its_partial_training(small_mnist, tiny_model):
    board = MemoryBoard()
    for accuracy in (0.9, 0.92, 0.94, 0.96):
        board.record("0.330", accuracy, 1.0)  # peers as cheap as anything, and far better
    stop = EarlyStop(min_peers=4)
    stop.board = board
    PROCESS_BOARD.clear()
    original = stop.apply

    def apply(event, state):  # keep the prepared board (INIT would pick the process board)
        original(event, state)
        stop.board = board
    stop.apply = apply
    result = train(tiny_model(), small_mnist, TrainConfig(epochs=1), seed=0, accelerators=[stop])
    report = result.accelerators["earlystop"]
    assert report["pruned"] and report["stopped_at_epoch"] < 0.5
    assert result.epochs == pytest.approx(report["stopped_at_epoch"])
    assert report["steps_skipped"] > 0 and report["training_flops_saved"] > 0
    assert 0 <= report["rung_accuracy"]["0.330"] <= 1
    assert result.accuracy == report["rung_accuracy"]["0.330"]  # the rung measured the model it stopped


def test_without_enough_peers_nothing_is_stopped(small_mnist, tiny_model):
    PROCESS_BOARD.clear()
    result = train(tiny_model(), small_mnist, TrainConfig(epochs=1), seed=0, accelerators=[EarlyStop()])
    assert not result.accelerators["earlystop"]["pruned"] and result.epochs == 1.0
    assert PROCESS_BOARD.peers("0.330")  # it left its record for the next candidates


def test_pruned_trials_are_in_the_study_with_their_partial_values(tmp_path):
    automl("search", "--study", "es", "--budget", "6", "--population", "6",
           "--accelerate", "earlystop:min_peers=1,eta=2", *SMALL, cwd=tmp_path)
    study = load(tmp_path, "es")
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert pruned and complete and len(pruned) + len(complete) == 6
    for trial in pruned:
        partial = trial.user_attrs["partial_values"]
        assert 0 <= partial["accuracy"] <= 1 and partial["flops"] > 0
        assert trial.user_attrs["accelerator_reports"]["earlystop"]["stopped_at_epoch"] < 1
    for trial in complete + pruned:
        assert "0.330" in trial.user_attrs["rung_accuracy"]
    # a resumed search reuses pruned trials instead of training them again
    automl("search", "--study", "es", "--budget", "6", "--population", "6", "--resume",
           "--accelerate", "earlystop:min_peers=1,eta=2", *SMALL, cwd=tmp_path)
    assert len(load(tmp_path, "es").trials) == 6


@pytest.mark.parametrize("bad", ["earlystop:eta=1", "earlystop:first=1", "earlystop:min_peers=0"])
def test_bad_options_are_user_errors(bad):
    with pytest.raises(AutomlError):
        parse(bad)
