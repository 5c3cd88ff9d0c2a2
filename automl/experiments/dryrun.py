"""``automl bench dryrun``: what ``automl search --dry-run`` predicts against the same search run.

Why: the dry run is a forecast a user plans by, so it is checked the only honest way - by
running the search it forecasts, right after, in the same process, on the same machine, and
comparing wall-clocks. The parts are compared too (training, validation, everything else, and
how many children inherited weights), so a miss says where it comes from. The machine's
calibration is measured afresh first, under the load the search then meets; the load average
is sampled throughout (the machine may be shared).
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

TARGET_RATIO_ERROR = 0.25


class LoadSampler:
    """The 1-minute load average every ``every`` seconds while it runs (a daemon thread)."""

    def __init__(self, every: float = 5.0) -> None:
        self.every, self.samples = every, [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])

    def summary(self) -> dict[str, float]:
        return {"min": min(self.samples), "median": statistics.median(self.samples), "max": max(self.samples),
                "samples": len(self.samples)}


def measured_parts(candidates: list, wall: float) -> dict[str, Any]:
    """The real search's wall-clock split as the prediction splits it, from its trials."""
    done = [c for c in candidates if c.values is not None]
    training = sum(float(c.attrs.get("seconds", 0.0)) for c in done)
    evaluation = sum(float(c.attrs.get("eval_seconds", 0.0)) for c in done)
    errors = [abs(c.attrs["predicted_seconds"] / c.attrs["seconds"] - 1) for c in done
              if c.attrs.get("predicted_seconds") and c.attrs.get("seconds")]
    return {"seconds": wall, "evaluations": len(done), "warm_started": sum(bool(c.attrs.get("warm_start")) for c in done),
            "training_s": training, "evaluation_s": evaluation, "fixed_s": wall - training - evaluation,
            "fixed_s_per_evaluation": (wall - training - evaluation) / max(len(done), 1),
            "per_trial_training_median_abs_error": statistics.median(errors) if errors else None,
            "trials": [{"genome": c.genome.key(), "generation": c.generation,
                        "warm_start": bool(c.attrs.get("warm_start")), "epochs": c.attrs.get("epochs"),
                        "training_s": c.attrs.get("seconds"), "predicted_training_s": c.attrs.get("predicted_seconds"),
                        "evaluation_s": c.attrs.get("eval_seconds")} for c in done]}


def bench_dryrun(predict: Callable[[], dict[str, Any]], search: Callable[[], Any],
                 calibrate: Callable[[], Any], settings: dict[str, Any], clock: str = "wall",
                 progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Calibrate, predict (``predict`` is ``--dry-run``), then run the search (``search``
    returns the engine's result); predicted against measured wall-clock and their parts.

    ``clock="cpu"``: the search's process CPU time is what ``predict`` predicted (one torch
    thread); its trials' seconds stay wall-clock, so the parts are then compared in wall-clock
    only where the machine was idle."""
    say = progress or (lambda _: None)
    with LoadSampler() as load:
        say("calibrating the cost model in fp32 on this machine under its current load (about half a minute on 2 idle cores) ...")
        started = time.perf_counter()
        calibration = calibrate()
        calibration_s = time.perf_counter() - started
        say(f"calibrated in {calibration_s:.0f} s; predicting ...")
        prediction = predict()
        say(f"predicted {prediction['predicted_seconds']:.0f} s (dry run took {prediction['dry_run_s']:.0f} s); "
            f"running the search ...")
        started, cpu = time.perf_counter(), time.process_time()
        result = search()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    measured = measured_parts(result.candidates, wall if clock == "wall" else cpu)
    measured["wall_s"], measured["process_cpu_s"] = wall, cpu
    if clock != "wall":  # trials time training and validation in wall-clock: no CPU-time remainder to compare
        measured["fixed_s"] = measured["fixed_s_per_evaluation"] = None
        measured["parts_clock"] = "wall (trials' own seconds)"
    ratio = prediction["predicted_seconds"] / measured["seconds"]
    return {"settings": settings, "clock": clock, "calibration": calibration.to_json(), "calibration_s": calibration_s,
            "load_average_1min": load.summary(), "predicted": prediction, "measured": measured,
            "ratio_predicted_to_measured": ratio, "target_ratio_error": TARGET_RATIO_ERROR,
            "meets_target": abs(ratio - 1) <= TARGET_RATIO_ERROR}
