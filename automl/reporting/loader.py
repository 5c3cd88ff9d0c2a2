"""Load an exported model back (no pickle) and classify image files with it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from automl.reporting.cards import WEIGHTS, ExportError, load_card, sha256_of


def load_model(path: str | Path) -> nn.Module:
    """Rebuild an exported model from its card and safetensors weights, in eval mode.

    No pickle is involved: the architecture comes from the card's space and genome string (and
    its channel widths, where PruneTrain narrowed the model), the weights from safetensors,
    checked against the sha256 the card records.
    """
    import search_spaces
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(path)
    card = load_card(folder)
    if card.get("kind") == "tree":  # a grown Tree-CNN: one safetensors file per node
        from automl.reporting.tree import load_tree

        return load_tree(folder, card)
    weights = folder / card["files"].get("safetensors", {}).get("file", WEIGHTS)
    if not weights.is_file():
        raise ExportError(f"weights file {str(weights)!r} is missing")
    expected = card["files"].get("safetensors", {}).get("sha256")
    if expected and sha256_of(weights) != expected:
        raise ExportError(f"weights file {str(weights)!r} does not match its model card (sha256 differs): "
                          "corrupted or replaced")
    space = search_spaces.get(card["space"])
    genes = card.get("genes")  # exact; the genome string is for people (and older cards)
    genome = space.make(genes) if isinstance(genes, dict) else space.parse(card["genome"])
    model = space.build(genome, tuple(card["input_shape"]), len(card["class_names"]))
    if card.get("channel_widths"):  # narrowed by PruneTrain while it was retrained for export
        from accelerators.channel_groups import narrow_to

        narrow_to(model, card["channel_widths"])
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ExportError(f"weights file {str(weights)!r} cannot be read: {first}") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        first = " ".join(str(error).split())[:200]
        raise ExportError(f"weights file {str(weights)!r} does not fit genome {card['genome']}: {first}") from None
    return model.eval()


def read_image(path: str | Path, card: dict[str, Any]) -> torch.Tensor:
    """One image file as the model's normalised input (C, H, W): converted to the card's
    channels, resized to its size, scaled to 0-1 and normalised with its mean and std.
    The card is one :func:`load_card` checked (sizes bounded, std > 0)."""
    import numpy as np
    from PIL import Image

    from automl.data.images import open_image

    c, h, w = card["input_shape"]
    image = open_image(path, "L" if c == 1 else "RGB")
    if image.size != (w, h):
        image = image.resize((w, h), Image.BILINEAR)
    pixels = np.asarray(image, dtype=np.float32)
    x = torch.from_numpy(pixels.reshape(h, w, c).transpose(2, 0, 1).copy()) / 255.0
    mean = torch.tensor(card["normalisation"]["mean"], dtype=torch.float32).view(-1, 1, 1)
    std = torch.tensor(card["normalisation"]["std"], dtype=torch.float32).view(-1, 1, 1)
    return (x - mean) / std


BATCH_BYTES = 256 * 1024**2  # input images held at once by predict


@torch.no_grad()
def predict(path: str | Path, images: Sequence[str | Path], batch_size: int = 256,
            model: nn.Module | None = None) -> list[dict[str, Any]]:
    """The predicted class (and its softmax probability) of each image file."""
    card = load_card(path)
    model = model or load_model(path)
    c, h, w = card["input_shape"]
    batch_size = max(1, min(batch_size, BATCH_BYTES // (4 * c * h * w)))
    rows: list[dict[str, Any]] = []
    for start in range(0, len(images), batch_size):
        chunk = list(images[start:start + batch_size])
        inputs = [read_image(p, card) for p in chunk]
        scores = model(torch.stack(inputs))
        # a tree's outputs are log path probabilities already (automl.grow.model)
        probabilities = scores.exp() if card.get("kind") == "tree" else torch.softmax(scores, dim=1)
        confidence, index = probabilities.max(dim=1)
        for image, x, i, p in zip(chunk, inputs, index.tolist(), confidence.tolist()):
            rows.append({"image": str(image), "class": card["class_names"][i], "index": i, "probability": p,
                         "warning": unlike_training(x, card)})
    return rows


FAR_MEAN = 1.5  # in training standard deviations: the training data's mean is 0 after normalisation
STD_RANGE = (0.2, 5.0)  # the training data's std is 1 after normalisation


def unlike_training(x: torch.Tensor, card: dict[str, Any]) -> str | None:
    """Why a normalised image looks unlike the training data, or None.

    After the card's normalisation the training data has mean 0 and std 1; an image far
    from that (inverted polarity, a blank or saturated picture) gets a confident answer that
    means little. Polarity is named where the training data is clearly dark or light.
    """
    mean, std = float(x.mean()), float(x.std())
    if abs(mean) <= FAR_MEAN and STD_RANGE[0] <= std <= STD_RANGE[1]:
        return None
    facts = f"mean {mean:+.1f} and std {std:.2f} after normalisation (training data: 0 and 1)"
    raw = sum(card["normalisation"]["mean"]) / len(card["normalisation"]["mean"])
    if abs(mean) > FAR_MEAN and (raw < 0.3 or raw > 0.7):
        trained = "dark" if raw < 0.3 else "light"
        if (mean > 0) == (trained == "dark"):
            return f"{facts}: its background looks {'light' if trained == 'dark' else 'dark'} where the " \
                   f"training images are {trained} (inverted polarity?)"
    return facts

