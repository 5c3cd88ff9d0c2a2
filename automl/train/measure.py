"""What is measured on a trained model: validation accuracy, and the BatchNorm statistics
re-estimated first so that accuracy describes the final weights."""

from __future__ import annotations

import torch
from torch import nn

from automl.data import Split


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, split: Split, batch_size: int, samples: int,
                          generator: torch.Generator, device: torch.device,
                          memory_format: torch.memory_format = torch.contiguous_format) -> None:
    """Re-estimate BatchNorm running statistics with the final weights ("precise BN").

    After a short schedule the running averages still remember the early, very different
    weights, and evaluation-mode accuracy can collapse to chance although train-mode
    accuracy is high. A forward pass over ``samples`` training images in train mode with
    cumulative averaging fixes that for a small fraction of an epoch's cost.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms or samples <= 0:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average over the calibration batches
    was_training = model.training
    model.train()
    seen = 0
    for inputs, _ in split.batches(batch_size, shuffle=True, generator=generator, drop_last=True, device=device):
        model(inputs.contiguous(memory_format=memory_format))
        seen += len(inputs)
        if seen >= samples:
            break
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.train(was_training)


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, batch_size: int = 500,
             device: torch.device | str = "cpu", channels_last: bool = True) -> float:
    """Top-1 accuracy of ``model`` on ``split`` in eval mode."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    for inputs, targets in split.batches(batch_size, device=device):
        inputs = inputs.contiguous(memory_format=memory_format)
        correct += (model(inputs).argmax(dim=1) == targets).sum()
    model.train(was_training)
    return correct.item() / max(len(split), 1)
