"""A study's results on one page, readable without a server: HTML (self-contained) or Markdown.

The page shows the Pareto front (all trials, front highlighted), the hypervolume reached after
each generation, the table of Pareto-optimal models, and - where the study has them - the
accelerators used (with what they reported) and the warm starts (how many children inherited
their parent's weights and what that cost against training from scratch).

Hypervolume is computed on normalised objectives so that generations and studies compare:
accuracy as ``1 - accuracy``, every other objective in minimisation form divided by its largest
absolute value in the study; the reference point is 1.1 on every axis (so the most expensive
trial still counts), and the volume is reported as a share of the box up to it (1 at most).
"""

from __future__ import annotations

import base64
import html
import io
import statistics
from pathlib import Path
from typing import Any

import numpy as np
from optuna.trial import FrozenTrial, TrialState

from automl.core.errors import AutomlError
from automl.core.pareto import hypervolume, normalise
from automl.store.study import StudyStore
from automl.reporting.figures import fit_title
from automl.reporting.summary import front_rows, study_counts

FORMATS = ("html", "md")
REFERENCE = 1.1
SETTINGS_SHOWN = ("space", "dataset", "strategy", "population", "budget", "epochs", "warm_epochs", "warm_start",
                  "batch_size", "lr", "seed", "preselect", "accelerate", "max_flops", "max_params", "device")


# -- facts ------------------------------------------------------------------------------------

def evaluated_trials(store: StudyStore) -> list[FrozenTrial]:
    """COMPLETE trials that were really evaluated (not copies of a stored genome)."""
    return [t for t in store.trials((TrialState.COMPLETE,))
            if t.user_attrs.get("duplicate_of") is None and not t.user_attrs.get("infeasible")]


def searched_trials(store: StudyStore) -> list[FrozenTrial]:
    """The evaluated trials the search itself made: without those ``automl train`` added
    (``trained_from``), which belong on the front but not in the search's history."""
    return [t for t in evaluated_trials(store) if t.user_attrs.get("trained_from") is None]


def normalised_points(trials: list[FrozenTrial], store: StudyStore) -> np.ndarray:
    """Objective values in minimisation form scaled to about [0, 1] (see the module docstring)."""
    return normalise([t.values for t in trials], store.objectives)


def hypervolume_by_generation(store: StudyStore) -> list[dict[str, Any]]:
    """Hypervolume of every trial the search evaluated up to and including each generation."""
    trials = searched_trials(store)
    if not trials:
        return []
    points = normalised_points(trials, store)
    generations = np.array([int(t.user_attrs.get("generation", 0) or 0) for t in trials])
    rows = []
    for generation in sorted(set(generations.tolist())):
        upto = generations <= generation
        rows.append({"generation": generation, "trials": int(upto.sum()),
                     "new_trials": int((generations == generation).sum()),
                     "hypervolume": hypervolume(points[upto], [REFERENCE] * points.shape[1])
                     / REFERENCE ** points.shape[1]})  # a share of the reference box: at most 1
    return rows


def accelerator_facts(store: StudyStore) -> list[dict[str, Any]]:
    """Per accelerator: its kind, trials that used it and the mean of each number it reported."""
    used: dict[str, list[dict[str, Any]]] = {}
    for trial in evaluated_trials(store):
        for name, report in (trial.user_attrs.get("accelerator_reports") or {}).items():
            used.setdefault(name, []).append(report if isinstance(report, dict) else {})
        for spec in trial.user_attrs.get("accelerators") or []:
            name = str(spec).split(":", 1)[0]
            used.setdefault(name, [])
    rows = []
    for name, reports in sorted(used.items()):
        numbers: dict[str, list[float]] = {}
        for report in reports:
            for key, value in report.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    numbers.setdefault(key, []).append(float(value))
        rows.append({"accelerator": name, "kind": _kind(name), "trials": len(reports),
                     "means": {k: statistics.fmean(v) for k, v in sorted(numbers.items())}})
    return rows


def _kind(name: str) -> str:
    try:
        import accelerators

        return accelerators.get(name).kind
    except Exception:  # an accelerator of a plug-in that is not installed here
        return "?"


