"""Shared fixtures: small real data, the smallest mobile genome, a clean working folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# OpenMP threads that spin while they wait (libgomp's default, active) make every training step
# pay for a core someone else holds: beside a busy loop on each core, a half-epoch of a small
# mobile net took 48 s wall / 28 CPU-s spinning and 17 s / 8 CPU-s waiting passively. Set before
# torch loads its OpenMP runtime; subprocesses (CLI tests, Ray workers) inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

torch.set_num_threads(min(2, os.cpu_count() or 1))

SMALLEST_MOBILE = "stem8-ir_r1_k3_e1_c8-ir_r1_k3_e1_c16-ir_r1_k3_e1_c24-ir_r1_k3_e1_c32-ir_r1_k3_e1_c48-head128"
# a Tree-CNN root one gene step above the smallest in two genes: a new branch's space has 4 genomes
GROW_ROOT = "stem8-ir_r1_k3_e1_c8-ir_r1_k3_e1_c16-ir_r1_k3_e1_c24-ir_r1_k3_e3_c32-ir_r1_k3_e3_c48-head128"


def untrained_root(data):
    """GROW_ROOT with seed-0 initial weights over ``data``'s classes, as growth's starting point."""
    import search_spaces
    from automl.grow.grower import RootSource

    space = search_spaces.get("mobile")
    genome = space.parse(GROW_ROOT)
    torch.manual_seed(0)
    model = space.build(genome, data.input_shape, data.num_classes)
    return RootSource(space, genome, model.state_dict(), list(data.class_names), data.input_shape, "random init")


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


PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL database for the tests: the one CI started (AUTOML_TEST_POSTGRES), else a
    throw-away server started here with .ci/postgres. Skipped only where the PostgreSQL binaries
    are missing - and never in CI, which sets AUTOML_REQUIRE_POSTGRES."""
    url = os.environ.get("AUTOML_TEST_POSTGRES")
    if url:
        yield url
        return
    if not (PG_BIN / "initdb").exists():
        if os.environ.get("AUTOML_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL binaries missing in {PG_BIN} but AUTOML_REQUIRE_POSTGRES is set")
        pytest.skip(f"no PostgreSQL binaries in {PG_BIN}")
    import socket
    import subprocess
    import tempfile

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(os.environ, PG_DIR=tempfile.mkdtemp(prefix="automl-test-postgres-"), PG_PORT=str(port))
    script = ROOT / ".ci" / "postgres"
    started = subprocess.run(["bash", "-c", f"source {script} start && echo URL=$AUTOML_TEST_POSTGRES"],
                             capture_output=True, text=True, env=env)
    if started.returncode != 0:
        pytest.fail(f"could not start PostgreSQL: {started.stderr.strip()[-500:]}")
    url = started.stdout.strip().splitlines()[-1].removeprefix("URL=")
    try:
        yield url
    finally:
        subprocess.run(["bash", str(script), "stop"], env=env, capture_output=True)


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
