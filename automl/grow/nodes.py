"""Training the parts of a Tree-CNN: the root's output layer alone, a whole node, and the
likelihood matrix that decides where new classes go.

Training effort is the paper's: weights updated x samples trained. Retraining only the root's
output layer updates that layer's weights; its inputs (the root's pooled features) come from the
rest of the root, frozen after the first task, so :class:`FeatureCache` computes them once per
sample over the whole stream (the likelihood matrix and every later output layer reuse them).
That forward pass updates no weight, but its seconds are part of the growth's wall-clock. On
those fixed features the output layer is fitted in closed form by default (ridge regression and
a softmax temperature, :func:`fit_output_layer`); the paper's gradient descent is
:func:`train_output_layer`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from automl.data import Dataset, Split
from automl.train.loop import TrainConfig, evaluate, make_optimizer, make_scheduler, train


@dataclass
class Trained:
    """A trained model with what training it cost and reached."""

    model: nn.Module
    accuracy: float  # on the validation split of the data it was trained on
    seconds: float
    samples: int
    weights_updated: int

    @property
    def effort(self) -> float:
        return float(self.weights_updated) * float(self.samples)


def output_layer(model: nn.Module) -> tuple[nn.Module, str, nn.Linear]:
    """The model's last ``nn.Linear`` (its output layer), with its parent and attribute name."""
    name = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not name:
        raise ValueError(f"{type(model).__name__} has no nn.Linear output layer")
    path = name[-1].split(".")
    parent = model.get_submodule(".".join(path[:-1])) if len(path) > 1 else model
    return parent, path[-1], getattr(parent, path[-1])


@torch.no_grad()
def enlarge_output(model: nn.Module, sources: Sequence[int | None], seed: int = 0) -> nn.Module:
    """Replace the output layer by one with ``len(sources)`` outputs; output ``i`` keeps the
    weights of old output ``sources[i]``, a None starts fresh (PyTorch's default init)."""
    parent, attr, old = output_layer(model)
    torch.manual_seed(seed)
    new = nn.Linear(old.in_features, len(sources)).to(old.weight.device)
    for i, source in enumerate(sources):
        if source is not None:
            new.weight[i] = old.weight[source]
            new.bias[i] = old.bias[source]
    setattr(parent, attr, new)
    return model


@torch.no_grad()
def _features(model: nn.Module, layer: nn.Linear, split: Split, device: torch.device,
              batch_size: int = 500) -> torch.Tensor:
    """The output layer's inputs for every sample of ``split`` (the rest of the model frozen)."""
    captured: list[torch.Tensor] = []
    handle = layer.register_forward_pre_hook(lambda _, args: captured.append(args[0].detach()))
    try:
        model.eval()
        for x, _ in split.batches(batch_size, device=device):
            model(x)
    finally:
        handle.remove()
    return torch.cat(captured) if captured else torch.zeros((0, layer.in_features), device=device)


@torch.no_grad()
def likelihood(root: nn.Module, features: FeatureCache, classes: Sequence[int], per_class: int = 500) -> np.ndarray:
    """Average softmax of the root over the training samples of each class (outputs x classes)."""
    _, _, layer = output_layer(root)
    columns = [torch.softmax(layer(features.of(root, [cls])[:per_class]), dim=1).mean(dim=0).cpu().numpy()
               for cls in classes]
    return np.stack(columns, axis=1)


class FeatureCache:
    """The root's output-layer inputs for the training samples of the classes seen so far,
    each sample's computed once: valid while everything before the output layer stays as it
    is (a Tree-CNN freezes it after the first task)."""

    def __init__(self, split: Split, device: torch.device) -> None:
        self.split, self.device = split, device
        self.values: torch.Tensor | None = None
        self.done = torch.zeros(len(split), dtype=torch.bool, device=split.y.device)

    def of(self, root: nn.Module, classes: Sequence[int]) -> torch.Tensor:
        """Features of every training sample of ``classes``, in the split's order."""
        wanted = torch.isin(self.split.y, torch.tensor(list(classes), device=self.split.y.device))
        missing = wanted & ~self.done
        if missing.any():
            _, _, layer = output_layer(root)
            computed = _features(root, layer, Split(x=self.split.x[missing], y=self.split.y[missing]), self.device)
            if self.values is None:
                self.values = torch.zeros((len(self.split), computed.shape[1]), device=computed.device)
            self.values[missing.to(computed.device)] = computed
            self.done |= missing
        if self.values is None:
            return torch.zeros((0, output_layer(root)[2].in_features), device=self.device)
        return self.values[wanted.to(self.values.device)]


