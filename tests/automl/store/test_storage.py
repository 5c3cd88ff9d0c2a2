"""Where a study lives: artifacts beside the study file wherever a command runs from, nothing
created by opening, no folders made outside the working directory, storage faults as one line."""

from __future__ import annotations

import os
from pathlib import Path

import optuna
import pytest
import torch

from automl.core.errors import StudyError
from automl.core.genome import Genome
from automl.core.pareto import DEFAULT_OBJECTIVES
from automl.store.storage import absolute_url, artifact_location, open_storage, storage_errors, storage_fault
from automl.store.study import SETTINGS_ATTR, StudyStore

CHOICES = {"a": [1, 2, 3]}


def _with_weights(name: str, storage: str | None = None) -> StudyStore:
    store = StudyStore.create(name, storage, DEFAULT_OBJECTIVES, {"seed": 0})
    genome = Genome("toy", (("a", 2),))
    trial = store.start(genome, CHOICES, {"key": genome.key()})
    store.complete(trial, {"accuracy": 0.5, "flops": 1.0}, {}, weights={"w": torch.ones(3)})
    return store


def test_artifacts_live_beside_the_database_as_an_absolute_path(in_tmp):
    store = _with_weights("s1")
    recorded = Path(store.settings["artifacts"])
    assert recorded.is_absolute() and recorded == (in_tmp / "studies" / "s1-artifacts").resolve()
    assert store.artifacts_dir == recorded and recorded.is_dir()


def test_a_study_opened_from_another_folder_reads_its_weights_and_creates_nothing(in_tmp):
    (in_tmp / "a").mkdir()
    (in_tmp / "b").mkdir()
    os.chdir(in_tmp / "a")
    _with_weights("s1")
    os.chdir(in_tmp / "b")
    store = StudyStore.open("s1", f"sqlite:///{in_tmp}/a/studies/s1.db")
    assert store.artifacts_dir == (in_tmp / "a" / "studies" / "s1-artifacts").resolve()
    assert torch.equal(store.download_weights(store.trials()[0])["w"], torch.ones(3))
    assert list((in_tmp / "b").iterdir()) == []  # no stray studies/NAME-artifacts here


def test_a_study_moved_with_its_artifacts_still_finds_them(in_tmp):
    _with_weights("s1")
    (in_tmp / "studies").rename(in_tmp / "moved")
    store = StudyStore.open("s1", f"sqlite:///{in_tmp}/moved/s1.db")
    assert store.artifacts_dir == (in_tmp / "moved" / "s1-artifacts").resolve()
    assert torch.equal(store.download_weights(store.trials()[0])["w"], torch.ones(3))


def test_old_studies_with_a_relative_artifact_path_still_open_from_elsewhere(in_tmp):
    """Before, a study recorded ``studies/NAME-artifacts`` relative to the folder the search ran
    in, which is the parent of the database's folder for the default layout."""
    (in_tmp / "a").mkdir()
    os.chdir(in_tmp / "a")
    store = StudyStore.create("old", "sqlite:///db/old.db", DEFAULT_OBJECTIVES, {},
                              artifacts=Path("studies/old-artifacts"))
    genome = Genome("toy", (("a", 2),))
    trial = store.start(genome, CHOICES, {"key": genome.key()})
    store.complete(trial, {"accuracy": 0.5, "flops": 1.0}, {}, weights={"w": torch.ones(3)})
    store.study.set_user_attr(SETTINGS_ATTR, dict(store.settings, artifacts="studies/old-artifacts"))
    os.chdir(in_tmp)
    reopened = StudyStore.open("old", f"sqlite:///{in_tmp}/a/db/old.db")
    assert reopened.artifacts_dir == (in_tmp / "a" / "studies" / "old-artifacts").resolve()
    assert torch.equal(reopened.download_weights(reopened.trials()[0])["w"], torch.ones(3))
    assert sorted(p.name for p in in_tmp.iterdir()) == ["a"]  # nothing stray here


def test_artifact_location_rules(in_tmp):
    db = (in_tmp / "x" / "s.db").resolve()
    assert artifact_location("s", f"sqlite:///{db}") == db.parent / "s-artifacts"
    assert artifact_location("s", "journal:///j/s.log") == (in_tmp / "j" / "s-artifacts").resolve()
    assert artifact_location("s", "memory") is None
    # a server storage: the recorded (configured) folder, else one made absolute at creation
    assert artifact_location("s", "postgresql://u@h/db", "/srv/weights") == Path("/srv/weights")
    assert artifact_location("s", "postgresql://u@h/db") == (in_tmp / "studies" / "s-artifacts").resolve()
    assert not (in_tmp / "x").exists() and not (in_tmp / "studies").exists()


