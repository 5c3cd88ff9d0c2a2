"""Ship the Pareto models: weights, a model card, ONNX and torch.export, and load them back.

``export_study`` writes one folder per trial (``OUT/trial-N/``):

- ``model.safetensors`` - the weights (no pickle), always written;
- ``card.json``        - everything needed to rebuild and use the model: space, genome string,
                         input shape, normalisation, class names, validation accuracy (from the
                         search) and test accuracy (measured here, on the held-out test split the
                         search never saw), FLOPs, params, the accelerators of the search, and
                         the sha256 of every file; written last, so a card means a whole export;
- ``model.onnx``       - checked with ``onnx.checker`` and against torch with onnxruntime;
- ``model.pt2``        - a ``torch.export`` program (``torch.export.load`` reads it).

The weights are the study's stored ones, or, with ``retrain_epochs``, the architecture trained
afresh on train + validation with the search's recipe (without accelerators). A trial whose
weights were not stored (an accelerator reshaped its model) can only be exported by retraining.

Reading back (``load_model``, ``predict``) is :mod:`automl.reporting.loader`; the card's
format and checks are :mod:`automl.reporting.cards`.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from optuna.trial import FrozenTrial, TrialState
from torch import nn

from automl.reporting.cards import (CARD, CARD_FORMAT, CARD_VERSION, FORMATS, ONNX, ONNX_OPSET, ONNX_TOLERANCE, PT2,
                                    WEIGHTS, ExportError, sha256_of)
from automl.reporting.retraining import check_accelerate, final_weights, narrowed_widths, train_config
from automl.store.study import StudyStore

# -- progress ---------------------------------------------------------------------------------

class ExportProgress:
    """Silent by default; the CLI passes :class:`RichExportProgress`."""

    def start(self, total: int) -> None: ...

    def trial_started(self, trial: int, label: str, retrain_epochs: float | None) -> None: ...

    def epoch_finished(self, epoch: int, epochs: int, loss: float) -> None: ...

    def trial_finished(self, card: dict[str, Any]) -> None: ...

    def stop(self) -> None: ...


class RichExportProgress(ExportProgress):
    """A bar over the trials and, while retraining, one over the epochs (like the search's)."""

    def __init__(self, console=None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console or Console(stderr=True)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[note]}"), TimeElapsedColumn(), console=self.console)
        self._trials = self._epochs = None

    def start(self, total: int) -> None:
        self.progress.start()
        self._trials = self.progress.add_task("models", total=total, note="")

    def trial_started(self, trial: int, label: str, retrain_epochs: float | None) -> None:
        if self._epochs is not None:
            self.progress.remove_task(self._epochs)
            self._epochs = None
        if retrain_epochs is not None:
            self._epochs = self.progress.add_task(f"  retraining trial {trial}", total=None, note=label)

    def epoch_finished(self, epoch: int, epochs: int, loss: float) -> None:
        if self._epochs is not None:
            self.progress.update(self._epochs, total=epochs, completed=epoch, note=f"loss {loss:.3f}")

    def trial_finished(self, card: dict[str, Any]) -> None:
        self.progress.advance(self._trials)
        validation = card["validation_accuracy"]
        shown = f" (validation {validation:.4f})" if validation is not None else ""
        self.console.print(f"trial {card['trial']}: test accuracy {card['test_accuracy']:.4f}{shown} "
                           f"-> {card['folder']}")

    def stop(self) -> None:
        self.progress.stop()


# -- choosing what to export ------------------------------------------------------------------

def parse_formats(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"safetensors,onnx"`` -> the formats, validated (safetensors and the card always come)."""
    names = [n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    unknown = [n for n in names if n not in FORMATS]
    if unknown:
        raise ExportError(f"unknown export format {unknown[0]!r} (known: {', '.join(FORMATS)})")
    return tuple(f for f in FORMATS if f in names or f == "safetensors")


@dataclass(frozen=True)
class _Job:
    trial: FrozenTrial  # the trial whose architecture and weights are exported
    asked: int  # the trial number the user named (a duplicate resolves to its original)


def _choose(store: StudyStore, numbers: Sequence[int] | None, retrain_epochs: float | None) -> list[_Job]:
    """The trials to export, checked up front so that nothing is written for a bad request."""
    by_number = {t.number: t for t in store.trials()}
    if numbers:
        jobs = []
        for number in dict.fromkeys(numbers):
            trial = by_number.get(number)
            if trial is None or trial.state != TrialState.COMPLETE:
                state = "no" if trial is None else f"no finished (it is {trial.state.name.lower()})"
                raise ExportError(f"study {store.name!r} has {state} trial {number}")
            original = trial.user_attrs.get("duplicate_of")
            jobs.append(_Job(by_number.get(original, trial) if original is not None else trial, number))
    else:
        jobs = [_Job(t, t.number) for t in store.pareto()]
        if not jobs:
            raise ExportError(f"study {store.name!r} has no finished trial to export")
    if retrain_epochs is None:
        for job in jobs:
            if not job.trial.user_attrs.get("weights_artifact"):
                why = job.trial.user_attrs.get("weights")
                raise ExportError(f"trial {job.trial.number} has no stored weights"
                                  + (f" ({why})" if why else "") + "; export it with --retrain-epochs E")
    return jobs


# -- the study's data and recipe --------------------------------------------------------------

def _study_data(store: StudyStore):
    """The dataset the study searched on (:func:`automl.evaluate.retrain.study_data`)."""
    from automl.evaluate.retrain import study_data

    return study_data(store)


def _export_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> dict[str, Any]:
    """ONNX with a dynamic batch axis, checked by onnx and against torch by onnxruntime."""
    import onnx
    import onnxruntime

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), str(path), input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                          opset_version=ONNX_OPSET, dynamo=False)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = torch.randn((3, *example.shape[1:]), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(inputs).numpy()
    got = session.run(None, {"input": inputs.numpy()})[0]
    difference = float(abs(got - expected).max())
    if not difference <= ONNX_TOLERANCE:
        raise ExportError(f"the ONNX model at {path} differs from torch by {difference:.3g} (> {ONNX_TOLERANCE})")
    return {"file": path.name, "opset": ONNX_OPSET, "input": "input", "output": "logits",
            "max_abs_diff_vs_torch": difference, "checked_with": f"onnxruntime {onnxruntime.__version__}",
            "sha256": sha256_of(path)}


def _export_pt2(model: nn.Module, example: torch.Tensor, path: Path) -> dict[str, Any]:
    """A torch.export program with a dynamic batch dimension."""
    batch = torch.export.Dim("batch", min=1, max=4096)
    name = next(iter(_forward_arguments(model)))
    program = torch.export.export(model, (example,), dynamic_shapes={name: {0: batch}})
    torch.export.save(program, str(path))
    return {"file": path.name, "load_with": "torch.export.load(path).module()", "torch": torch.__version__,
            "sha256": sha256_of(path)}


def _forward_arguments(model: nn.Module) -> list[str]:
    import inspect

    return [p for p in inspect.signature(model.forward).parameters]


def _like_other_files(path: Path) -> None:
    """Give a file the mode a plain ``open()`` gives (0644 under the usual umask): safetensors
    writes its files 0600, which a deployment copying the folder to another user cannot read."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def export_trial(store: StudyStore, job: _Job, data, out: Path, formats: Sequence[str],
                 retrain_epochs: float | None, device: torch.device,
                 progress: ExportProgress, trainer=None, accelerate: str = "") -> dict[str, Any] | None:
    """Export one trial into ``out/trial-N``; returns its card (None on a DDP rank other than
    0, which retrains with the others and writes nothing)."""
    import search_spaces

    from automl.nn.flops import count_flops, count_params

    trial = job.trial
    settings = store.settings
    space = search_spaces.get(settings["space"])
    genome = space.make(trial.params)
    label = space.format(genome)
    progress.trial_started(job.asked, label, retrain_epochs)
    torch.manual_seed(int(trial.user_attrs.get("seed", settings.get("seed", 0))))  # a retrained model's init
    model = space.build(genome, data.input_shape, data.num_classes)
    model, test_accuracy, retrained = final_weights(store, trial, model, data, retrain_epochs, device, progress,
                                                     trainer, accelerate)
    if trainer is not None and not trainer.writes:
        return None
    model = model.to("cpu", memory_format=torch.contiguous_format).eval()
    folder = out / f"trial-{job.asked}"
    c, h, w = data.input_shape
    files = _write_model_files(model, folder, formats, trial.number, torch.zeros((2, c, h, w)))

    attrs = trial.user_attrs
    widths = narrowed_widths(model, space.build(genome, data.input_shape, data.num_classes))
    if widths is not None:  # an accelerator narrowed it while retraining (PruneTrain): its own cost
        attrs = {key: value for key, value in attrs.items() if key not in ("flops", "params")}
    flops = int(attrs.get("flops") or count_flops(model, data.input_shape))
    from automl import __version__

    card = {
        "format": CARD_FORMAT, "version": CARD_VERSION, "automl": __version__,
        "study": store.name, "trial": job.asked, "source_trial": trial.number,
        "space": space.name, "genome": label, "genes": dict(genome),
        "dataset": data.name, "input_shape": [c, h, w], "num_classes": data.num_classes,
        "class_names": list(data.class_names),
        "normalisation": {"mean": list(data.mean), "std": list(data.std), "scale": "pixels / 255"},
        "validation_accuracy": _objective(store, trial, "accuracy"),
        "validation_accuracy_note": "of the weights the search trained, on the validation split",
        "test_accuracy": float(test_accuracy),
        "test_samples": len(data.test),
        "flops": flops, "mflops": flops / 1e6, "params": int(attrs.get("params") or count_params(model)),
        "weights": "retrained" if retrained else "search",
        **({"channel_widths": widths} if widths is not None else {}),
        "retrained": retrained,
        "search": {key: attrs[key] for key in ("epochs", "seconds", "generation", "warm_start_from", "transforms",
                                                "accelerators", "accelerator_reports", "seed", "trained_from",
                                                "distributed") if key in attrs},
        "search_accelerate": settings.get("accelerate", ""),
        "files": files,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (folder / CARD).write_text(json.dumps(card, indent=2, default=_json_default))
    card["folder"] = str(folder)
    progress.trial_finished(card)
    return card


def _write_model_files(model: nn.Module, folder: Path, formats: Sequence[str], trial_number: int,
                       example: torch.Tensor) -> dict[str, Any]:
    """safetensors always, ONNX and torch.export on request; the card's ``files`` entry."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / CARD).unlink(missing_ok=True)  # a card means a complete export: remove the old one first
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS), metadata={"format": "pt", "trial": str(trial_number)})
    _like_other_files(folder / WEIGHTS)
    files: dict[str, Any] = {"safetensors": {"file": WEIGHTS, "sha256": sha256_of(folder / WEIGHTS)}}
    if "onnx" in formats:
        files["onnx"] = _export_onnx(model, example, folder / ONNX)
    if "pt2" in formats:
        files["pt2"] = _export_pt2(model, example, folder / PT2)
    return files


def _objective(store: StudyStore, trial: FrozenTrial, name: str) -> float | None:
    names = [o.name for o in store.objectives]
    return float(trial.values[names.index(name)]) if name in names else None


def _json_default(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)


def export_study(store: StudyStore, out: str | Path, trials: Sequence[int] | None = None,
                 formats: str | Sequence[str] = FORMATS, retrain_epochs: float | None = None,
                 device: str = "auto", progress: ExportProgress | None = None,
                 nproc: int = 1, accelerate: str = "") -> list[dict[str, Any]]:
    """Export the Pareto-optimal trials of a study (or the named ones); returns their cards,
    each with the ``folder`` it was written to. ``nproc`` > 1 (or torchrun) retrains with
    DistributedDataParallel (see :mod:`automl.evaluate.distributed`); a torchrun rank other
    than 0 retrains with the others, writes nothing and returns no card. ``accelerate`` names
    methods the retraining runs with (PruneTrain, for long retraining)."""
    from automl.evaluate.devices import pick_device
    from automl.evaluate.distributed import check_batch, distributed_trainer, torchrun_launch

    chosen_formats = parse_formats(formats)
    if nproc != 1 and retrain_epochs is None:
        raise ExportError("--nproc trains on several processes: it needs --retrain-epochs E")
    launch = torchrun_launch()
    if retrain_epochs is None and launch is not None and launch.rank != 0:
        return []  # under torchrun without retraining there is nothing to share: rank 0 exports
    from automl.reporting.tree import export_tree, is_tree_study

    if is_tree_study(store):  # a grown Tree-CNN: one card for the whole tree (automl.reporting.tree)
        if trials or retrain_epochs is not None:
            raise ExportError(f"study {store.name!r} holds a grown tree: it is exported whole, without "
                              "--trial or --retrain-epochs")
        target = pick_device(device)
        return [export_tree(store, _study_data(store).to(target), out, chosen_formats, target)]
    if retrain_epochs is not None and not (retrain_epochs > 0 and math.isfinite(retrain_epochs)):
        raise ExportError(f"--retrain-epochs must be a positive number, got {retrain_epochs}")
    check_accelerate(accelerate, retrain_epochs, nproc if launch is None else launch.world)
    jobs = _choose(store, trials, retrain_epochs)
    data = _study_data(store)
    target = pick_device(device)
    trainer = distributed_trainer(nproc, target) if retrain_epochs is not None else None
    if trainer is None:
        data.to(target)
    else:  # the ranks move the data to their own devices
        check_batch(train_config(store.settings, retrain_epochs), len(data.train) + len(data.val),
                    trainer.launch.world)
    progress = progress or ExportProgress()
    out = Path(out)
    progress.start(len(jobs))
    try:
        cards = [export_trial(store, job, data, out, chosen_formats, retrain_epochs, target, progress, trainer,
                              accelerate) for job in jobs]
        return [card for card in cards if card is not None]
    finally:
        progress.stop()
        if trainer is not None:
            trainer.close()

