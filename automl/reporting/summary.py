"""A study's results for people: the Pareto table and a plot of all trials with the front."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optuna.trial import FrozenTrial, TrialState
from rich.console import Console

from automl.reporting.figures import fit_title, readable_log_axis
from automl.reporting.tables import show_table
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
    """The Pareto table (one record per line where the console is too narrow for it)."""
    rows = front_rows(store)
    counts = ", ".join(f"{n} {state}" for state, n in study_counts(store).items()) or "no trials"
    names = [o.name for o in store.objectives]
    header = ["trial", "genome", *("MFLOPs" if name == "flops" else name for name in names), "params", "seconds"]
    cells = []
    for row in rows:
        line = [str(row["trial"]), row["genome"]]
        line += [f"{row[name] / 1e6:.2f}" if name == "flops" else f"{row[name]:.4f}" for name in names]
        line.append(f"{row['params']:,}" if "params" in row else "-")
        line.append(f"{row['seconds']:.1f}" if "seconds" in row else "-")
        cells.append(line)
    show_table(console, f"Pareto front of study {store.name!r} ({counts})", header, cells,
               right=[h for h in header if h != "genome"])


def plot_front(store: StudyStore, path: str | Path) -> Path:
    """PNG of every COMPLETE trial (objective 2 vs objective 1) with the front highlighted."""
    import matplotlib.pyplot as plt

    figure = front_figure(store)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


def front_figure(store: StudyStore):
    """The matplotlib figure :func:`plot_front` saves (tests read its ticks and title)."""
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
    xs = [scaled(t, 1) for t in trials]
    axes.scatter(xs, [scaled(t, 0) for t in trials], s=18, alpha=0.5,
                 color="tab:gray", label=f"all trials ({len(trials)})")
    axes.plot([scaled(t, 1) for t in front], [scaled(t, 0) for t in front], "o-", color="tab:red",
              drawstyle="steps-post" if objectives[0].direction == "max" else "default",
              label=f"Pareto front ({len(front)})")
    pruned = [t for t in store.trials((TrialState.PRUNED,)) if "partial_values" in t.user_attrs]
    if pruned:
        names = [o.name for o in objectives]
        partial = [[t.user_attrs["partial_values"][n] for n in names] for t in pruned]
        partial_x = [v[1] / 1e6 if x_name == "flops" else v[1] for v in partial]
        xs += partial_x
        axes.scatter(partial_x, [v[0] for v in partial],
                     s=18, marker="x", color="tab:blue", alpha=0.6,
                     label=f"stopped early, partial accuracy ({len(pruned)})")
    for trial in front:
        axes.annotate(str(trial.number), (scaled(trial, 1), scaled(trial, 0)), fontsize=7,
                      textcoords="offset points", xytext=(3, -9))
    axes.set_xlabel("MFLOPs (forward, one sample)" if x_name == "flops" else x_name)
    axes.set_ylabel(f"validation {y_name}" if y_name == "accuracy" else y_name)
    if x_name == "flops" and xs:
        readable_log_axis(axes.xaxis, min(xs), max(xs))
    fit_title(figure, f"study {store.name}: all trials and the Pareto front")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    return figure