def test_a_configured_artifact_folder_is_recorded_and_used(in_tmp):
    StudyStore.create("s1", "journal:///j.log", DEFAULT_OBJECTIVES, {}, artifacts=Path("weights"))
    store = StudyStore.open("s1", "journal:///j.log")
    assert store.settings["artifacts"] == str((in_tmp / "weights").resolve())
    assert store.artifacts_dir == (in_tmp / "weights").resolve()


@pytest.mark.parametrize("url", ["sqlite:////nonexistent-automl/dir/x.db", "journal:////nonexistent-automl/x.log"])
def test_no_folders_are_created_outside_the_working_directory(in_tmp, url):
    with pytest.raises(StudyError, match="does not exist.*only folders inside the current directory"):
        open_storage(url)
    assert not Path("/nonexistent-automl").exists()


def test_a_missing_folder_inside_the_working_directory_is_created(in_tmp):
    open_storage("sqlite:///deep/er/x.db")
    assert (in_tmp / "deep" / "er" / "x.db").is_file()


def test_an_unwritable_journal_is_one_line(in_tmp):
    with pytest.raises(StudyError, match="storage failed.*proc") as refused:
        StudyStore.create("j", "journal:////proc/automl-x.log", DEFAULT_OBJECTIVES, {})
    assert "\n" not in str(refused.value)


def test_a_read_only_database_is_one_line_and_keeps_the_study(in_tmp):
    _with_weights("s1")
    read_only = f"sqlite:///file:{in_tmp}/studies/s1.db?mode=ro&uri=true"
    assert len(StudyStore.open("s1", read_only).trials()) == 1  # reading works
    with pytest.raises(StudyError, match="read-only") as refused:
        StudyStore.create("s2", read_only, DEFAULT_OBJECTIVES, {})
    assert "\n" not in str(refused.value)
    store = StudyStore.open("s1", read_only)
    with pytest.raises(StudyError, match="read-only") as refused, storage_errors(read_only):
        store.study.set_user_attr("x", 1)
    assert "\n" not in str(refused.value)
    assert [t.values for t in StudyStore.open("s1").trials()] == [[0.5, 1.0]]


def _damage(path: Path) -> None:
    """Overwrite data pages (not the header) with garbage, as a disk fault would."""
    with open(path, "r+b") as handle:
        handle.seek(4096 * 3)
        handle.write(b"\xde\xad\xbe\xef" * 4096)


def test_a_damaged_database_is_one_line(in_tmp):
    store = StudyStore.create("s1", None, DEFAULT_OBJECTIVES, {})
    for a in range(40):
        genome = Genome("toy", (("a", a),))
        trial = store.start(genome, {"a": list(range(40))}, {"key": genome.key(), "note": "x" * 300})
        store.complete(trial, {"accuracy": 0.5, "flops": 1.0 + a}, {})
    assert (in_tmp / "studies" / "s1.db").stat().st_size > 4096 * 7
    _damage(in_tmp / "studies" / "s1.db")
    with pytest.raises(StudyError, match="damaged.*malformed") as refused:
        with storage_errors("s1"):
            StudyStore.open("s1").trials()
    assert "\n" not in str(refused.value)


def test_storage_fault_leaves_other_errors_alone():
    assert storage_fault(ValueError("x")) is None
    assert storage_fault(FileNotFoundError(2, "gone", "a.png")) is None  # not a storage's
    fault = storage_fault(optuna.exceptions.StorageInternalError("boom"))
    assert isinstance(fault, StudyError) and "boom" in str(fault)


def test_a_worker_in_another_folder_reaches_the_same_study_file(in_tmp):
    assert absolute_url("sqlite:///studies/a.db") == f"sqlite:///{in_tmp.resolve()}/studies/a.db"
    assert absolute_url("journal:///a.log") == f"journal:///{in_tmp.resolve()}/a.log"
    assert absolute_url("sqlite:///file:a.db?mode=ro&uri=true") == f"sqlite:///file:{in_tmp.resolve()}/a.db?mode=ro&uri=true"
    for unchanged in ("sqlite:////abs/a.db", "postgresql://u@h/db", "memory"):
        assert absolute_url(unchanged) == unchanged


def test_weights_are_read_by_a_reader_that_travels_without_the_study(in_tmp):
    import pickle

    store = _with_weights("travel")
    trial = store.trials()[0]
    reader = pickle.loads(pickle.dumps(store.weights_reader()))
    assert torch.equal(reader(trial)["w"], store.download_weights(trial)["w"])
