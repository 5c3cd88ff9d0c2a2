"""The README's quick start as a new user meets it: what the log holds, what the search ends
with (warm starts and what they saved), and the commands that read the study afterwards.
Budgets are in evaluations; the exact quick start (1 epoch each) is marked slow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "studies" / "quickstart.toml"


def automl_to_file(log: Path, *args: str, cwd: Path, timeout: int = 3000) -> str:
    """Run ``automl`` with stdout and stderr redirected to one file, as under nohup or CI."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="80")
    with log.open("w") as handle:
        code = subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], cwd=cwd, env=env, stdout=handle,
                              stderr=subprocess.STDOUT, timeout=timeout).returncode
    text = log.read_text()
    assert code == 0, text[-3000:]
    return text


def _genomes(cwd: Path, name: str, storage: str | None = None) -> list[str]:
    study = optuna.load_study(study_name=name, storage=storage or f"sqlite:///{cwd}/studies/{name}.db")
    return [t.user_attrs["genome"] for t in study.trials if t.state == TrialState.COMPLETE]


def _front_genomes(cwd: Path, name: str, storage: str) -> list[str]:
    study = optuna.load_study(study_name=name, storage=storage)
    return [t.user_attrs["genome"] for t in study.best_trials]


def test_a_logged_search_keeps_each_genome_on_one_line_and_its_hint_works(tmp_path):
    storage = "sqlite:///elsewhere.db"
    log = automl_to_file(tmp_path / "search.log", "search", "--study", "logged", "--storage", storage,
                         "--population", "2", "--budget", "3", "--epochs", "0.05", cwd=tmp_path)
    genomes = _genomes(tmp_path, "logged", f"sqlite:///{tmp_path}/elsewhere.db")
    lines = log.splitlines()
    assert len(genomes) == 3 and all(len(g) > 80 for g in genomes)  # longer than rich's 80-column fallback
    for genome in genomes:
        assert sum(genome in line for line in lines) >= 2  # whole on the line that trains it and on its result
    front = _front_genomes(tmp_path, "logged", f"sqlite:///{tmp_path}/elsewhere.db")
    assert front and all(sum(genome in line for line in lines) >= 3 for genome in front)  # and in the table
    assert any(line.startswith("[") and "candidate 3/3: trial 2:" in line for line in lines)
    hint = next(line for line in lines if line.startswith("Next: automl pareto"))
    assert f"--study logged --storage {storage}" in hint
    listed = automl_to_file(tmp_path / "studies.log", "studies", "--storage", storage, cwd=tmp_path)
    assert "logged" in listed and storage in listed
    pareto = automl_to_file(tmp_path / "pareto.log", "pareto", "--storage", storage, cwd=tmp_path)
    assert "Pareto front of study 'logged'" in pareto


def _quickstart(tmp_path: Path, *overrides: str) -> tuple[str, list]:
    log = automl_to_file(tmp_path / "quickstart.log", "search", "--config", str(QUICKSTART), *overrides,
                         cwd=tmp_path)
    (db,) = (tmp_path / "studies").glob("*.db")
    study = optuna.load_study(study_name=db.stem, storage=f"sqlite:///{db}")
    return log, [t for t in study.trials if t.state == TrialState.COMPLETE]


class StandIn:
    """An evaluator that trains nothing: accuracy rises with a cost that grows with every gene's
    choice (as FLOPs do), with noise fixed per genome. It reports the epochs the CNN evaluator
    would have trained (1, or 0.3 when warm-started) so the closing lines can be checked."""

    accepts_context = True

    def __init__(self, space) -> None:
        self.space = space

    def cost(self, genome) -> float:
        import numpy as np

        x = self.space.encode(genome)
        return float(1e6 * (1 + (x * (1 + np.arange(len(x)) % 4)).sum()))

    def __call__(self, genome, context):
        import math

        import numpy as np
        import torch

        from automl.core.evaluation import Evaluation

        cost = self.cost(genome)
        noise = np.random.default_rng(int.from_bytes(genome.key().encode()[-4:], "little")).normal(0, 0.03)
        warm = context.warm_parent is not None
        attrs = {"epochs": 0.3 if warm else 1.0, "seconds": 0.3 if warm else 1.0}
        if warm:
            attrs["warm_start_from"] = context.warm_parent.number
        return Evaluation({"accuracy": 1 - 3 / math.log(cost) + noise, "flops": cost}, attrs,
                          weights={"w": torch.zeros(1)})


def test_the_quick_start_settings_let_a_quarter_of_the_children_inherit(in_tmp):
    """The engine under the quick start's settings (population, generations, preselect, seed),
    with a stand-in for training: at least a quarter of the evaluations inherit weights, and the
    closing lines say how many and what that saved."""
    import search_spaces
    from automl.app.commands.search import closing_lines
    from automl.app.config import load_config, merge
    from automl.core.pareto import DEFAULT_OBJECTIVES
    from automl.engine.search import Search
    from automl.store.study import StudyStore

    settings = merge(load_config(QUICKSTART), {})
    space = search_spaces.get(settings.space)
    evaluator = StandIn(space)
    store = StudyStore.create("quick", None, DEFAULT_OBJECTIVES, {"epochs": settings.epochs, "warm_start": True})
    result = Search(space, evaluator, store, budget=settings.total_budget(), population=settings.population,
                    seed=settings.seed, preselect=settings.preselect, warm_start=settings.warm_start,
                    known=lambda genome: {"flops": evaluator.cost(genome)}).run()
    warm = [c for c in result.candidates if c.attrs.get("warm_start_from") is not None]
    children = [c for c in result.candidates if c.generation > 0]
    assert len(result.candidates) == 24 and len(warm) >= len(result.candidates) / 4
    lines = closing_lines(store, len(result.candidates), len(result.candidates), None)
    saved = 0.7 * len(warm)
    assert f"{len(warm)} of {len(children)} children inherited" in lines[1] and f"{saved:.1f} epochs" in lines[1]


def _check_warm_starts(log: str, trials: list) -> None:
    children = [t for t in trials if t.user_attrs["generation"] > 0]
    warm = [t for t in trials if t.user_attrs.get("warm_start_from") is not None]
    assert len(trials) == 24 and len(warm) >= len(trials) / 4, f"{len(warm)} of {len(trials)} warm-started"
    assert f"{len(warm)} of {len(children)} children inherited" in log
    assert "epochs and about" in log and "of training saved" in log


@pytest.mark.slow
def test_the_quick_start_warm_starts_a_quarter_of_its_children(tmp_path):
    """The README's first search exactly (1 epoch each), its output redirected to a file."""
    log, trials = _quickstart(tmp_path)
    _check_warm_starts(log, trials)
    for trial in trials:
        assert any(trial.user_attrs["genome"] in line for line in log.splitlines())
