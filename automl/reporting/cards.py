"""The model card of an exported folder: its file names, format and the checks on reading it.

``card.json`` holds everything needed to rebuild and use a model (space, genome, input shape,
normalisation, class names, accuracies, FLOPs, checksums); it is written last by
:mod:`automl.reporting.export`, so a card means a whole export.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
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


# bounds a card must respect before anything is allocated for it (a card may come from anyone)
MAX_CARD_BYTES = 16 * 1024**2
MAX_SIDE = 4096  # pixels per side of the model's input
MAX_INPUT_VALUES = 3 * 2048 * 2048  # C x H x W of one input image
MAX_CLASSES = 10_000  # the classifier is built before weights are read
MAX_NAME = 255  # characters of a file name


def load_card(path: str | Path) -> dict[str, Any]:
    """The model card of an exported folder, read within a size bound and checked by :func:`check_card`."""
    folder = Path(path)
    card_path = folder / CARD
    if not folder.is_dir():
        raise ExportError(f"no exported model at {str(folder)!r} (export one with: automl export)")
    if not card_path.is_file():
        raise ExportError(f"no model card {str(card_path)!r} (export one with: automl export)")
    if card_path.stat().st_size > MAX_CARD_BYTES:
        raise ExportError(f"model card {str(card_path)!r} is larger than {MAX_CARD_BYTES // 1024**2} MB")
    try:
        card = json.loads(card_path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ExportError(f"model card {str(card_path)!r} is not valid JSON: {first}") from None
    return check_card(card, str(card_path))


def check_card(card: Any, where: str = CARD) -> dict[str, Any]:
    """The one schema check of a model card: every field predict and load_model use, with its
    type and bounds (sane input sizes, confined file names, std > 0), before anything is built.
    Returns the card; a tampered or damaged card raises :class:`ExportError` naming the field."""
    def bad(field: str, why: str) -> ExportError:  # one line, whatever keys a damaged card holds
        return ExportError(" ".join(f"model card {where!r}: {field} {why}".split()))

    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise ExportError(f"{where!r} is not an automl model card")
    for key in ("space", "genome", "input_shape", "class_names", "normalisation", "files"):
        if key not in card:
            raise ExportError(f"model card {where!r} lacks {key!r}")
    for key in ("space", "genome"):
        if not isinstance(card[key], str) or not card[key]:
            raise bad(key, "must be a non-empty string")
    genes = card.get("genes")
    if genes is not None and not (isinstance(genes, dict) and all(
            isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in genes.values())):
        raise bad("genes", "must map gene names to values")
    channels = _check_shape(card["input_shape"], bad)
    names = card["class_names"]
    if not (isinstance(names, list) and 1 <= len(names) <= MAX_CLASSES and all(isinstance(n, str) for n in names)):
        raise bad("class_names", f"must be a list of 1 to {MAX_CLASSES} strings")
    _check_normalisation(card["normalisation"], channels, bad)
    _check_files(card["files"], bad)
    return card


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_shape(shape: Any, bad) -> int:
    if not (isinstance(shape, list) and len(shape) == 3 and all(_is_int(v) for v in shape)):
        raise bad("input_shape", f"must be [channels, height, width] as integers, got {_short(shape)}")
    c, h, w = shape
    if c not in (1, 3) or not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE) or c * h * w > MAX_INPUT_VALUES:
        raise bad("input_shape", f"{shape} is not a sane image size (1 or 3 channels, sides 1-{MAX_SIDE}, "
                                 f"at most {MAX_INPUT_VALUES} values)")
    return c


def _check_normalisation(norm: Any, channels: int, bad) -> None:
    if not isinstance(norm, dict):
        raise bad("normalisation", "must be an object with mean and std")
    for key in ("mean", "std"):
        values = norm.get(key)
        if not (isinstance(values, list) and len(values) == channels and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and _finite(v) for v in values)):
            raise bad(f"normalisation.{key}", f"must be {channels} finite number(s), got {_short(values)}")
    if not all(v > 0 for v in norm["std"]):
        raise bad("normalisation.std", f"must be positive, got {_short(norm['std'])}")


def _check_files(files: Any, bad) -> None:
    if not isinstance(files, dict):
        raise bad("files", f"must be an object of file entries, got {_short(files)}")
    for fmt, entry in files.items():
        if not isinstance(entry, dict):
            raise bad(f"files.{fmt}", "must be an object with a file name")
        name = entry.get("file")
        if name is not None and not confined_name(name):
            raise bad(f"files.{fmt}.file", f"{_short(name)} must be a plain file name inside the folder")
        digest = entry.get("sha256")
        if digest is not None and not (isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest)):
            raise bad(f"files.{fmt}.sha256", "must be 64 hexadecimal digits")


def confined_name(name: Any) -> bool:
    """A file name that stays inside its folder: no path separators, no '..', no drive letter."""
    return (isinstance(name, str) and 0 < len(name) <= MAX_NAME and name not in (".", "..")
            and not any(ch in name for ch in "/\\\0:") and name == name.strip())


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
