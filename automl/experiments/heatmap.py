"""The heat-map PNG of ``automl ablate``'s pair matrix: what each pair measured and how it
departs from what its singles predict, methods on both axes, refused pairs crossed out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from automl.core.errors import AutomlError
from automl.experiments import combos

PANELS = (
    ("measured_speedup", "speed-up (diagonal: alone)", "{:.2f}x", "viridis", None),
    ("speedup_interaction", "speed-up / product of singles", "{:.2f}", "RdBu", 1.0),
    ("accuracy_interaction", "accuracy change - sum of singles (pt)", "{:+.1f}", "RdBu", 0.0),
)


def _panel(axes, pairs: dict[str, Any], key: str, title: str, fmt: str, cmap: str, centre: float | None,
           refused: set[tuple[int, int]]) -> None:
    methods = pairs["methods"]
    scale = 100.0 if key == "accuracy_interaction" else 1.0
    values = np.array([[np.nan if v is None else scale * v for v in row] for row in pairs[key]], dtype=float)
    finite = values[np.isfinite(values)]
    limits: dict[str, float] = {}
    if centre is not None and finite.size:
        spread = max(float(np.max(np.abs(finite - centre))), 1e-9)
        limits = {"vmin": centre - spread, "vmax": centre + spread}
    image = axes.imshow(np.ma.masked_invalid(values), cmap=cmap, **limits)
    axes.figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    n = len(methods)
    for i in range(n):
        for j in range(n):
            if (i, j) in refused:
                axes.text(j, i, "refused", ha="center", va="center", fontsize=6, color="grey")
            elif np.isfinite(values[i, j]):
                r, g, b, _ = image.cmap(image.norm(values[i, j]))
                ink = "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "black"  # readable on any cell
                axes.text(j, i, fmt.format(values[i, j]), ha="center", va="center", fontsize=7, color=ink)
    axes.set_xticks(range(n), methods, rotation=60, ha="right", fontsize=7)
    axes.set_yticks(range(n), methods, fontsize=7)
    axes.set_title(title, fontsize=9)


def pair_heatmap(result: dict[str, Any], path: str | Path) -> Path:
    """Write the three panels of ``result["pairs"]`` (an :func:`ablate` result) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = result["pairs"]
    methods = pairs["methods"]
    refused = set()
    for entry in result["refused"]:
        parts = combos.members(entry)
        if len(parts) == 2 and all(p in methods for p in parts):
            i, j = methods.index(parts[0]), methods.index(parts[1])
            refused |= {(i, j), (j, i)}
    size = 2.2 + 0.45 * len(methods)
    figure, axes = plt.subplots(1, len(PANELS), figsize=(len(PANELS) * size, size + 0.6), layout="constrained")
    for ax, (key, title, fmt, cmap, centre) in zip(axes, PANELS):
        _panel(ax, pairs, key, title, fmt, cmap, centre, refused)
    figure.suptitle(f"ablate: {result['candidates']} candidates, {result['epochs']:g} epoch(s), "
                    f"{result['seeds']} seed(s)", fontsize=10)
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=120)
    except OSError as error:
        raise AutomlError(f"cannot write heat-map {str(path)!r}: {error.strerror or error}") from None
    finally:
        plt.close(figure)
    return path
