"""What the committed benchmark results say about each accelerator, for ``automl accelerators``.

A method's kind says what it *can* save; whether it saved anything is a measurement. This
module reads the result files of ``automl bench accelerators`` and ``automl ablate`` committed
under ``docs/benchmarks/`` (JSON with provenance) and returns, per method, the figures of the
newest result measured on the same kind of device (``cpu``, or the GPU's name): speed-up per
candidate, accuracy change, Kendall tau against plain training and the seed-noise ceiling of
that run. Outside a source checkout (no ``docs/benchmarks``) there is nothing to read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "benchmarks"
BENCHMARKS = ("accelerators", "ablate")


def device_kind(gpu: str | None) -> str:
    return gpu or "cpu"


def _results(folder: Path) -> list[tuple[str, Path, dict[str, Any]]]:
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("benchmark") in BENCHMARKS and isinstance(data.get("table"), dict):
            provenance = data.get("provenance") or {}
            found.append((str(provenance.get("date", "")), path, data))
    return sorted(found, key=lambda item: item[0])


def last_measured(device: str = "cpu", folder: Path = RESULTS) -> dict[str, dict[str, Any]]:
    """Method (or ``a+b`` entry) -> its newest committed figures on this kind of device."""
    figures: dict[str, dict[str, Any]] = {}
    for date, path, data in _results(folder):  # oldest first: newer results overwrite
        provenance = data.get("provenance") or {}
        if device_kind(provenance.get("gpu")) != device:
            continue
        ceiling = (data.get("seed_noise") or {}).get("kendall_tau")
        for entry, row in data["table"].items():
            if not isinstance(row, dict) or "measured_speedup" not in row:
                continue
            figures[entry] = {"speedup": row["measured_speedup"], "accuracy_delta": row.get("accuracy_delta_mean"),
                              "kendall_tau": row.get("kendall_tau"), "ceiling_tau": ceiling,
                              "candidates": data.get("candidates"), "seeds": data.get("seeds"),
                              "file": str(path.relative_to(folder.parents[1])) if folder.parents else path.name,
                              "date": date}
    return figures


def for_method(figures: dict[str, dict[str, Any]], name: str) -> dict[str, Any] | None:
    """The method's own newest figures: measured under its bare name, else under one of its
    option settings alone (``subset:fraction=0.7``, not a pair), labelled with those options."""
    if name in figures:
        return figures[name]
    settings = [(row["date"], entry) for entry, row in figures.items()
                if entry.startswith(name + ":") and "+" not in entry]
    if not settings:
        return None
    entry = max(settings)[1]
    return {**figures[entry], "options": entry.split(":", 1)[1]}


def describe(figures: dict[str, Any] | None) -> str:
    """One short cell: '1.37x, -14.3 pt, tau 0.73 (ceiling 0.77)' or 'not measured'."""
    if not figures:
        return "not measured"
    parts = [f"{figures['speedup']:.2f}x"]
    if isinstance(figures.get("accuracy_delta"), (int, float)):
        parts.append(f"{100 * figures['accuracy_delta']:+.1f} pt")
    if isinstance(figures.get("kendall_tau"), (int, float)):
        ceiling = figures.get("ceiling_tau")
        parts.append(f"tau {figures['kendall_tau']:.2f}" + (f" (ceiling {ceiling:.2f})" if ceiling is not None else ""))
    text = ", ".join(parts)
    return f"{text} at {figures['options']}" if figures.get("options") else text
