"""``automl bench scale``: the overhead part measures every storage it can reach and says why it
skips PostgreSQL; the parallel part runs 1..N workers and compares the fronts (slow)."""

from __future__ import annotations

import json

import pytest

import cli
from automl.experiments.scale import PARTS, SleepEvaluator, bench_scale


def run(capsys, *args) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_overhead_covers_each_storage_and_notes_a_missing_postgres(monkeypatch):
    monkeypatch.delenv("AUTOML_TEST_POSTGRES", raising=False)
    result = bench_scale(["overhead"], {"overhead": {"trials": 6, "sleep": 0.0, "population": 3, "repeats": 2}})
    rows = result["overhead"]["storages"]
    assert set(rows) == {"memory", "sqlite", "journal", "postgresql"}
    assert "no PostgreSQL URL" in rows["postgresql"]["skipped"]
    for kind in ("memory", "sqlite", "journal"):
        assert rows[kind]["trials"] == 6 and len(rows[kind]["overhead_ms_per_trial_runs"]) == 2
        assert rows[kind]["overhead_ms_per_trial"] == min(rows[kind]["overhead_ms_per_trial_runs"])
    assert rows["sqlite"]["target_ms"] == 30 and isinstance(rows["sqlite"]["met"], bool)


def test_the_stand_in_evaluator_scores_the_nas_problem_and_parts_are_named():
    from automl.experiments.problems import PROBLEMS

    genome = {f"{g}{s}": v for s in range(5) for g, v in (("d", 2), ("w", 16), ("k", 3))}
    assert SleepEvaluator(0.0)(genome) == PROBLEMS["nas"][1](genome)
    assert set(PARTS) == {"overhead", "parallel", "ddp"}


@pytest.mark.parametrize("args, message", [
    (["--parts", "overhead,gpu"], "unknown part 'gpu'"),
    (["--workers", "1,x"], "must be comma-separated integers"),
    (["--workers", "0,2"], "of at least 1"),
    (["--parts", "ddp", "--ddp-processes", "3"], "does not split into 3 equal shares"),
])
def test_bad_options_are_one_line(capsys, args, message):
    code, _, err = run(capsys, "bench", "scale", *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.slow
def test_parallel_part_runs_each_worker_count_and_compares_fronts(capsys, tmp_path):
    pytest.importorskip("ray")
    out_file = tmp_path / "scale.json"
    code, out, err = run(capsys, "bench", "scale", "--parts", "parallel", "--workers", "1,2", "--evaluations", "4",
                         "--parallel-sleep", "0.2", "--hv-budget", "16", "--hv-seeds", "1", "--json",
                         "--out", out_file)
    assert code == 0, err
    result = json.loads(out)
    assert set(result["parallel"]["workers"]) == {"1", "2"}
    nsga2 = result["parallel"]["search_quality"]["strategies"]["nsga2"]
    assert nsga2[0]["same_front"] and nsga2[0]["hypervolume_1_worker"] == nsga2[0]["hypervolume_4_workers"]
    assert json.loads(out_file.read_text())["provenance"]["versions"]["ray"]
