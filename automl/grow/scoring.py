"""How a classifier over some of a dataset's classes does on all, old and new classes.

Shared by the grow mode and its benchmark, so a Tree-CNN and the baselines it is compared
with are scored the same way: the held-out test split, restricted to the classes seen so far.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import torch
from torch import nn

from automl.data import Dataset


@torch.no_grad()
def predictions(model: nn.Module, data: Dataset, order: Sequence[int], device: torch.device,
                split: str = "test", batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """(true class, predicted class) of every sample of ``split`` whose class is in ``order``;
    the model's output ``i`` means class ``order[i]``."""
    part = getattr(data, split)
    keep = torch.isin(part.y, torch.tensor(list(order), device=part.y.device))
    x, y = part.x[keep], part.y[keep]
    lookup = torch.tensor(list(order), device=device)
    model.eval()
    predicted = [lookup[model(x[i:i + batch_size].to(device)).argmax(dim=1)] for i in range(0, len(y), batch_size)]
    return y.to(device), torch.cat(predicted) if predicted else y.to(device)


def accuracies(truth: torch.Tensor, predicted: torch.Tensor, old: Collection[int], new: Collection[int]
               ) -> dict[str, float | None]:
    """Accuracy on all samples, on those of ``old`` classes and of ``new`` classes (None: none)."""
    def share(classes: Collection[int] | None) -> float | None:
        mask = torch.ones_like(truth, dtype=torch.bool) if classes is None else \
            torch.isin(truth, torch.tensor(list(classes), device=truth.device))
        return float((predicted[mask] == truth[mask]).float().mean()) if mask.any() else None

    return {"all": share(None), "old": share(old) if old else None, "new": share(new) if new else None}


def score(model: nn.Module, data: Dataset, order: Sequence[int], old: Collection[int], new: Collection[int],
          device: torch.device) -> dict[str, float | None]:
    truth, predicted = predictions(model, data, order, device)
    return accuracies(truth, predicted, old, new)
