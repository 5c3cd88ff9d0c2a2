"""Which device a candidate trains on."""

from __future__ import annotations

import torch


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` picks the first GPU when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
