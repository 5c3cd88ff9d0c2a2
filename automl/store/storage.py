"""Where a study lives: opening its storage, locating its weights, and storage faults as user errors.

Three rules keep a study whole wherever a command runs from:

- a file-backed study (SQLite, journal) keeps its artifacts (trained weights) beside its file,
  at an absolute path worked out from the file, never from the working directory; another
  storage (PostgreSQL) keeps them where the study was told to (``--artifacts``/``artifacts =``),
  recorded in the study as an absolute path;
- opening a study creates nothing: folders are made when something is written into them, and a
  missing parent folder of a new database is made only inside the working directory (a URL such
  as ``sqlite:////nonexistent/dir/x.db`` is refused instead of creating system folders);
- every fault of the storage itself (read-only file, damaged database, unwritable journal) is
  turned into one :class:`StudyError` line here, by :func:`storage_errors`, and nowhere else.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna

from automl.core.errors import StudyError

STUDY_DIR = Path("studies")
SQLITE_OPEN_ATTEMPTS = 5


def default_storage(study: str, directory: Path = STUDY_DIR) -> str:
    return f"sqlite:///{directory / f'{study}.db'}"


def storage_file(url: str) -> Path | None:
    """The file behind a SQLite or journal URL (relative to the working directory, or absolute
    with ``////``); None for in-memory and server storages."""
    for prefix in ("sqlite:///", "journal:///"):
        if url.startswith(prefix):
            path, _, query = url[len(prefix):].partition("?")
            if prefix == "sqlite:///" and "uri=true" in query and path.startswith("file:"):
                path = path[len("file:"):]  # sqlite:///file:x.db?mode=ro&uri=true opens x.db read-only
            return None if path in ("", ":memory:") else Path(path)
    return None


def absolute_url(url: str) -> str:
    """The URL with a SQLite or journal file's path made absolute, so another process with
    another working folder (a Ray worker) opens the same file."""
    path = storage_file(url)
    if path is None or path.is_absolute():
        return url
    for prefix in ("sqlite:///", "journal:///"):
        if url.startswith(prefix):
            rest = url[len(prefix):]
            if rest.startswith("file:"):
                return f"{prefix}file:{path.resolve()}{rest[len('file:') + len(str(path)):]}"
            return f"{prefix}{path.resolve()}{rest[len(str(path)):]}"
    return url


def artifact_location(study: str, url: str, recorded: str | None = None) -> Path | None:
    """The study's artifact folder, as an absolute path; None for an in-memory study.

    A file-backed study keeps it beside its file (``NAME-artifacts``); a folder configured at
    creation (``--artifacts``, and always for a server storage) is recorded as an absolute path
    and used as is. Older studies recorded ``studies/NAME-artifacts`` relative to the folder the
    search ran in, i.e. the parent of the database's folder: that is tried where it exists.
    Nothing is created here.
    """
    if url == "memory":
        return None
    home = storage_file(url)
    beside = home.resolve().parent / f"{study}-artifacts" if home is not None else None
    found_beside = beside is not None and beside.is_dir()
    if recorded:
        path = Path(recorded).expanduser()
        if path.is_absolute():  # as configured, unless it is gone and the study file moved with its folder
            return beside if found_beside and not path.is_dir() else path
        if found_beside:
            return beside
        candidates = ([home.resolve().parent.parent / path] if home is not None else []) + [path.resolve()]
        return next((c for c in candidates if c.is_dir()), beside if beside is not None else candidates[-1])
    return beside if beside is not None else (STUDY_DIR / f"{study}-artifacts").resolve()


def _parent_ready(path: Path, what: str) -> None:
    """Create a missing parent folder of a new storage file only inside the working directory."""
    parent = path.expanduser().resolve().parent
    if parent.is_dir():
        return
    if parent.exists():
        raise StudyError(f"{what} {str(path)!r}: {str(parent)!r} is not a folder")
    if not parent.is_relative_to(Path.cwd().resolve()):
        raise StudyError(f"{what} {str(path)!r}: folder {str(parent)!r} does not exist (create it first; "
                         "only folders inside the current directory are created)")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StudyError(f"{what} {str(path)!r}: cannot create {str(parent)!r}: {error.strerror or error}") from None


def open_storage(url: str, must_exist: bool = False, heartbeat: tuple[int, int] | None = None
                 ) -> optuna.storages.BaseStorage:
    """An Optuna storage for a URL; ``journal:///path`` selects a journal file.

    With ``must_exist`` a missing SQLite or journal file is an error rather than created.
    ``heartbeat`` = (interval, grace period) in seconds turns on Optuna's heartbeats for RDB
    storages (:mod:`automl.store.heartbeat`).
    """
    if url == "memory":
        return optuna.storages.InMemoryStorage()
    path = storage_file(url)
    if url.startswith("journal:///"):
        if path is None:
            raise StudyError(f"storage {url!r} names no journal file")
        if must_exist and not path.is_file():
            raise StudyError(f"journal file {str(path)!r} does not exist")
        _parent_ready(path, "journal file")
        from optuna.storages.journal import JournalFileBackend

        with storage_errors(url):
            return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    if "://" not in url:
        raise StudyError(f"storage {url!r} is not a URL (e.g. sqlite:///studies/demo.db, "
                         "postgresql://user@host/db, journal:///path/file.log)")
    if path is not None:
        if must_exist and not path.is_file():
            raise StudyError(f"no study database at {str(path)!r}")
        _parent_ready(path, "study database")
    # Processes opening one new SQLite file at once race to create its tables ("table studies
    # already exists", a duplicate alembic version row); the schema is complete once the winner
    # commits, so the losers try again.
    attempts = SQLITE_OPEN_ATTEMPTS if path is not None else 1
    for attempt in range(1, attempts + 1):
        try:
            beats = {} if heartbeat is None else {"heartbeat_interval": heartbeat[0], "grace_period": heartbeat[1]}
            storage = optuna.storages.RDBStorage(url, **beats)
            if path is not None:
                _write_ahead_log(storage)
            return storage
        except Exception as error:  # sqlalchemy raises many kinds for bad URLs or servers
            if attempt == attempts:
                raise _as_study_error(error, url, opening=True) from None
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


def _write_ahead_log(storage: optuna.storages.RDBStorage) -> None:
    """SQLite in write-ahead-log mode with NORMAL sync: a commit costs no fsync (a trial's many
    attribute writes took ~25 ms each), readers never block the writer (processes sharing the
    study), and a killed process still loses nothing committed (only a power cut can drop the
    last commits). The mode is stored in the database file."""
    import sqlalchemy

    def pragmas(connection, _record) -> None:
        cursor = connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        except Exception:  # a read-only database file: it stays readable in its own mode
            pass
        finally:
            cursor.close()

    sqlalchemy.event.listen(storage.engine, "connect", pragmas)
    storage.engine.dispose()  # connections opened before the listener get the pragmas too


# -- storage faults as user errors ----------------------------------------------------------

_READ_ONLY = ("readonly database", "read-only", "read only")
_DAMAGED = ("malformed", "not a database", "file is encrypted", "disk i/o error", "database corruption")


def _reason(error: BaseException) -> str:
    """The first line of the innermost cause (Optuna wraps SQLAlchemy wraps sqlite3)."""
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}: {str(error.filename)!r}" if error.filename else error.strerror
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


