"""The command line: user mistakes give one line on stderr and exit code 2, nothing lost."""

from __future__ import annotations

import json

import pytest

import cli
from automl.core.pareto import DEFAULT_OBJECTIVES
from automl.store.study import StudyStore


def run(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(list(args))
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("automl ")


def test_help_explains_the_commands(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("search", "pareto", "spaces", "accelerators", "bench"):
        assert command in out
    code, out, _ = run(capsys, "search", "--help")
    assert code == 0 and "--max-flops" in out and "default: mobile" in out
    words = " ".join(out.replace("│", " ").split())  # rich wraps help text inside its box
    assert "(default: 4)" in words and "(default: nsga2)" in words  # --generations, --strategy


@pytest.mark.parametrize("args", [["--help"], ["search", "--help"], ["studies", "--help"]])
def test_help_imports_no_torch(args):
    """Help is printed without importing torch (seconds of start-up) or the other heavy libraries."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    probe = ("import runpy, sys\n"
             f"sys.argv = ['automl', *{args!r}]\n"
             "try:\n    runpy.run_path('cli.py', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "print('HEAVY', sorted(m for m in ('torch', 'optuna', 'pymoo', 'matplotlib') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, timeout=600)
    assert "Usage" in result.stdout and result.stdout.splitlines()[-1] == "HEAVY []", result.stderr[-2000:]


def test_spaces_lists_mobile(capsys):
    code, out, _ = run(capsys, "spaces", "--json")
    assert code == 0 and "mobile" in [row["name"] for row in json.loads(out)]


def test_accelerators_list_is_valid_json(capsys):
    import accelerators

    code, out, _ = run(capsys, "accelerators", "--json")
    rows = json.loads(out)
    assert code == 0 and sorted(row["name"] for row in rows) == sorted(accelerators.names())
    assert all(row["kind"] and row["summary"] for row in rows)


BAD_INPUT = [
    (["search", "--space", "nope"], "unknown search space 'nope'"),
    (["search", "--dataset", "imagenet-22k"], "unknown dataset"),
    (["search", "--accelerate", "warp9"], "unknown accelerator 'warp9'"),
    (["search", "--accelerate", "fx16:fl=40"], "fl=40"),
    (["search", "--accelerate", "sparsegrad:sparsity=2"], "sparsity=2"),
    (["search", "--accelerate", "fx16,amp"], "cannot be combined"),
    (["search", "--accelerate", "approx:speed=3"], "no option 'speed'"),
    (["bench", "accelerators", "--only", "warp9"], "unknown accelerator"),
    (["search", "--strategy", "hill-climb"], "unknown strategy"),
    (["search", "--budget", "-3"], "--budget must be at least 1"),
    (["search", "--budget", "many"], "--budget"),
    (["search", "--population", "1"], "--population"),
    (["search", "--epochs", "0"], "--epochs"),
    (["search", "--budget", "5", "--generations", "2"], "not both"),
    (["search", "--max-flops", "lots"], "--max-flops"),
    (["search", "--storage", "nosuchdb://x/y", "--study", "x", "--budget", "1"], "storage"),
    (["search", "--resume", "--study", "ghost"], "no study"),
    (["search", "--resume"], "--resume needs --study"),
    (["search", "--study", "../up"], "study name"),
    (["search", "--config", "missing.toml"], "does not exist"),
    (["search", "--config", "."], "is a folder, not a TOML file"),
    (["search", "--population", "0"], "--population must be at least 2, got 0"),
    (["search", "--max-params", "-5"], "--max-params must be positive, got -5"),
    (["spaces", "show", "mobile", "--input", "1x28"], "--input '1x28' must read C,H,W (or CxHxW)"),
    (["search", "--device", "tpu"], "unknown device"),
    (["search", "--no-such-flag"], "no-such-flag"),
    (["pareto", "--study", "ghost"], "no study"),
    (["pareto"], "no study"),
    (["bench", "engine", "--strategies", "nsga2,magic"], "unknown strategy"),
]


@pytest.mark.parametrize("args, message", BAD_INPUT)
def test_bad_input_is_one_line_and_exit_code_2(capsys, in_tmp, args, message):
    code, _, err = run(capsys, *args)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in err


def test_bad_config_file(capsys, in_tmp):
    (in_tmp / "bad.toml").write_text("population = [1\n")
    code, _, err = run(capsys, "search", "--config", "bad.toml")
    assert code == 2 and "not valid TOML" in err
    (in_tmp / "unknown.toml").write_text("wings = 2\n")
    code, _, err = run(capsys, "search", "--config", "unknown.toml")
    assert code == 2 and "unknown setting 'wings'" in err


def _stored_study(name="kept"):
    from automl.core.genome import Genome

    store = StudyStore.create(name, None, DEFAULT_OBJECTIVES, {"space": "mobile", "dataset": "mnist5k",
                                                               "population": 8, "seed": 0, "budget": 4})
    genome = Genome("mobile", (("stem", 8),))
    trial = store.start(genome, {"stem": [8, 16]}, {"key": genome.key(), "genome": "stem8"})
    store.complete(trial, {"accuracy": 0.9, "flops": 1e6}, {"mflops": 1.0, "params": 10, "seconds": 1.0})
    return store


def test_mistakes_on_an_existing_study_lose_nothing(capsys, in_tmp):
    _stored_study()
    code, _, err = run(capsys, "search", "--study", "kept", "--budget", "2")
    assert code == 2 and "already exists" in err
    code, _, err = run(capsys, "search", "--study", "kept", "--resume", "--population", "16")
    assert code == 2 and "differs from the study's 8" in err
    code, _, err = run(capsys, "search", "--study", "kept", "--resume", "--space", "nope")
    assert code == 2
    store = StudyStore.open("kept")
    assert [t.values for t in store.trials()] == [[0.9, 1e6]]


def test_pareto_prints_the_front_and_writes_a_png(capsys, in_tmp):
    _stored_study()
    code, out, _ = run(capsys, "pareto", "--study", "kept", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["front"][0]["trial"] == 0 and (in_tmp / result["png"]).stat().st_size > 1000
    code, out, _ = run(capsys, "pareto")  # the newest study by default
    assert code == 0 and "stem8" in out


def test_config_values_are_overridden_by_flags(in_tmp):
    from automl.app.config import load_config, merge

    (in_tmp / "c.toml").write_text("[search]\npopulation = 6\ngenerations = 3\nmax_flops = '20M'\n")
    values = load_config(in_tmp / "c.toml")
    assert merge(values, {}).total_budget() == 18 and merge(values, {}).max_flops == 20e6
    settings = merge(values, {"population": 10, "budget": 7})
    assert settings.population == 10 and settings.total_budget() == 7


def test_checked_in_study_configs_parse():
    from pathlib import Path

    from automl.app.config import load_config, merge

    configs = sorted((Path(__file__).resolve().parents[1] / "studies").glob("*.toml"))
    assert configs
    for path in configs:
        merge(load_config(path), {})


SHIPPING_MISTAKES = [
    (["dashboard", "--study", "ghost"], "no study"),
    (["dashboard", "--study", "kept", "--port", "70000"], "--port must be between 0 and 65535"),
    (["report", "--study", "ghost", "--out", "r"], "no study"),
    (["report", "--study", "kept", "--out", "r", "--format", "pdf"], "unknown report format"),
    (["export", "--study", "ghost", "--out", "x"], "no study"),
    (["export", "--study", "kept", "--out", "x", "--format", "onnx,tflite"], "unknown export format 'tflite'"),
    (["export", "--study", "kept", "--out", "x"], "no stored weights"),
    (["export", "--study", "kept", "--out", "x", "--trial", "7"], "has no trial 7"),
    (["export", "--study", "kept", "--out", "x", "--device", "tpu"], "unknown device"),
    (["predict", "nowhere", "a.png"], "no exported model at 'nowhere'"),
    (["predict", "studies", "a.png"], "no model card"),
]


@pytest.mark.parametrize("args, message", SHIPPING_MISTAKES)
def test_dashboard_report_export_predict_mistakes_are_one_line(capsys, in_tmp, args, message):
    _stored_study()
    code, _, err = run(capsys, *args)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in err
    assert not (in_tmp / "x").exists()


def test_help_lists_the_shipping_commands(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and all(c in out for c in ("dashboard", "report", "export", "predict"))
    code, out, _ = run(capsys, "export", "--help")
    assert code == 0 and "--retrain-epochs" in out and "--format" in out


def test_bench_accelerators_prints_its_table_and_the_seed_noise_ceiling(capsys):
    code, out, err = run(capsys, "bench", "accelerators", "--candidates", "2", "--epochs", "0.2", "--max-flops", "4M",
                         "--seeds", "1", "--only", "subset:fraction=0.7")
    assert code in (0, None)
    words = " ".join(out.split())  # rich folds long cells and lines to the terminal's width
    assert "subset:fr" in out and "seed noise alone (plain training under 1 other seed(s))" in words
    assert "candidate 2/2" in err  # progress on stderr, so --json output stays clean


def test_studies_lists_each_study_and_the_newest_is_the_default(capsys, in_tmp):
    import os
    import time

    _stored_study("older")
    os.utime(in_tmp / "studies" / "older.db", (time.time() - 60, time.time() - 60))
    _stored_study("newer")
    code, out, _ = run(capsys, "studies", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [r["study"] for r in rows] == ["older", "newer"]
    assert rows[1]["storage"] == "sqlite:///studies/newer.db" and rows[1]["trials"] == 1 and rows[1]["front"] == 1
    code, out, _ = run(capsys, "studies")
    assert code == 0 and "older" in out and "newer" in out
    code, out, _ = run(capsys, "lineage", "--json")  # no --study: the newest, as for pareto/report/export
    assert code == 0 and json.loads(out)["study"] == "newer"
    code, _, err = run(capsys, "studies", "--storage", "sqlite:///nowhere.db")
    assert code == 2 and "no study database" in err


def test_accelerators_list_every_option_default_in_full(capsys):
    code, out, _ = run(capsys, "accelerators", "--json")
    rows = json.loads(out)
    code, out, _ = run(capsys, "accelerators")
    assert code == 0
    for row in rows:
        line = next(line for line in out.splitlines() if line.lstrip("│ ").startswith(f"{row['name']} "))
        assert all(f"{key}={value}" in line for key, value in row["options"].items())  # nothing cut short


def test_lineage_of_a_study_with_nothing_finished_says_so(capsys, in_tmp):
    from automl.core.pareto import DEFAULT_OBJECTIVES
    from automl.store.study import StudyStore

    StudyStore.create("empty", None, DEFAULT_OBJECTIVES, {})
    code, out, err = run(capsys, "lineage", "--study", "empty")
    assert code == 0 and out == "" and "has no finished trials yet" in err


@pytest.mark.parametrize("shape", ["3,32,32", "3x32x32"])
def test_every_command_takes_either_spelling_of_an_input_shape(shape):
    from automl.app.commands.costmodel import parse_shape as costmodel_shape
    from search_spaces.describe import parse_shape

    assert parse_shape(shape) == costmodel_shape(shape) == (3, 32, 32)
