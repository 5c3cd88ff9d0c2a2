"""The model card of an exported folder: its file names, format and the checks on reading it.

``card.json`` holds everything needed to rebuild and use a model (space, genome, input shape,
normalisation, class names, accuracies, FLOPs, checksums); it is written last by
:mod:`automl.reporting.export`, so a card means a whole export.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from automl.core.errors import AutomlError

CARD = "card.json"
WEIGHTS = "model.safetensors"
ONNX = "model.onnx"
PT2 = "model.pt2"
FORMATS = ("safetensors", "onnx", "pt2")
CARD_FORMAT = "automl-model-card"
CARD_VERSION = 1
ONNX_OPSET = 17
ONNX_TOLERANCE = 1e-4  # max abs difference of logits, onnxruntime vs torch, on random inputs


class ExportError(AutomlError):
    """A trial cannot be exported, or an exported model cannot be read."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_card(path: str | Path) -> dict[str, Any]:
    """The model card of an exported folder, checked for what rebuilding the model needs."""
    folder = Path(path)
    card_path = folder / CARD
    if not folder.is_dir():
        raise ExportError(f"no exported model at {str(folder)!r} (export one with: automl export)")
    if not card_path.is_file():
        raise ExportError(f"no model card {str(card_path)!r} (export one with: automl export)")
    try:
        card = json.loads(card_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ExportError(f"model card {str(card_path)!r} is not valid JSON: {error}") from None
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise ExportError(f"{str(card_path)!r} is not an automl model card")
    for key in ("space", "genome", "input_shape", "class_names", "normalisation", "files"):
        if key not in card:
            raise ExportError(f"model card {str(card_path)!r} lacks {key!r}")
    return card
