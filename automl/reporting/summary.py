"""A study's results for people: the Pareto table and a plot of all trials with the front."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.table import Table

from automl.store.study import StudyStore


def front_rows(store: StudyStore) -> list[dict[str, Any]]:
    """One row per Pareto-optimal trial: trial, genome, objective values and side facts."""
    rows = []
    for trial in store.pareto():
        row = {"trial": trial.number, "genome": trial.user_attrs.get("genome", "")}
        for objective, value in zip(store.objectives, trial.values):
            row[objective.name] = value
        for key in ("mflops", "params", "seconds", "epochs", "generation", "parents"):
            if key in trial.user_attrs:
                row[key] = trial.user_attrs[key]
        rows.append(row)
    return rows


def study_counts(store: StudyStore) -> dict[str, int]:
    counts: dict[str, int] = {}
    for trial in store.trials():
        counts[trial.state.name.lower()] = counts.get(trial.state.name.lower(), 0) + 1
    return counts


def print_front(store: StudyStore, console: Console) -> None:
    rows = front_rows(store)
    counts = ", ".join(f"{n} {state}" for state, n in study_counts(store).items()) or "no trials"
    table = Table(title=f"Pareto front of study {store.name!r} ({counts})")
    table.add_column("trial", justify="right")
    table.add_column("genome", overflow="fold", min_width=24)
    names = [o.name for o in store.objectives]
    for name in names:
        table.add_column("MFLOPs" if name == "flops" else name, justify="right")
    table.add_column("params", justify="right")
    table.add_column("seconds", justify="right")
    for row in rows:
        cells = [str(row["trial"]), row["genome"]]
        for name in names:
            value = row[name]
            cells.append(f"{value / 1e6:.2f}" if name == "flops" else f"{value:.4f}")
        cells.append(f"{row['params']:,}" if "params" in row else "-")
        cells.append(f"{row['seconds']:.1f}" if "seconds" in row else "-")
        table.add_row(*cells)
    console.print(table)


def plot_front(store: StudyStore, path: str | Path) -> Path:
    """PNG of every COMPLETE trial (objective 2 vs objective 1) with the front highlighted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    objectives = store.objectives
    if len(objectives) != 2:
        raise ValueError("the plot needs exactly two objectives")
    x_name, y_name = objectives[1].name, objectives[0].name

    def scaled(trial: FrozenTrial, index: int) -> float:
        value = trial.values[index]
        return value / 1e6 if objectives[index].name == "flops" else value

    trials = store.trials((TrialState.COMPLETE,))
    front = store.pareto()
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    axes.scatter([scaled(t, 1) for t in trials], [scaled(t, 0) for t in trials], s=18, alpha=0.5,
                 color="tab:gray", label=f"all trials ({len(trials)})")
    axes.plot([scaled(t, 1) for t in front], [scaled(t, 0) for t in front], "o-", color="tab:red",
              drawstyle="steps-post" if objectives[0].direction == "max" else "default",
              label=f"Pareto front ({len(front)})")
    pruned = [t for t in store.trials((TrialState.PRUNED,)) if "partial_values" in t.user_attrs]
    if pruned:
        names = [o.name for o in objectives]
        partial = [[t.user_attrs["partial_values"][n] for n in names] for t in pruned]
        axes.scatter([v[1] / 1e6 if x_name == "flops" else v[1] for v in partial], [v[0] for v in partial],
                     s=18, marker="x", color="tab:blue", alpha=0.6,
                     label=f"stopped early, partial accuracy ({len(pruned)})")
    for trial in front:
        axes.annotate(str(trial.number), (scaled(trial, 1), scaled(trial, 0)), fontsize=7,
                      textcoords="offset points", xytext=(3, -9))
    axes.set_xlabel("MFLOPs (forward, one sample)" if x_name == "flops" else x_name)
    axes.set_ylabel(f"validation {y_name}" if y_name == "accuracy" else y_name)
    if x_name == "flops" and trials:
        from matplotlib.ticker import NullFormatter, ScalarFormatter

        axes.set_xscale("log")
        axes.xaxis.set_major_formatter(ScalarFormatter())
        axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_title(f"study {store.name}")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
