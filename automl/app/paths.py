"""Folders a command will write into, checked before anything runs: a path that cannot be a
writable folder is the user's mistake - one line, not a traceback after minutes of training."""

from __future__ import annotations

import tempfile
from pathlib import Path

from automl.core.errors import AutomlError


def check_writable_folder(path: str | Path, option: str) -> Path:
    """``path`` as a folder this process can write files into; raises :class:`AutomlError`
    naming ``option`` otherwise. Leaves nothing behind: folders made to try are removed."""
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise AutomlError(f"{option} {str(path)!r} is a file, not a folder")
    missing = []
    parent = folder
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    made: list[Path] = []
    try:
        for step in reversed(missing):
            step.mkdir()
            made.append(step)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise AutomlError(f"{option} {str(path)!r} cannot be written: {error.strerror or error}") from None
    finally:
        for step in reversed(made):
            step.rmdir()
    return folder
