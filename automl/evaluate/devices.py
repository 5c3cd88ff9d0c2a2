"""Which device a candidate trains on, checked before anything is created."""

from __future__ import annotations

import re

import torch

from automl.core.errors import AutomlError

_DEVICE = re.compile(r"^(auto|cpu|cuda(?::([0-9]{1,3}))?)$")


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` picks the first GPU when there is one, else the CPU; ``cuda[:N]`` must exist here
    (a misspelt or absent device is one line, not a CUDA traceback mid-search)."""
    match = _DEVICE.match(name) if isinstance(name, str) else None
    if match is None:
        raise AutomlError(f"unknown device {name!r} (auto, cpu, cuda, cuda:N)")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise AutomlError(f"device {name!r}: no CUDA GPU is available here (use --device cpu or auto)")
    index = int(match.group(2) or 0)
    if index >= count:
        raise AutomlError(f"device {name!r}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}")
    return torch.device(name)
