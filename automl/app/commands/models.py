"""Commands that ship models: ``export`` and ``predict``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from automl.app.commands.console import err, out


def export(
    study: str = typer.Option(..., help="Study name."),
    storage: Optional[str] = typer.Option(None, help="Optuna storage URL. (default: sqlite:///studies/STUDY.db)"),
    out_dir: Path = typer.Option(..., "--out", help="Folder to export into (one trial-N sub-folder per model)."),
    trial: Optional[list[int]] = typer.Option(None, help="Trial(s) to export. (default: the Pareto front)"),
    fmt: str = typer.Option("safetensors,onnx,pt2", "--format",
                            help="Comma-separated: safetensors, onnx, pt2 (safetensors and card.json always)."),
    retrain_epochs: Optional[float] = typer.Option(None, help="Retrain each architecture from scratch on "
                                                   "train + validation for this many epochs first."),
    device: str = typer.Option("auto", help="auto, cpu or cuda[:N] (retraining and evaluation)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    as_json: bool = typer.Option(False, "--json", help="Print the model cards as JSON only."),
) -> None:
    """Export Pareto-optimal models: safetensors + model card (with test accuracy), ONNX, torch.export."""
    from automl.evaluate.devices import pick_device
    from automl.reporting.export import ExportProgress, RichExportProgress, export_study, parse_formats
    from automl.store.study import StudyStore

    formats = parse_formats(fmt)
    pick_device(device)  # a misspelt or absent GPU is refused before anything is written
    store = StudyStore.open(study, storage)
    progress = ExportProgress() if quiet or as_json else RichExportProgress(err)
    cards = export_study(store, out_dir, trial, formats, retrain_epochs, device, progress)
    if as_json:
        print(json.dumps(cards, indent=2, default=str))
        return
    if quiet:
        for card in cards:
            print(card["folder"])
        return
    from rich.table import Table

    table = Table(title=f"exported from study {store.name!r}")
    for column in ("trial", "genome", "validation", "test", "MFLOPs", "weights"):
        table.add_column(column, overflow="fold", min_width=24 if column == "genome" else None)
    table.add_column("folder", no_wrap=True)
    for card in cards:
        validation = card["validation_accuracy"]
        table.add_row(str(card["trial"]), card["genome"], "-" if validation is None else f"{validation:.4f}",
                      f"{card['test_accuracy']:.4f}", f"{card['mflops']:.2f}", card["weights"], card["folder"])
    out.print(table)


def predict(
    model: Path = typer.Argument(..., help="An exported model folder (OUT/trial-N of automl export)."),
    images: list[Path] = typer.Argument(..., help="Image files to classify."),
    as_json: bool = typer.Option(False, "--json", help="Print the predictions as JSON."),
) -> None:
    """Print the predicted class of each image file (read with PIL, normalised as the card says)."""
    from automl.reporting.loader import predict as run

    rows = run(model, images)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        print(f"{row['image']}\t{row['class']}\t{row['probability']:.4f}")
