"""Benchmark results with their provenance, so every figure the README quotes can be traced.

Each ``automl bench ... --out FILE`` writes the result as JSON with what produced it: the
exact command, git commit (and whether the tree was dirty), package versions, CPU/GPU model,
threads and date. Figures quoted in the README name the committed file under
``docs/benchmarks/``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from automl.core.errors import AutomlError

PACKAGES = ("automl", "torch", "torchvision", "optuna", "pymoo", "numpy", "ray")


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10,
                              cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def _gpu() -> str | None:
    if "torch" not in sys.modules:  # a benchmark that never imported torch used no GPU
        return None
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


_STARTED_ON: dict[str, Any] | None = None  # the code a command started with (remember_source)


def _source() -> dict[str, Any]:
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": _git("rev-parse", "HEAD"), "git_dirty": bool(status) if status is not None else None}


def remember_source() -> None:
    """Note the commit (and whether the tree was dirty) as a command starts: a benchmark that
    writes its result half an hour later must name the code that ran, not the code checked
    out by then. The CLI calls it as a benchmark (or ablate) starts."""
    global _STARTED_ON
    _STARTED_ON = _source()


def provenance(command: list[str] | None = None) -> dict[str, Any]:
    """What produced a result: command, commit (as the command started, where it was noted),
    versions, machine, threads, date."""
    threads = None
    if "torch" in sys.modules:
        import torch

        threads = torch.get_num_threads()
    source = now = _source()
    if _STARTED_ON is not None and _STARTED_ON != now:  # the code changed while it ran: say both
        source = {**_STARTED_ON, "git_at_write": now}
    return {
        "command": " ".join(command if command is not None else ["automl", *sys.argv[1:]]),
        **source,
        "versions": _versions(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "gpu": _gpu(),
        "platform": platform.platform(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,  # 1, 5, 15 min: a shared machine
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_result(path: str | Path, result: dict[str, Any], command: list[str] | None = None) -> Path:
    """Write ``result`` with its provenance (key ``provenance``) as JSON to ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"provenance": provenance(command), **result}, indent=2, default=str) + "\n")
    except OSError as error:
        raise AutomlError(f"cannot write benchmark result {str(path)!r}: {error.strerror or error}") from None
    return path
