"""Faults a user can cause end in one line and exit code 2, before anything is created, and a
study made in one folder is used from any other one (export, report, warm-started resume)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import cli
from automl.core.pareto import DEFAULT_OBJECTIVES
from automl.store.study import StudyStore

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *args) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([str(a) for a in args])
    return exit_info.value.code, capsys.readouterr().err


def _one_line(code: int, err: str, message: str) -> bool:
    lines = [line for line in err.splitlines() if line.strip()]
    return code == 2 and len(lines) == 1 and message in lines[0] and "Traceback" not in err


@pytest.mark.parametrize("args, message", [
    (["--device", "cuda:9"], "device 'cuda:9'"),
    (["--device", "cudaXYZ"], "unknown device 'cudaXYZ'"),
    (["--seed", "-1"], "--seed must be between 0 and"),
    (["--storage", "sqlite:////nonexistent-automl/dir/x.db"], "does not exist"),
    (["--storage", "journal:////proc/automl-x.log"], "storage failed"),
])
def test_bad_settings_are_one_line_and_create_nothing(capsys, in_tmp, args, message):
    code, err = run(capsys, "search", "--study", "s", "--budget", "1", "--epochs", "0.01", "--quiet", *args)
    assert _one_line(code, err, message), err
    assert list(in_tmp.iterdir()) == [] and not Path("/nonexistent-automl").exists()


@pytest.mark.parametrize("line, message", [  # every wrong type: tests/automl/app/test_settings_validation.py
    ('population = "eight"', "'population' must be an integer, got 'eight'"),
])
def test_config_values_of_the_wrong_type_are_one_line(capsys, in_tmp, line, message):
    (in_tmp / "c.toml").write_text(line + "\n")
    code, err = run(capsys, "search", "--config", "c.toml")
    assert _one_line(code, err, message)
    assert not (in_tmp / "studies").exists()


def test_pareto_on_a_damaged_database_is_one_line(capsys, in_tmp):
    from automl.core.genome import Genome

    store = StudyStore.create("hurt", None, DEFAULT_OBJECTIVES, {})
    for a in range(40):
        genome = Genome("toy", (("a", a),))
        trial = store.start(genome, {"a": list(range(40))}, {"key": genome.key(), "genome": "x" * 300})
        store.complete(trial, {"accuracy": 0.5, "flops": 1.0 + a}, {})
    with open(in_tmp / "studies" / "hurt.db", "r+b") as handle:
        handle.seek(4096 * 3)
        handle.write(b"\xde\xad\xbe\xef" * 4096)
    code, err = run(capsys, "pareto", "--study", "hurt")
    assert _one_line(code, err, "damaged")


def test_a_read_only_database_is_one_line(capsys, in_tmp):
    StudyStore.create("kept", None, DEFAULT_OBJECTIVES, {})
    read_only = f"sqlite:///file:{in_tmp}/studies/kept.db?mode=ro&uri=true"
    code, err = run(capsys, "search", "--study", "new", "--storage", read_only, "--budget", "1", "--quiet")
    assert _one_line(code, err, "read-only")
    assert [s.study_name for s in __import__("optuna").get_all_study_summaries(f"sqlite:///{in_tmp}/studies/kept.db")
            ] == ["kept"]


# -- a study searched in one folder, used from another ------------------------------------------

def automl(*args, cwd) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-m", "automl", *map(str, args)], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.slow  # trains; the quick version is tests/automl/store/test_storage.py's from-another-folder test
def test_export_report_and_resume_from_another_folder(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    small = ["--epochs", "0.2", "--max-flops", "3M", "--population", "2", "--quiet"]
    automl("search", "--study", "far", "--budget", "2", *small, cwd=a)
    storage = f"sqlite:///{a}/studies/far.db"
    automl("export", "--study", "far", "--storage", storage, "--out", "models", "--format", "safetensors",
           "--quiet", cwd=b)
    automl("report", "--study", "far", "--storage", storage, "--out", "page", "--format", "md", cwd=b)
    automl("search", "--study", "far", "--storage", storage, "--resume", "--budget", "5", "--quiet", cwd=b)
    assert sorted(p.name for p in b.iterdir()) == ["models", "page"]  # no stray studies/ folder
    import optuna

    trials = optuna.load_study(study_name="far", storage=storage).trials
    assert len([t for t in trials if t.state.name == "COMPLETE"]) == 5
    warm = [t for t in trials if t.user_attrs.get("warm_start")]
    assert warm and all("scratch_reason" not in t.user_attrs for t in trials)  # parents' weights were found


@pytest.mark.parametrize("args, message", [
    (["--artifacts", "/proc/automl-nope"], "--artifacts '/proc/automl-nope' cannot be written"),
    (["--artifacts", "a-file"], "--artifacts 'a-file' is a file, not a folder"),
])
def test_an_artifacts_folder_that_cannot_be_written_is_refused_before_training(capsys, in_tmp, args, message):
    (in_tmp / "a-file").write_text("")
    code, err = run(capsys, "search", "--study", "s", "--budget", "1", "--epochs", "0.01", "--quiet", *args)
    assert _one_line(code, err, message), err
    assert sorted(p.name for p in in_tmp.iterdir()) == ["a-file"]  # no study, nothing trained


def test_the_folder_check_leaves_nothing_behind(tmp_path):
    from automl.app.paths import check_writable_folder

    assert check_writable_folder(tmp_path / "a" / "b", "--out") == tmp_path / "a" / "b"
    assert list(tmp_path.iterdir()) == []


def test_paths_a_command_cannot_write_are_one_line(capsys, in_tmp):
    """Export's folder is checked before anything is exported; any other output path that
    the file system refuses ends in one line naming it (not a traceback)."""
    from automl.core.genome import Genome

    store = StudyStore.create("w", None, DEFAULT_OBJECTIVES, {})
    genome = Genome("toy", (("a", 1),))
    trial = store.start(genome, {"a": [1, 2]}, {"key": genome.key(), "genome": "a1"})
    store.complete(trial, {"accuracy": 0.5, "flops": 1e6}, {})
    (in_tmp / "a-file").write_text("")
    code, err = run(capsys, "export", "--study", "w", "--out", "a-file", "--quiet")
    assert _one_line(code, err, "--out 'a-file' is a file, not a folder"), err
    code, err = run(capsys, "pareto", "--study", "w", "--png", "/proc/automl-nope/x.png")
    assert _one_line(code, err, "/proc/automl-nope"), err


@pytest.mark.parametrize("argv", [[], ["bench"]])
def test_a_bare_command_shows_its_help_without_an_empty_error_line(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    captured = capsys.readouterr()
    assert exit_info.value.code == 2 and "Usage" in captured.out and "error" not in captured.err
