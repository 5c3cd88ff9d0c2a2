"""Shared fixtures: small real data, the smallest mobile genome, a clean working folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

torch.set_num_threads(min(2, os.cpu_count() or 1))

SMALLEST_MOBILE = "stem8-ir_r1_k3_e1_c8-ir_r1_k3_e1_c16-ir_r1_k3_e1_c24-ir_r1_k3_e1_c32-ir_r1_k3_e1_c48-head128"


@pytest.fixture(scope="session")
def mnist5k():
    from automl.data import load_mnist5k

    return load_mnist5k()


@pytest.fixture()
def small_mnist(mnist5k):
    """A 1,280/300/300 slice of the embedded data: real digits, seconds to train on."""
    from automl.data import Dataset, Split

    def head(split: Split, n: int) -> Split:
        return Split(x=split.x[:n].clone(), y=split.y[:n].clone())

    return Dataset("mnist5k-small", head(mnist5k.train, 1280), head(mnist5k.val, 300), head(mnist5k.test, 300),
                   mnist5k.input_shape, mnist5k.class_names, mnist5k.mean, mnist5k.std)


@pytest.fixture()
def in_tmp(tmp_path, monkeypatch):
    """Run in an empty folder, so studies/ is created there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(autouse=True, scope="session")
def cost_calibration(tmp_path_factory):
    """A fixed machine calibration in a private cache for the cost model: no test runs the
    micro-benchmarks by accident or writes to the user's cache (tests of calibration call it
    directly). Throughputs of a modest CPU, so predictions have realistic magnitudes."""
    from automl.nn.calibrate import device_key, save_calibration
    from automl.nn.costmodel import FORMATS, KINDS, Calibration

    os.environ["AUTOML_CACHE_DIR"] = str(tmp_path_factory.mktemp("automl-cache"))
    base = {"conv": 2e10, "depthwise": 3e9, "matmul": 2e10, "elementwise": 5e8}
    throughput = {kind: {fmt: base[kind] * 4 / size for fmt, size in FORMATS.items()} for kind in KINDS}
    calibration = Calibration("cpu", torch.get_num_threads(), throughput, 2e10, 1e-5, 1e-3,
                              {kind: {fmt: "measured" for fmt in FORMATS} for kind in KINDS},
                              device_key(torch.device("cpu")))
    save_calibration(calibration)
    return calibration
