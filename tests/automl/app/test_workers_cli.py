"""``automl search --workers/--ray``: bad input and a missing Ray are one line and exit code 2,
before anything is loaded or stored; a search with workers trains real candidates (slow)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import cli


def run(capsys, *args) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def _one_line(code: int, err: str, message: str) -> bool:
    lines = [line for line in err.splitlines() if line.strip()]
    return code == 2 and len(lines) == 1 and message in lines[0] and "Traceback" not in err


@pytest.mark.parametrize("args, message", [
    (["--workers", "0"], "--workers must be at least 1, got 0"),
    (["--workers", "2", "--cpus-per-trial", "0"], "--cpus-per-trial must be a positive number"),
    (["--workers", "2", "--gpus-per-trial", "-1"], "--gpus-per-trial must be 0 or more"),
    (["--ray", " "], "--ray needs an address"),
])
def test_bad_worker_settings_are_one_line_and_create_nothing(capsys, in_tmp, args, message):
    code, _, err = run(capsys, "search", "--study", "s", "--budget", "1", "--quiet", *args)
    assert _one_line(code, err, message), err
    assert list(in_tmp.iterdir()) == []


@pytest.mark.parametrize("args", [["--workers", "2"], ["--ray", "auto"]])
def test_workers_without_ray_installed_are_one_line(capsys, in_tmp, monkeypatch, args):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    code, _, err = run(capsys, "search", "--study", "s", "--budget", "1", "--quiet", *args)
    assert _one_line(code, err, "need Ray, which is not installed: pip install 'automl[ray]'"), err
    assert list(in_tmp.iterdir()) == []


def test_worker_settings_come_from_a_config_file_too(capsys, in_tmp):
    (in_tmp / "c.toml").write_text("workers = 0\n")
    code, _, err = run(capsys, "search", "--config", "c.toml", "--study", "s", "--budget", "1", "--quiet")
    assert _one_line(code, err, "--workers must be at least 1"), err


@pytest.mark.slow
def test_search_with_two_workers_trains_and_records_every_candidate(capsys, in_tmp):
    pytest.importorskip("ray")
    code, out, err = run(capsys, "search", "--study", "w", "--population", "2", "--generations", "2",
                         "--epochs", "0.05", "--workers", "2", "--device", "cpu", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["evaluated"] == 4 and result["trained"] == 4 and result["failed"] == 0
    assert "2 candidates at once on a local Ray instance" in err
    assert sum("candidate" in line and "trial" in line and " on " in line for line in err.splitlines()) == 4
    assert Path("studies/w-artifacts").is_dir()


def test_an_unreachable_cluster_is_one_line_before_any_study_exists(capsys, in_tmp, monkeypatch):
    """Ray is reached before the study is created: a rerun after the fix needs no --resume."""
    pytest.importorskip("ray")
    from automl.core.errors import AutomlError
    from automl.engine import ray_executor

    def unreachable(self, ray):
        raise AutomlError("cannot start or reach Ray at 'auto': no cluster there")

    monkeypatch.setattr(ray_executor.RayExecutor, "_start", unreachable)
    code, _, err = run(capsys, "search", "--study", "s", "--budget", "1", "--epochs", "0.01", "--quiet",
                       "--ray", "auto")
    assert _one_line(code, err, "cannot start or reach Ray"), err
    assert not (in_tmp / "studies").exists()
