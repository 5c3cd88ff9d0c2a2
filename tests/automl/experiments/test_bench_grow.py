"""``automl bench grow``: every method scored the same way after each task, and the summary
the README's targets are read from."""

from __future__ import annotations

import json

import pytest
import torch

from automl.experiments.grow import METHODS, bench_grow
from automl.grow.grower import GrowSettings
from tests.conftest import untrained_root


def run_bench(data, tasks, epochs: float):
    source = untrained_root(data)
    settings = GrowSettings(root_epochs=2 * epochs, epochs=epochs, leaf_budget=2,
                            leaf_epochs=epochs, leaf_warm_epochs=epochs / 2)
    return bench_grow(tasks, data, source, settings, epochs, 2 * epochs, torch.device("cpu"))


def check(result, tasks):
    assert [row["task"] for row in result["tasks"]] == list(range(1, len(tasks) + 1))
    for row in result["tasks"][1:]:
        assert set(row["methods"]) == set(METHODS)
        for method, m in row["methods"].items():
            assert 0 <= m["accuracy_all"] <= 1 and 0 <= m["accuracy_new"] <= 1 and 0 <= m["accuracy_old"] <= 1
            assert m["effort"] > 0 and m["seconds"] > 0 and m["mflops"] > 0
            assert m["seconds"] >= m["training_seconds"] > 0  # wall-clock covers the trainings and more
    summary = result["summary"]
    fine = summary["finetune-all"]
    assert fine["effort_vs_finetune_all"] == pytest.approx(1.0)
    tree = summary["tree"]
    assert tree["effort_vs_finetune_all"] == pytest.approx(tree["effort"] / fine["effort"])
    assert set(summary["targets"]) == {"effort_at_most_half", "seconds_at_most_half",
                                       "final_accuracy_within_2_points", "old_classes_within_2_points"}
    json.dumps(result)  # what --json and --out write


def test_quick_two_task_stream(small_mnist):
    tasks = [[0, 1], [2, 3]]  # the small slice holds classes 0-3 (the embedded file is sorted by class)
    result = run_bench(small_mnist, tasks, epochs=0.5)
    check(result, tasks)
    # a network fine-tuned on the new classes only forgets the old ones (at most chance is left)
    new_only = result["tasks"][1]["methods"]["finetune-new"]
    assert new_only["accuracy_old"] <= result["tasks"][0]["methods"]["finetune-new"]["accuracy_all"]


@pytest.mark.slow
def test_full_stream_of_the_embedded_data(mnist5k):
    tasks = [[0, 1, 2, 3, 4], [5, 6], [7, 8, 9]]
    result = run_bench(mnist5k, tasks, epochs=1.0)
    check(result, tasks)
    tree = result["summary"]["tree"]
    assert tree["effort_vs_finetune_all"] < 1  # the tree updates fewer weights than fine-tuning all of them
    assert result["summary"]["finetune-new"]["worst_old_class_drop"] > 0.3  # forgetting


def _bench_command(capsys, *args):
    import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bench", "grow", "--device", "cpu", "--json", *args])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.err


def test_the_command_trains_branches_for_branch_epochs_and_baselines_for_epochs(monkeypatch, capsys):
    import automl.experiments.grow as experiment

    seen = {}

    def fake(stream, data, source, settings, epochs, scratch_epochs, *rest):
        seen.update(branch=settings.epochs, baseline=epochs)
        return {"tasks": [], "summary": {}, "tree": {}}

    monkeypatch.setattr(experiment, "bench_grow", fake)
    assert _bench_command(capsys, "--epochs", "1", "--branch-epochs", "2")[0] in (0, None)
    assert seen == {"branch": 2.0, "baseline": 1.0}
    _bench_command(capsys, "--epochs", "1.5")
    assert seen == {"branch": 1.5, "baseline": 1.5}  # branches follow --epochs unless told otherwise
    code, err = _bench_command(capsys, "--branch-epochs", "0")
    assert code == 2 and "--branch-epochs" in err and err.count("\n") == 1