def train_output_layer(root: nn.Module, data: Dataset, sources: Sequence[int | None], config: TrainConfig,
                       seed: int, device: torch.device, *, features: torch.Tensor) -> Trained:
    """Retrain only the root's output layer (enlarged to ``sources``) on ``data``, whose labels
    are the root's outputs; the rest of the root is frozen. ``features``: the layer's inputs for
    ``data.train``'s samples, in order (from a :class:`FeatureCache`)."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    root = enlarge_output(root.to(device), sources, seed)
    _, _, layer = output_layer(root)
    features = Split(x=features, y=data.train.y)
    steps_per_epoch = max(1, len(features) // config.batch_size)
    total = max(1, round(config.epochs * steps_per_epoch))
    optimizer = make_optimizer(layer, config)
    scheduler = make_scheduler(optimizer, config, total)
    samples = step = 0
    while step < total:
        for x, y in features.batches(config.batch_size, shuffle=True, generator=generator, drop_last=True):
            loss = F.cross_entropy(layer(x), y, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            samples, step = samples + len(y), step + 1
            if step >= total:
                break
    seconds = time.perf_counter() - started
    accuracy = evaluate(root, data.val, device=device, channels_last=config.channels_last)
    return Trained(root, accuracy, seconds, samples, sum(p.numel() for p in layer.parameters()))


RIDGE = 1.0  # L2 penalty of the closed-form output layer, on standardised features
MAX_TEMPERATURE = 100.0  # ridge logits span about 1: beyond this factor the softmax is a hard vote anyway
HEAD_FITS = ("ridge", "sgd")  # how the root's output layer is retrained (README: automl grow)


@torch.no_grad()
def fit_output_layer(root: nn.Module, data: Dataset, sources: Sequence[int | None], device: torch.device, *,
                     features: torch.Tensor) -> Trained:
    """Retrain only the root's output layer (enlarged to ``sources``; every weight is refitted)
    in closed form: ridge regression of the one-hot outputs on the ``features``, one pass over
    them, then one temperature fitted to the samples' leave-one-out logits, so the softmax the
    next task's likelihood matrix reads is not as confident as on samples the fit has seen. A
    few SGD epochs stop short of the layer's optimum on fixed features; this reaches it
    (measured: README, ``automl bench grow``)."""
    started = time.perf_counter()
    root = enlarge_output(root.to(device), sources)
    _, _, layer = output_layer(root)
    x, y = features.to(torch.float64), data.train.y.to(features.device)
    weight, bias, held_out = ridge_fit(x, F.one_hot(y, len(sources)).to(x.dtype))
    temperature, steps = calibrate_temperature(held_out, y)
    layer.weight.copy_((weight * temperature).to(layer.weight.dtype))
    layer.bias.copy_((bias * temperature).to(layer.bias.dtype))
    seconds = time.perf_counter() - started
    accuracy = evaluate(root, data.val, device=device)
    # effort: every weight of the layer once per sample, and the temperature once per sample and step
    return Trained(root, accuracy, seconds, len(y), sum(p.numel() for p in layer.parameters()) + steps)


def ridge_fit(x: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ridge regression of ``targets`` on ``x``, each feature standardised (the bias is not
    penalised): the weight and bias on raw ``x``, and each sample's leave-one-out prediction
    (exact for ridge: the residual over one minus the sample's leverage). A feature that barely
    varies (dead, or active in a few samples) is scaled as if it varied a tenth as much as the
    typical one, so it cannot take a large raw weight."""
    spread = x.std(dim=0)
    floor = max(0.1 * float(spread.median()), 1e-6 * float(spread.max()), 1e-12)
    mean, scale = x.mean(dim=0), spread.clamp_min(floor)
    z = torch.cat([(x - mean) / scale, torch.ones(len(x), 1, dtype=x.dtype, device=x.device)], dim=1)
    penalty = RIDGE * torch.eye(z.shape[1], dtype=x.dtype, device=x.device)
    penalty[-1, -1] = 0.0
    gram = z.T @ z + penalty
    solution = torch.linalg.solve(gram, z.T @ targets)
    leverage = (z * torch.linalg.solve(gram, z.T).T).sum(dim=1, keepdim=True)
    held_out = targets + (z @ solution - targets) / (1 - leverage).clamp_min(1e-6)
    weight = (solution[:-1] / scale[:, None]).T
    return weight, solution[-1] - (mean / scale) @ solution[:-1], held_out


def calibrate_temperature(logits: torch.Tensor, labels: torch.Tensor, steps: int = 20) -> tuple[float, int]:
    """The factor ``t`` minimising the cross-entropy of ``softmax(t * logits)`` (convex in ``t``:
    Newton's method, each step at most 4x up or down), at most ``MAX_TEMPERATURE`` (separable
    logits have no finite optimum); returns it and the steps taken."""
    t = 1.0
    for step in range(1, steps + 1):
        p = torch.softmax(t * logits, dim=1)
        expected = (p * logits).sum(dim=1)
        gradient = float((expected - logits.gather(1, labels[:, None]).squeeze(1)).mean())
        curvature = float(((p * logits ** 2).sum(dim=1) - expected ** 2).mean())
        if abs(gradient) < 1e-6 or curvature <= 1e-12:
            return t, step
        new = min(max(t - gradient / curvature, t / 4), 4 * t, MAX_TEMPERATURE)
        if abs(new - t) <= 1e-6 * t:
            return new, step
        t = new
    return t, steps


def train_whole(model: nn.Module, data: Dataset, config: TrainConfig, seed: int, device: torch.device) -> Trained:
    """Train every weight of ``model`` on ``data`` (fine-tuning, or from scratch)."""
    result = train(model, data, config, seed=seed, device=device)
    return Trained(result.model, result.accuracy, result.seconds, result.samples,
                   sum(p.numel() for p in result.model.parameters()))


def finetune_config(config: TrainConfig, epochs: float) -> TrainConfig:
    return replace(config, epochs=epochs)