def warm_start_facts(store: StudyStore) -> dict[str, Any] | None:
    """How many trials were warm-started (Net2Net) and what they cost next to scratch ones."""
    trials = searched_trials(store)
    warm = [t for t in trials if t.user_attrs.get("warm_start_from") is not None]
    if not warm:
        return None
    scratch = [t for t in trials if t.user_attrs.get("warm_start_from") is None]

    def mean(group: list[FrozenTrial], key: str) -> float | None:
        values = [float(t.user_attrs[key]) for t in group if isinstance(t.user_attrs.get(key), (int, float))]
        return statistics.fmean(values) if values else None

    moves: dict[str, int] = {}
    for trial in warm:
        for move in trial.user_attrs.get("transforms") or []:
            words = [w for w in str(move).split()[1:] if "->" not in w]  # "s2 deepen 1->2" -> "deepen"
            kind = " ".join(words) or str(move)
            moves[kind] = moves.get(kind, 0) + 1
    return {"warm_started": len(warm), "from_scratch": len(scratch),
            "mean_seconds_warm": mean(warm, "seconds"), "mean_seconds_scratch": mean(scratch, "seconds"),
            "mean_epochs_warm": mean(warm, "epochs"), "mean_epochs_scratch": mean(scratch, "epochs"),
            "moves": dict(sorted(moves.items(), key=lambda kv: -kv[1]))}


def warm_start_savings(store: StudyStore) -> dict[str, Any] | None:
    """How many children (trials after generation 0) inherited weights, and the training
    epochs and seconds that saved against the full ``--epochs`` each would have trained from
    scratch. Seconds are estimated at the scratch trials' measured seconds per epoch and FLOP
    (a short warm run's own rate would count its fixed costs many times over), else at the
    child's own rate. None when the study has no children or ran without warm starts."""
    trials = searched_trials(store)
    children = [t for t in trials if int(t.user_attrs.get("generation", 0) or 0) > 0]
    full = store.settings.get("epochs")
    if not children or store.settings.get("warm_start") is False or not isinstance(full, (int, float)):
        return None
    epochs_saved = seconds_saved = 0.0
    warm = [t for t in trials if t.user_attrs.get("warm_start_from") is not None]
    scratch = [t.user_attrs for t in trials if t.user_attrs.get("warm_start_from") is None
               and all(isinstance(t.user_attrs.get(k), (int, float)) for k in ("seconds", "epochs", "flops"))]
    work = sum(a["epochs"] * a["flops"] for a in scratch)
    rate = sum(a["seconds"] for a in scratch) / work if work > 0 else None  # seconds per epoch and FLOP
    for trial in warm:
        epochs, seconds, flops = (trial.user_attrs.get(k) for k in ("epochs", "seconds", "flops"))
        if isinstance(epochs, (int, float)) and epochs > 0 and full > epochs:
            epochs_saved += full - epochs
            if rate is not None and isinstance(flops, (int, float)):
                seconds_saved += rate * flops * (full - epochs)
            elif isinstance(seconds, (int, float)):
                seconds_saved += seconds / epochs * (full - epochs)
    sentence = (f"Warm starts (Net2Net): {len(warm)} of {len(children)} children inherited a trained parent's "
                f"weights and trained {_fmt(statistics.fmean(t.user_attrs.get('epochs', full) for t in warm), 3)} "
                f"instead of {_fmt(float(full), 3)} epoch(s): {epochs_saved:.1f} epochs and about "
                f"{seconds_saved:.0f} s of training saved." if warm else
                f"Warm starts (Net2Net): none of the {len(children)} children was within a quarter of the "
                "genes of a trained parent, so all trained from scratch.")
    return {"children": len(children), "warm_started": len(warm), "epochs_saved": epochs_saved,
            "seconds_saved": seconds_saved, "sentence": sentence}


UNSET = {"accelerate": "none", "max_flops": "no limit", "max_params": "no limit", "warm_epochs": "default"}


def shown_settings(settings: dict[str, Any], trials: list[FrozenTrial]) -> dict[str, Any]:
    """The study's settings as a reader needs them: the device the trials really ran on
    (not ``auto``), the warm-start epochs really used, and words for options left unset."""
    shown = {k: settings[k] for k in SETTINGS_SHOWN if k in settings}
    for key, words in UNSET.items():
        if key in shown and shown[key] in (None, ""):
            shown[key] = words
    devices = sorted({str(t.user_attrs["device"]) for t in trials if t.user_attrs.get("device")})
    if devices:
        used = ", ".join(devices)
        shown["device"] = used if shown.get("device") in (None, *devices) else f"{shown['device']} (used: {used})"
    warm = sorted({round(float(t.user_attrs["epochs"]), 3) for t in trials
                   if t.user_attrs.get("warm_start_from") is not None and isinstance(t.user_attrs.get("epochs"), (int, float))})
    if warm and shown.get("warm_epochs") == UNSET["warm_epochs"]:
        shown["warm_epochs"] = f"{', '.join(f'{e:g}' for e in warm)} (default)"
    return shown


