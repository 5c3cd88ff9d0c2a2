"""Commands that ship models: ``export`` and ``predict``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from automl.app.commands.console import STUDY_HELP, err, out


def export(
    study: Optional[str] = typer.Option(None, help=STUDY_HELP),
    storage: Optional[str] = typer.Option(None, help="Optuna storage URL. (default: sqlite:///studies/STUDY.db)"),
    out_dir: Path = typer.Option(..., "--out", help="Folder to export into (one trial-N sub-folder per model)."),
    trial: Optional[list[int]] = typer.Option(None, help="Trial number to export; repeat for several "
                                               "(--trial 3 --trial 7). (default: the Pareto front)"),
    fmt: str = typer.Option("safetensors,onnx,pt2", "--format",
                            help="Comma-separated: safetensors, onnx, pt2 (safetensors and card.json always)."),
    retrain_epochs: Optional[float] = typer.Option(None, help="Retrain each architecture from scratch on "
                                                   "train + validation for this many epochs first. (default: "
                                                   "export the weights the search trained)"),
    accelerate: str = typer.Option("", help="With --retrain-epochs: accelerators the retraining runs with, as for "
                                   "search (e.g. 'prunetrain' for long runs: the model it narrows is exported "
                                   "with its channel widths). Methods that read the validation split while "
                                   "training (earlystop) or change the model's input (wae) are refused."),
    device: str = typer.Option("auto", help="auto, cpu or cuda[:N] (retraining and evaluation)."),
    nproc: int = typer.Option(1, help="With --retrain-epochs: retrain on this many processes with "
                              "DistributedDataParallel (gloo on CPUs, NCCL on GPUs: one GPU each); the "
                              "study's batch size stays the global batch, split into NPROC shares. Under "
                              "torchrun leave it out."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    as_json: bool = typer.Option(False, "--json", help="Print the model cards as JSON only."),
) -> None:
    """Export the Pareto front (or --trial) to OUT/trial-N: safetensors + card, ONNX, torch.export.

    The card holds the test accuracy; `automl predict OUT/trial-N IMAGE` and `automl.load_model` use it."""
    from automl.app.paths import check_writable_folder
    from automl.evaluate.devices import pick_device
    from automl.evaluate.distributed import torchrun_launch
    from automl.reporting.export import ExportProgress, RichExportProgress, export_study, parse_formats
    from automl.reporting.studies import resolve_study
    from automl.store.study import StudyStore

    formats = parse_formats(fmt)
    pick_device(device)  # a misspelt or absent GPU is refused before anything is written
    check_writable_folder(out_dir, "--out")
    store = StudyStore.open(resolve_study(study, storage), storage)
    launch = torchrun_launch()
    if launch is not None and launch.rank != 0:  # under torchrun rank 0 writes and reports
        quiet, as_json = True, False
    progress = ExportProgress() if quiet or as_json else RichExportProgress(err)
    cards = export_study(store, out_dir, trial, formats, retrain_epochs, device, progress, nproc, accelerate)
    if as_json:
        print(json.dumps(cards, indent=2, default=str))
        return
    if quiet:
        for card in cards:
            print(card["folder"])
        return
    from automl.reporting.tables import show_table

    header = ["trial", "genome", "validation", "test", "MFLOPs", "weights", "folder"]
    rows = [[str(card["trial"]), card["genome"],
             "-" if card["validation_accuracy"] is None else f"{card['validation_accuracy']:.4f}",
             f"{card['test_accuracy']:.4f}", f"{card['mflops']:.2f}", card["weights"], card["folder"]]
            for card in cards]
    show_table(out, f"exported from study {store.name!r}", header, rows,
               right=["trial", "validation", "test", "MFLOPs"])


def predict(
    model: Path = typer.Argument(..., help="An exported model folder (OUT/trial-N of automl export)."),
    images: list[Path] = typer.Argument(..., help="Image files to classify."),
    as_json: bool = typer.Option(False, "--json", help="Print the predictions as JSON."),
) -> None:
    """Print the predicted class of each image file (read with PIL, normalised as the card says)."""
    from automl.reporting.loader import predict as run

    rows = run(model, images)
    odd = [row for row in rows if row["warning"]]
    if odd:
        more = f" (and {len(odd) - 1} more)" if len(odd) > 1 else ""
        err.print(f"automl: warning: {odd[0]['image']} looks unlike the model's training data{more}: "
                  f"{odd[0]['warning']}; see the card's input_shape and normalisation", markup=False)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        print(f"{row['image']}\t{row['class']}\t{row['probability']:.4f}")
