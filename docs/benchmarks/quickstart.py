"""Time the README's quick start on this machine: install, first search, quick test suite.

    python docs/benchmarks/quickstart.py --out docs/benchmarks/quickstart.json [--phases install,search,tests]

Each phase runs as a user would run it, in a fresh temporary folder, and is timed on the wall
clock. The load average before and after each phase is recorded: a figure taken on a busy
machine is an upper bound, and the README says so. The search phase also records what warm
starts did (children, how many inherited, epochs and seconds saved).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

TORCH_CPU = "https://download.pytorch.org/whl/cpu"


def timed(command: list[str], cwd: Path, log: Path, env: dict | None = None) -> dict:
    """Run a command with its output in ``log``; its wall-clock seconds and the load around it."""
    before = os.getloadavg()[0]
    started = time.perf_counter()
    with log.open("w") as handle:
        code = subprocess.run(command, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT,
                              env={**os.environ, **(env or {})}).returncode
    return {"command": " ".join(command), "seconds": round(time.perf_counter() - started, 1), "exit_code": code,
            "load_before": round(before, 2), "load_after": round(os.getloadavg()[0], 2)}


def install(tmp: Path) -> dict:
    """A fresh venv: the CPU build of torch first (where the index has it), then the project."""
    venv = tmp / "venv"
    result = {"venv": timed([sys.executable, "-m", "venv", str(venv)], tmp, tmp / "venv.log")}
    pip = str(venv / "bin" / "pip")
    result["torch_cpu"] = timed([pip, "install", "torch", "torchvision", "--index-url", TORCH_CPU], tmp,
                                tmp / "torch.log")
    result["project"] = timed([pip, "install", "-e", f"{ROOT}[test]"], tmp, tmp / "install.log")
    result["seconds"] = round(sum(step["seconds"] for step in result.values()), 1)
    size = subprocess.run(["du", "-sm", str(venv)], capture_output=True, text=True).stdout.split()
    result["venv_mb"] = int(size[0]) if size else None
    return result


def search(tmp: Path) -> dict:
    """`automl search --config studies/quickstart.toml`, its output redirected to a file, with
    an empty cost-model cache as on a new machine (the search calibrates first; its seconds
    are in the log and in ``calibration_seconds``)."""
    log = tmp / "search.log"
    result = timed([sys.executable, str(ROOT / "cli.py"), "search", "--config", str(ROOT / "studies/quickstart.toml")],
                   tmp, log, {"PYTHONPATH": str(ROOT), "AUTOML_CACHE_DIR": str(tmp / "cache")})
    from automl.reporting.report import evaluated_trials, warm_start_savings
    from automl.store.study import StudyStore

    (db,) = (tmp / "studies").glob("*.db")
    store = StudyStore.open(db.stem, f"sqlite:///{db}")
    savings = warm_start_savings(store) or {}
    trials = evaluated_trials(store)
    lines = log.read_text().splitlines()
    calibrated = [re.search(r"calibrated in (\d+) s", line) for line in lines]
    result.update(calibration_seconds=next((int(m.group(1)) for m in calibrated if m), None),evaluations=len(trials), training_seconds=round(sum(t.user_attrs.get("seconds", 0) for t in trials), 1),
                  warm_starts={k: v for k, v in savings.items() if k != "sentence"},
                  genomes_whole_in_log=all(any(t.user_attrs["genome"] in line for line in lines) for t in trials),
                  closing_lines=lines[-3:])
    return result


def tests(tmp: Path) -> dict:
    """The quick suite (what CI runs), from the project root."""
    return timed([sys.executable, "-m", "pytest", "-q"], ROOT, tmp / "pytest.log")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--phases", default="install,search,tests",
                        help="comma-separated: install (a fresh venv, downloads torch), search, tests (quick suite)")
    args = parser.parse_args()
    from automl.experiments.results import write_result

    phases = {"install": install, "search": search, "tests": tests}
    chosen = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = [p for p in chosen if p not in phases]
    if unknown:
        parser.error(f"unknown phase {unknown[0]!r} (known: {', '.join(phases)})")
    tmp = Path(tempfile.mkdtemp(prefix="automl-quickstart-"))
    result: dict = {"benchmark": "quickstart", "cpu_count": os.cpu_count()}
    try:
        for phase in chosen:
            result[phase] = phases[phase](tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_result(args.out, result, ["python", "docs/benchmarks/quickstart.py", *sys.argv[1:]])
    print(args.out)


if __name__ == "__main__":
    main()