def storage_fault(error: BaseException, url: str | None = None) -> StudyError | None:
    """The user error a fault of the storage means (SQLAlchemy's or Optuna's storage errors),
    or None when ``error`` is something else."""
    import sqlalchemy.exc

    if not isinstance(error, (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError)):
        return None
    return _as_study_error(error, url)


def _as_study_error(error: BaseException, url: str | None, opening: bool = False) -> StudyError:
    reason = _reason(error)
    where = f" ({url})" if url else ""
    lowered = reason.lower()
    if any(word in lowered for word in _READ_ONLY):
        return StudyError(f"the study's storage is read-only{where}: {reason}; nothing stored was lost")
    if any(word in lowered for word in _DAMAGED):
        return StudyError(f"the study's database is damaged{where}: {reason} (restore it from a copy)")
    if opening:
        return StudyError(f"cannot open storage {url!r}: {reason}")
    return StudyError(f"the study's storage failed{where}: {reason}")


@contextmanager
def storage_errors(url: str | None = None) -> Iterator[None]:
    """Run a block that touches a storage; its faults, and errors of the files it opens,
    become one-line :class:`StudyError`."""
    try:
        yield
    except StudyError:
        raise
    except OSError as error:
        raise _as_study_error(error, url) from None
    except Exception as error:
        fault = storage_fault(error, url)
        if fault is None:
            raise
        raise fault from None
