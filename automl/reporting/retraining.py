"""Retraining an architecture for export: from scratch on train + validation, the test split
held out, optionally with accelerators (PruneTrain is for such long runs) - and what to record
when one of them narrowed the model, so that the exported files still rebuild it."""

from __future__ import annotations

from typing import Any

import torch
from optuna.trial import FrozenTrial
from torch import nn

from automl.reporting.cards import ExportError
from automl.store.study import StudyStore


def train_config(settings: dict[str, Any], epochs: float):
    """The study's training recipe for ``epochs`` (imported on use: the evaluation layer is heavy)."""
    from automl.evaluate.retrain import train_config

    return train_config(settings, epochs)


def train_plus_val(data):
    """A dataset whose training split is train + validation and whose val split is the test
    split: the trainer reads "val" only for its final evaluation, which is then the test
    accuracy (accelerators that would read it while training are refused: ``export_safe``)."""
    from automl.data import Dataset, Split

    if data.train.in_memory and data.val.in_memory:
        train = Split(x=torch.cat([data.train.x, data.val.x]), y=torch.cat([data.train.y, data.val.y]))
    else:
        train = Split(y=torch.cat([data.train.y, data.val.y]),
                      stream=torch.utils.data.ConcatDataset([data.train.stream, data.val.stream]))
    return Dataset(data.name, train, data.test, data.test, data.input_shape, data.class_names,
                   data.mean, data.std, data.info)


def final_weights(store: StudyStore, trial: FrozenTrial, model: nn.Module, data, retrain_epochs: float | None,
                   device: torch.device, progress,
                   trainer=None, accelerate: str = "") -> tuple[nn.Module, float, dict | None]:
    """The search's stored weights (scored on the test split), or the architecture retrained
    from scratch on train + validation (on several processes with a DDP ``trainer``, with the
    ``accelerate`` methods); with what the retraining did."""
    import accelerators
    from automl.train.loop import evaluate, train

    settings = store.settings
    seed = int(trial.user_attrs.get("seed", settings.get("seed", 0)))
    if retrain_epochs is None:
        model.load_state_dict(store.download_weights(trial))
        model.to(device)
        return model, evaluate(model, data.test, device=device), None
    config = train_config(settings, retrain_epochs)
    chosen = accelerators.parse(accelerate)  # fresh methods for every model: they keep state
    result = (trainer or train)(model, train_plus_val(data), config, seed=seed, device=device,
                                on_epoch=progress.epoch_finished, accelerators=chosen)
    retrained = {"epochs": result.epochs, "seconds": result.seconds, "seed": seed,
                 "samples": result.samples, "on": "train + validation", "recipe": config.as_dict(),
                 "accelerators": [method.spec() for method in chosen], "accelerator_reports": result.accelerators}
    if trainer is not None:
        retrained["distributed"] = trainer.describe(device, config.batch_size)
    return result.model, result.accuracy, retrained


def narrowed_widths(model: nn.Module, as_built: nn.Module) -> dict[str, int] | None:
    """The channel widths of a model an accelerator narrowed while it trained (PruneTrain),
    which its genome alone no longer rebuilds; None where it still has its genome's shapes."""
    built = {key: value.shape for key, value in as_built.state_dict().items()}
    trained = {key: value.shape for key, value in model.state_dict().items()}
    if built == trained:
        return None
    from accelerators.channel_groups import channel_widths

    return channel_widths(model)


def check_accelerate(accelerate: str, retrain_epochs: float | None, world: int = 1) -> None:
    """Refuse, before anything trains, methods that cannot train a model for export."""
    if not accelerate:
        return
    if retrain_epochs is None:
        raise ExportError("--accelerate trains: it needs --retrain-epochs E")
    import accelerators
    from automl.evaluate.distributed import check_ddp_safe

    chosen = accelerators.parse(accelerate)
    for method in chosen:
        if not method.export_safe:
            raise ExportError(f"accelerator {method.name!r} cannot train a model for export: {method.export_note}")
    if world > 1:
        check_ddp_safe(chosen, world)
