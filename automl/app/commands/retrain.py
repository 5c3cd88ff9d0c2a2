"""``automl train``: train one trial's architecture for longer, stored as a new trial."""

from __future__ import annotations

import json
from typing import Any, Optional

import typer

from automl.app.commands.console import STUDY_HELP, err, out

NPROC_HELP = ("Processes to train on with DistributedDataParallel (gloo on CPUs, NCCL on GPUs: one GPU "
              "each). The study's batch size stays the global batch, split into NPROC equal shares; CPU "
              "threads per process = cores / NPROC. Under torchrun leave it out: the ranks come from "
              "RANK, WORLD_SIZE, LOCAL_RANK.")


def train(
    study: Optional[str] = typer.Option(None, help=STUDY_HELP),
    storage: Optional[str] = typer.Option(None, help="Optuna storage URL. (default: sqlite:///studies/STUDY.db)"),
    trial: int = typer.Option(..., help="Number of the trial whose architecture to train (numbers: `automl pareto`)."),
    epochs: float = typer.Option(..., help="Epochs to train it for, from scratch, with the study's recipe "
                                 "(may be fractional)."),
    accelerate: str = typer.Option("", help="Accelerators for this training, e.g. prunetrain "
                                   "(see `automl accelerators`). (default: none)"),
    nproc: int = typer.Option(1, help=NPROC_HELP),
    device: str = typer.Option("auto", help="auto, cpu or cuda[:N]; with --nproc, cuda means cuda:0 to "
                               "cuda:NPROC-1."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress; print the new trial only."),
    as_json: bool = typer.Option(False, "--json", help="Print the new trial as JSON (progress on stderr)."),
) -> None:
    """Retrain one trial's architecture for longer and store it as a new trial of the study.

    Trained from scratch; the new trial names its source (user attribute trained_from), so
    pareto, report and export see it (e.g. `automl export --trial N`)."""
    import accelerators
    from automl.app.progress import choose_progress
    from automl.evaluate.distributed import check_ddp_safe, torchrun_launch
    from automl.evaluate.retrain import train_trial
    from automl.reporting.studies import resolve_study
    from automl.store.study import StudyStore

    launch = torchrun_launch()
    lead = launch is None or launch.rank == 0  # under torchrun only rank 0 reports
    world = launch.world if launch is not None else nproc
    chosen = accelerators.parse(accelerate)  # a method that cannot run is refused before anything opens
    if world > 1:
        check_ddp_safe(chosen, world)
    store = StudyStore.open(resolve_study(study, storage), storage)
    progress = _EpochProgress(choose_progress(err, quiet or not lead, as_json))
    try:
        made = train_trial(store, trial, epochs, accelerate, nproc, device, progress)
    finally:
        progress.done()
    if made is None:  # a torchrun rank other than 0
        return
    row = _row(store, made)
    if as_json:
        print(json.dumps(row, indent=2, default=str))
    else:
        out.print(_sentence(row), markup=False, highlight=False)
    if made.state.name == "FAIL":
        raise typer.Exit(1)
    if not (quiet or as_json):
        flags = f"--study {store.name}" + (f" --storage {storage}" if storage else "")
        err.print(f"Next: automl pareto {flags}, automl export {flags} --trial {made.number} --out exported",
                  markup=False, highlight=False)


def _row(store, made) -> dict[str, Any]:
    a = made.user_attrs
    row = {"study": store.name, "storage": store.url, "trial": made.number, "state": made.state.name,
           "trained_from": a.get("trained_from"), "genome": a.get("genome")}
    if made.values:
        row.update({o.name: v for o, v in zip(store.objectives, made.values)})
    for key in ("mflops", "params", "epochs", "seconds", "samples_per_s", "accelerators", "distributed",
                "fail_reason", "weights_artifact"):
        if key in a:
            row[key] = a[key]
    return row


def _sentence(row: dict[str, Any]) -> str:
    if row["state"] != "COMPLETE":
        why = row.get("fail_reason") or "stopped early (its values are the user attribute partial_values)"
        return f"trial {row['trial']} (from trial {row['trained_from']}) {row['state'].lower()}: {why}"
    return (f"trial {row['trial']}: accuracy {row['accuracy']:.4f}, {row['mflops']:.2f} MFLOPs, "
            f"{row['epochs']:.3g} epoch(s) in {row['seconds']:.1f} s (trained from trial {row['trained_from']}; "
            f"{row['genome']})")


class _EpochProgress:
    """The search's renderers for one training: log lines (every tenth of the epochs) when
    stderr is no terminal, else a bar over the epochs."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.started = False

    def message(self, text: str) -> None:
        self.inner.message(text)

    def epoch_finished(self, epoch: int, epochs: int, loss: float) -> None:
        if not self.started and hasattr(self.inner, "progress"):  # rich: one epochs bar
            self.inner.progress.start()
            self.inner.candidate_started("training")
        self.started = True
        self.inner.epoch_finished(epoch, epochs, loss)

    def done(self) -> None:
        if self.started and hasattr(self.inner, "progress"):
            self.inner.progress.stop()

    def __getattr__(self, name: str):  # the rest of the progress protocol: as the inner renderer
        return getattr(self.inner, name)
