"""Which studies exist: the list ``automl studies`` prints and the default study of every
command that takes ``--study`` (the newest one, as ``pareto`` has always picked it).

Without ``--storage`` the studies are the SQLite files ``automl search`` leaves in
``studies/`` (one study each, named like the file); with it, every study in that storage.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import optuna

from automl.core.errors import StudyError
from automl.store.study import STUDY_DIR, StudyStore, default_storage, open_storage


def study_files(directory: Path = STUDY_DIR) -> list[Path]:
    """The SQLite studies in ``directory``, oldest first (by the time they were last written)."""
    return sorted(directory.glob("*.db"), key=lambda p: (p.stat().st_mtime, p.name))


def _summaries(url: str) -> list[optuna.study.StudySummary]:
    return list(optuna.get_all_study_summaries(open_storage(url, must_exist=True), include_best_trial=False))


def newest_study(storage: str | None = None, directory: Path = STUDY_DIR) -> str:
    """The study a command reads when ``--study`` is omitted: the newest in ``storage``, or
    the newest database in ``studies/``."""
    if storage is not None:
        summaries = _summaries(storage)
        if not summaries:
            raise StudyError(f"no study in {storage}; run `automl search --storage {storage}` first")
        # latest first trial; studies without trials count as oldest, ties go to the later created
        order = max(range(len(summaries)), key=lambda i: (summaries[i].datetime_start or datetime.min, i))
        return summaries[order].study_name
    files = study_files(directory)
    if not files:
        raise StudyError(f"no study in {directory}/; run `automl search` first or name one with --study")
    # by when each study started (its first trial), not by file times: opening a SQLite study in
    # write-ahead-log mode touches its file, so reading an old study would make it the newest
    started = {}
    for order, path in enumerate(files):
        summaries = _summaries(default_storage(path.stem, directory))
        begun = max((s.datetime_start for s in summaries if s.datetime_start is not None), default=datetime.min)
        started[path.stem] = (begun, order)
    return max(started, key=started.get)


def resolve_study(study: str | None, storage: str | None) -> str:
    """``--study`` as given, else the newest study (see :func:`newest_study`)."""
    return study if study is not None else newest_study(storage)


def list_studies(storage: str | None = None, directory: Path = STUDY_DIR) -> list[dict[str, Any]]:
    """One row per study, oldest first (by its first trial, so the last row is the default
    study): name, storage, trials, Pareto front size, start date."""
    if storage is not None:
        places = [(storage, s.study_name) for s in _summaries(storage)]
    else:
        places = []
        for path in study_files(directory):
            url = default_storage(path.stem, directory)
            places += [(url, s.study_name) for s in _summaries(url)]
    rows, starts = [], []
    for url, name in places:
        store = StudyStore.open(name, url)
        trials = store.trials()
        started = min((t.datetime_start for t in trials if t.datetime_start is not None), default=None)
        rows.append({"study": name, "storage": url, "trials": len(trials),
                     "complete": sum(t.state.name == "COMPLETE" for t in trials), "front": len(store.pareto()),
                     "space": store.settings.get("space"), "dataset": store.settings.get("dataset"),
                     "started": started.isoformat(sep=" ", timespec="seconds") if started else None})
        starts.append(started or datetime.min)
    # by when each study started, as newest_study decides (file times move when SQLite checkpoints);
    # sorted() is stable, so studies that started together keep the order they were found in
    return [rows[i] for i in sorted(range(len(rows)), key=starts.__getitem__)]
