"""Time the cost model's machine calibration in fp32 alone against every native format.

    python docs/benchmarks/calibration_formats.py --out docs/benchmarks/calibration-formats.json

A search records each trial's predicted fp32 training seconds, so a new machine's first search
calibrates first and its first candidate waits for it. Since searches ask for fp32 alone, this
measures what that wait is against the calibration of every native format (what searches paid
before), side by side in one process: fp32, all, fp32 again (the machine's pace may drift
between runs; both fp32 runs are kept). Nothing is cached: each run calibrates afresh.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    from automl.experiments.results import write_result
    from automl.nn.calibrate import calibrate
    from automl.nn.costmodel import NATIVE_CANDIDATES

    runs = []
    for formats in (("fp32",), NATIVE_CANDIDATES, ("fp32",)):
        load = os.getloadavg()[0]
        started = time.perf_counter()
        calibration = calibrate("cpu", formats=formats)
        seconds = time.perf_counter() - started
        measured = [f for f in calibration.tried if calibration.source["conv"].get(f) == "measured"]
        runs.append({"formats": list(formats), "measured": measured, "seconds": round(seconds, 1),
                     "load_before": round(load, 2), "k_fp32": round(calibration.network_scale["fp32"], 3)})
        print(f"{','.join(formats)}: {seconds:.1f} s (measured {','.join(measured)})", file=sys.stderr)
    fp32 = [r["seconds"] for r in runs if r["formats"] == ["fp32"]]
    every = next(r["seconds"] for r in runs if r["formats"] == list(NATIVE_CANDIDATES))
    result = {"benchmark": "calibration-formats", "runs": runs,
              "fp32_seconds_mean": round(sum(fp32) / len(fp32), 1), "all_formats_seconds": every,
              "ratio_all_to_fp32": round(every / (sum(fp32) / len(fp32)), 2),
              "note": "seconds a new machine's first search waits before its first candidate trains: "
                      "calibrate() in fp32 alone (what searches ask for now) against every native format "
                      "(what they asked for before)"}
    write_result(args.out, result, ["python", "docs/benchmarks/calibration_formats.py", *sys.argv[1:]])
    print(args.out)


if __name__ == "__main__":
    main()
