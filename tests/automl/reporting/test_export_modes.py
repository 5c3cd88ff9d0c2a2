"""Exported files all get one mode: safetensors writes its file 0600, export makes it what a
plain open() gives the card beside it (0644 under the usual umask)."""

from __future__ import annotations

import os
import stat

import torch
from safetensors.torch import save_file

from automl.reporting.export import _like_other_files


def test_weights_get_the_mode_of_the_card_beside_them(tmp_path):
    weights, card = tmp_path / "model.safetensors", tmp_path / "card.json"
    save_file({"w": torch.zeros(2)}, str(weights))
    card.write_text("{}")
    _like_other_files(weights)
    assert stat.S_IMODE(weights.stat().st_mode) == stat.S_IMODE(card.stat().st_mode)
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(weights.stat().st_mode) == 0o666 & ~mask  # 0644 under umask 022, not 0600