def prediction_facts(trials: list[FrozenTrial]) -> dict[str, Any] | None:
    """The cost model's predicted training seconds against the measured ones, where trials have both."""
    pairs = [(float(t.user_attrs["predicted_seconds"]), float(t.user_attrs["seconds"])) for t in trials
             if isinstance(t.user_attrs.get("predicted_seconds"), (int, float)) and t.user_attrs.get("seconds")]
    if not pairs:
        return None
    errors = [abs(p - m) / m for p, m in pairs]
    return {"trials": len(pairs), "predicted_seconds": sum(p for p, _ in pairs),
            "measured_seconds": sum(m for _, m in pairs), "median_abs_error": statistics.median(errors),
            "worst_abs_error": max(errors)}


def report_facts(store: StudyStore) -> dict[str, Any]:
    """Everything the page shows, as plain data (also what ``--json`` prints)."""
    trials = evaluated_trials(store)
    front = front_rows(store)
    by_number = {t.number: t for t in store.trials()}
    for row in front:
        attrs = by_number[row["trial"]].user_attrs
        row["warm_start_from"] = attrs.get("warm_start_from")
        row["accelerators"] = attrs.get("accelerators") or []
    settings = store.settings
    data = settings.get("data") or {}
    return {
        "study": store.name, "storage": store.url,
        "settings": shown_settings(settings, trials),
        "data": {k: data[k] for k in ("dataset", "input_shape", "num_classes", "train", "val", "test") if k in data},
        "objectives": [[o.name, o.direction] for o in store.objectives],
        "counts": study_counts(store), "evaluated": len(trials),
        "training_seconds": sum(float(t.user_attrs.get("seconds", 0.0) or 0.0) for t in trials),
        "front": front,
        "hypervolume": hypervolume_by_generation(store),
        "accelerators": accelerator_facts(store),
        "warm_starts": warm_start_facts(store),
        "warm_start_savings": warm_start_savings(store),


        "predicted": prediction_facts(trials),
    }


# -- figures ----------------------------------------------------------------------------------

def _pareto_png(store: StudyStore) -> bytes | None:
    from automl.reporting.summary import plot_front

    if len(store.objectives) != 2 or not store.trials((TrialState.COMPLETE,)):
        return None
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return plot_front(store, Path(tmp) / "pareto.png").read_bytes()


def hypervolume_figure(rows: list[dict[str, Any]], title: str):
    """Hypervolume (share of the reference box, 0-1) after each generation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.2), dpi=120)
    axes.plot([r["generation"] for r in rows], [r["hypervolume"] for r in rows], "o-", color="tab:blue")
    axes.set_xlabel("generation")
    axes.set_ylabel("hypervolume (normalised)")
    fit_title(figure, f"study {title}: hypervolume of all trials up to each generation")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def _hypervolume_png(rows: list[dict[str, Any]], title: str) -> bytes | None:
    if not rows:
        return None
    import matplotlib.pyplot as plt

    figure = hypervolume_figure(rows, title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


# -- rendering --------------------------------------------------------------------------------

def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v, digits) for v in value) or "-"
    return str(value) or "-"


def _tables(facts: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]], str]]:
    """(title, header, rows, note) of every table, shared by the HTML and Markdown pages."""
    tables = []
    tables.append(("Study", ["setting", "value"],
                   [[k, _fmt(v)] for k, v in {**facts["settings"], **facts["data"]}.items()]
                   + [["trials", ", ".join(f"{n} {s}" for s, n in facts["counts"].items()) or "none"],
                      ["training seconds (all trials)", f"{facts['training_seconds']:.1f}"]]
                   + _predicted_rows(facts.get("predicted")), ""))
    names = [name for name, _ in facts["objectives"]]
    header = ["trial", "genome", *["MFLOPs" if n == "flops" else f"validation {n}" if n == "accuracy" else n
                                   for n in names], "params", "seconds", "epochs", "warm start from", "accelerators"]
    rows = []
    for row in facts["front"]:
        cells = [str(row["trial"]), row["genome"]]
        for name in names:
            cells.append(f"{row[name] / 1e6:.2f}" if name == "flops" else f"{row[name]:.4f}")
        cells += [f"{row['params']:,}" if "params" in row else "-", _fmt(row.get("seconds"), 3),
                  _fmt(row.get("epochs"), 3), _fmt(row.get("warm_start_from")), _fmt(row.get("accelerators"))]
        rows.append(cells)
    tables.append(("Pareto-optimal models", header, rows,
                   "Validation accuracy as measured by the search; `automl export` measures test accuracy."))
    if facts["hypervolume"]:
        tables.append(("Hypervolume by generation", ["generation", "new trials", "trials so far", "hypervolume"],
                       [[str(r["generation"]), str(r["new_trials"]), str(r["trials"]), f"{r['hypervolume']:.4f}"]
                        for r in facts["hypervolume"]],
                       f"Objectives normalised (1 - accuracy; others / their largest value); reference "
                       f"{REFERENCE} on each axis; hypervolume as a share of the box up to it (1 at most)."))
    if facts["accelerators"]:
        tables.append(("Accelerators", ["accelerator", "kind", "trials", "mean of what it reported"],
                       [[r["accelerator"], r["kind"], str(r["trials"]),
                         "; ".join(f"{k} {_fmt(v, 3)}" for k, v in r["means"].items()) or "-"]
                        for r in facts["accelerators"]],
                       "Emulated accelerators report FLOPs they would save on hardware that exploits them, "
                       "not time saved here."))
    warm = facts["warm_starts"]
    if warm:
        moves = "Moves applied: " + (", ".join(f"{k} x{n}" for k, n in warm["moves"].items()) or "none")
        note = " ".join(filter(None, [(facts.get("warm_start_savings") or {}).get("sentence"), moves]))
        tables.append(("Warm starts (Net2Net)", ["", "warm-started", "from scratch"],
                       [["trials", str(warm["warm_started"]), str(warm["from_scratch"])],
                        ["mean training seconds", _fmt(warm["mean_seconds_warm"], 3),
                         _fmt(warm["mean_seconds_scratch"], 3)],
                        ["mean epochs", _fmt(warm["mean_epochs_warm"], 3), _fmt(warm["mean_epochs_scratch"], 3)]],
                       note))
    return tables


def _predicted_rows(predicted: dict[str, Any] | None) -> list[list[str]]:
    """The cost model's row of the Study table: predicted vs measured training seconds."""
    if not predicted:
        return []
    return [["training seconds predicted by the cost model",
             f"{predicted['predicted_seconds']:.1f} vs {predicted['measured_seconds']:.1f} measured over "
             f"{predicted['trials']} trials (median error {predicted['median_abs_error']:.0%}, "
             f"worst {predicted['worst_abs_error']:.0%})"]]


_CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:70em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f3f3f3}td{font-variant-numeric:tabular-nums}p.note{color:#555;font-size:.9em}
img{max-width:100%}code{font-size:.9em}"""


def render_html(facts: dict[str, Any], pareto_png: bytes | None, hypervolume_png: bytes | None) -> str:
    """One self-contained page: styles inline, figures as data URIs, no scripts, no links out."""
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>automl report: {e(facts['study'])}</title><style>{_CSS}</style></head><body>",
             f"<h1>Study <code>{e(facts['study'])}</code></h1>",
             f"<p>Storage <code>{e(facts['storage'])}</code>; {facts['evaluated']} evaluated trials, "
             f"{len(facts['front'])} on the Pareto front.</p>"]
    for title, png in (("Pareto front", pareto_png), ("Hypervolume over generations", hypervolume_png)):
        if png is not None:
            data = base64.b64encode(png).decode("ascii")
            parts.append(f'<h2>{title}</h2><img alt="{title}" src="data:image/png;base64,{data}">')
    for title, header, rows, note in _tables(facts):
        parts.append(f"<h2>{e(title)}</h2><table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows]
        parts.append("</table>" + (f'<p class="note">{e(note)}</p>' if note else ""))
    parts.append("</body></html>")
    return "\n".join(parts)


def render_markdown(facts: dict[str, Any], figures: dict[str, str]) -> str:
    """Markdown that links the PNGs written beside it."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [f"# Study `{facts['study']}`", "",
             f"Storage `{facts['storage']}`; {facts['evaluated']} evaluated trials, "
             f"{len(facts['front'])} on the Pareto front.", ""]
    for title, name in figures.items():
        lines += [f"## {title}", "", f"![{title}]({name})", ""]
    for title, header, rows, note in _tables(facts):
        lines += [f"## {title}", "", "| " + " | ".join(cell(h) for h in header) + " |",
                  "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
        lines += ["", note, ""] if note else [""]
    return "\n".join(lines)


def write_report(store: StudyStore, out: str | Path, fmt: str = "html") -> Path:
    """Write the report into folder ``out``; returns the page's path (report.html or report.md)."""
    if fmt not in FORMATS:
        raise AutomlError(f"unknown report format {fmt!r} (known: {', '.join(FORMATS)})")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise AutomlError(f"--out {str(out)!r} is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    facts = report_facts(store)
    pareto_png = _pareto_png(store)
    hypervolume_png = _hypervolume_png(facts["hypervolume"], store.name)
    if fmt == "html":
        page = out / "report.html"
        page.write_text(render_html(facts, pareto_png, hypervolume_png), encoding="utf-8")
        return page
    figures = {}
    for title, name, png in (("Pareto front", "pareto.png", pareto_png),
                             ("Hypervolume over generations", "hypervolume.png", hypervolume_png)):
        if png is not None:
            (out / name).write_bytes(png)
            figures[title] = name
    page = out / "report.md"
    page.write_text(render_markdown(facts, figures), encoding="utf-8")
    return page
