"""Every ``automl bench ...`` takes --out FILE and writes its result there with provenance."""

import json
import sys

import pytest

BENCHES = {  # command -> (module, function) that computes its result
    "trainer": ("automl.experiments.trainer", "bench_trainer"),
    "engine": ("automl.experiments.engine", "bench_engine"),
    "warmstart": ("automl.experiments.warmstart", "bench_warmstart"),
    "search": ("automl.experiments.search", "bench_search"),
    "accelerators": ("automl.experiments.accelerators", "bench_accelerators"),
    "scale": ("automl.experiments.scale", "bench_scale"),
    "prunetrain": ("automl.experiments.prunetrain", "bench_prunetrain"),
}


@pytest.mark.parametrize("command", sorted(BENCHES))
def test_every_bench_writes_out_with_provenance(command, tmp_path, monkeypatch, capsys):
    """The wiring, with the measurement itself replaced: what the benchmark returns is what
    the file holds, under the provenance of the command that ran."""
    import importlib

    import cli

    module, name = BENCHES[command]
    seen = {}

    def fake(*args, **kwargs):
        seen.update(kwargs)
        return {"benchmark": command, "figure": 0.5}

    monkeypatch.setattr(importlib.import_module(module), name, fake)
    path = tmp_path / "sub" / f"{command}.json"
    with pytest.raises(SystemExit) as exit_:
        cli.main(["bench", command, "--json", "--out", str(path)])
    assert exit_.value.code == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out) == {"benchmark": command, "figure": 0.5}
    stored = json.loads(path.read_text())
    assert stored["benchmark"] == command and stored["figure"] == 0.5
    provenance = stored["provenance"]
    for key in ("command", "git_commit", "versions", "cpu", "cpu_count", "date"):
        assert key in provenance
    assert provenance["versions"]["torch"]


def test_bench_engine_out_holds_a_real_measurement(tmp_path, monkeypatch, capsys):
    import cli

    path = tmp_path / "engine.json"
    argv = ["bench", "engine", "--budget", "20", "--seeds", "1", "--strategies", "nsga2,random", "--out", str(path)]
    monkeypatch.setattr(sys, "argv", ["automl", *argv])  # as the console script sees it
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 0
    stored = json.loads(path.read_text())
    assert set(stored["problems"]["zdt1"]) == {"nsga2", "random"}
    assert stored["provenance"]["command"] == "automl " + " ".join(argv)
    assert "hypervolume" in capsys.readouterr().out  # the table is still printed without --json


def test_bench_search_takes_an_evaluation_budget_and_accelerators(monkeypatch, capsys):
    import cli

    import automl.experiments.search as search

    seen = {}

    def fake(**kwargs):
        seen.update(kwargs)
        return {"summary": {}, "accelerated": {}}

    monkeypatch.setattr(search, "bench_search", fake)
    with pytest.raises(SystemExit):
        cli.main(["bench", "search", "--evaluations", "7", "--accelerate", "subset:fraction=0.7"])
    assert seen["evaluations"] == 7 and seen["time_budget"] is None and seen["accelerate"] == "subset:fraction=0.7"
    said = " ".join(capsys.readouterr().err.split())  # what it will do is said before the first run
    assert "10 runs of 7 evaluations each, then its front re-trained plain" in said
    with pytest.raises(SystemExit) as exit_:
        cli.main(["bench", "search", "--accelerate", "nosuchmethod"])
    assert exit_.value.code == 2 and seen["evaluations"] == 7  # refused before anything ran


def test_a_result_names_the_commit_its_command_started_on(tmp_path, monkeypatch):
    """A benchmark runs for minutes; a commit made meanwhile is not the code that ran."""
    from automl.experiments import results

    heads = iter(["started-on", "checked-out-at-write"])
    monkeypatch.setattr(results, "_git", lambda *args: next(heads) if args[0] == "rev-parse" else "")
    monkeypatch.setattr(results, "_STARTED_ON", None)
    results.remember_source()
    stored = json.loads(results.write_result(tmp_path / "r.json", {"figure": 1}).read_text())["provenance"]
    assert stored["git_commit"] == "started-on" and stored["git_dirty"] is False
    assert stored["git_at_write"] == {"git_commit": "checked-out-at-write", "git_dirty": False}
