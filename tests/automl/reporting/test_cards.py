"""Model cards are untrusted input: one schema check with bounds before anything is allocated,
file names confined to the folder, and any card (or image) ends in success or one line."""

from __future__ import annotations

import copy
import json
import struct
import zlib
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import cli
import search_spaces
from automl.core.errors import AutomlError
from automl.reporting.cards import CARD_FORMAT, ExportError, check_card, load_card, sha256_of
from tests.conftest import SMALLEST_MOBILE


def _card(weights: Path | None = None) -> dict:
    files = {"safetensors": {"file": "model.safetensors"}}
    if weights is not None:
        files["safetensors"]["sha256"] = sha256_of(weights)
    return {"format": CARD_FORMAT, "version": 1, "space": "mobile", "genome": SMALLEST_MOBILE,
            "input_shape": [1, 28, 28], "class_names": [str(d) for d in range(10)],
            "normalisation": {"mean": [0.13], "std": [0.31], "scale": "pixels / 255"}, "files": files}


@pytest.fixture()
def exported(tmp_path) -> Path:
    """An exported model folder (untrained weights: what is checked here is reading, not accuracy)."""
    from safetensors.torch import save_file

    space = search_spaces.get("mobile")
    torch.manual_seed(0)
    model = space.build(space.parse(SMALLEST_MOBILE), (1, 28, 28), 10)
    folder = tmp_path / "trial-0"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    (folder / "card.json").write_text(json.dumps(_card(folder / "model.safetensors")))
    return folder


def _png(path: Path, width: int, height: int) -> Path:
    """A valid PNG header claiming ``width`` x ``height`` pixels, with a few bytes of data: what
    a decompression bomb looks like before it is decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def _run(capsys, *args) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([str(a) for a in args])
    return exit_info.value.code, capsys.readouterr().err


TAMPERED = [
    ("input_shape", [1, 28], "input_shape must be [channels, height, width]"),
    ("input_shape", "abc", "input_shape must be"),
    ("input_shape", [1, -28, 28], "not a sane image size"),
    ("input_shape", [1, 50000, 50000], "not a sane image size"),
    ("input_shape", [7, 28, 28], "not a sane image size"),
    ("input_shape", [1, 28.0, 28], "as integers"),
    ("files", None, "files must be an object"),
    ("files", ["model.safetensors"], "files must be an object"),
    ("files", {"safetensors": {"file": "../../etc/passwd"}}, "plain file name"),
    ("files", {"safetensors": {"file": "/etc/passwd"}}, "plain file name"),
    ("files", {"safetensors": {"file": ".."}}, "plain file name"),
    ("files", {"safetensors": {"file": "model.safetensors", "sha256": "x"}}, "64 hexadecimal"),
    ("normalisation", {}, "normalisation.mean must be 1 finite number"),
    ("normalisation", {"mean": [0.1], "std": [0]}, "normalisation.std must be positive"),
    ("normalisation", {"mean": [0.1, 0.2], "std": [1, 1]}, "normalisation.mean must be 1"),
    ("class_names", [], "class_names must be a list of 1 to"),
    ("class_names", [1, 2], "class_names must be a list"),
    ("genome", 5, "genome must be a non-empty string"),
    ("files", {"\n": None}, "files. must be an object with a file name"),  # a key with a newline: still one line
]


@pytest.mark.parametrize("field, value, message", TAMPERED)
def test_a_tampered_card_is_refused_by_the_schema(field, value, message):
    card = _card()
    card[field] = value
    with pytest.raises(ExportError, match=message.replace("[", r"\[")):
        check_card(card)


@pytest.mark.parametrize("field, value, message", TAMPERED[:3] + TAMPERED[6:9] + TAMPERED[12:14])
def test_predict_with_a_tampered_card_is_one_line(exported, capsys, tmp_path, field, value, message):
    card = json.loads((exported / "card.json").read_text())
    card[field] = value
    (exported / "card.json").write_text(json.dumps(card))
    code, err = _run(capsys, "predict", exported, _png(tmp_path / "a.png", 28, 28))
    assert code == 2 and len(err.strip().splitlines()) == 1 and message.split("[")[0] in err


def test_an_oversized_card_is_refused_before_it_is_read(exported, monkeypatch):
    import automl.reporting.cards as cards

    monkeypatch.setattr(cards, "MAX_CARD_BYTES", 100)
    monkeypatch.setattr(cards.json, "loads", lambda *args: pytest.fail("the oversized card was parsed"))
    with pytest.raises(ExportError, match="larger than") as refused:
        load_card(exported)
    assert "\n" not in str(refused.value)


def test_predict_refuses_a_decompression_bomb_and_damaged_images(exported, capsys, tmp_path):
    from PIL import Image

    good = tmp_path / "good.png"
    Image.new("L", (28, 28), 30).save(good)
    code, _ = _run(capsys, "predict", exported, good)
    assert code == 0
    bomb = _png(tmp_path / "bomb.png", 60000, 60000)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.png"
    noise = tmp_path / "noise.png"
    Image.frombytes("L", (64, 64), bytes(range(256)) * 16).save(noise)
    truncated.write_bytes(noise.read_bytes()[:len(noise.read_bytes()) // 2])
    for path, message in [(bomb, "decompression bomb"), (empty, "cannot be read"), (truncated, "cannot be read"),
                          (tmp_path / "gone.png", "does not exist")]:
        code, err = _run(capsys, "predict", exported, path)
        assert code == 2 and len(err.strip().splitlines()) == 1 and message in err and str(path) in err


# -- property: any card -> success or one AutomlError -------------------------------------------

_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12),
                  st.sampled_from(["../x", "a/b", "model.safetensors", "mobile", "", "..", "0" * 64]))
_json = st.recursive(_leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=8), inner, max_size=4), max_leaves=10)
_shape = st.one_of(_json, st.lists(st.integers(min_value=-10, max_value=10**9), min_size=0, max_size=4))
_field_values = {"input_shape": _shape, "files": _json, "normalisation": _json, "class_names": _json,
                 "genome": _json, "space": _json, "genes": _json, "format": _json}


@st.composite
def _cards(draw) -> dict:
    """A valid card with some of its fields replaced by random JSON, some removed."""
    card = copy.deepcopy(_card())
    for field in draw(st.lists(st.sampled_from(sorted(_field_values)), max_size=4, unique=True)):
        if draw(st.booleans()):
            card[field] = draw(_field_values[field])
        else:
            card.pop(field, None)
    return card


@settings(max_examples=300, deadline=None)
@given(st.one_of(_cards(), _json))
def test_any_card_passes_the_schema_or_is_one_line(card):
    try:
        checked = check_card(card)
    except AutomlError as error:
        assert "\n" not in str(error)
        return
    c, h, w = checked["input_shape"]  # what passes is safe to allocate and to use
    assert c in (1, 3) and 0 < h * w <= 2048 * 2048 * 3
    assert all(s > 0 for s in checked["normalisation"]["std"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_cards())
def test_any_card_on_disk_loads_a_model_or_is_one_line(exported, card):
    import automl

    card["files"] = _card(exported / "model.safetensors")["files"] if "files" not in card else card["files"]
    (exported / "card.json").write_text(json.dumps(card))
    try:
        model = automl.load_model(exported)
    except AutomlError as error:
        assert "\n" not in str(error)
        return
    import torch

    stored = json.loads((exported / "card.json").read_text())
    with torch.no_grad():
        output = model.eval()(torch.zeros(1, *stored["input_shape"]))
    assert output.shape == (1, len(stored["class_names"])) and torch.isfinite(output).all()
