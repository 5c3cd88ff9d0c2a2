"""The dashboard has no login: loopback by default, read-only when served to the network, and
one idle client does not freeze it for the others."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

import pytest
import torch

import cli
from automl.core.errors import AutomlError
from automl.core.genome import Genome
from automl.core.pareto import DEFAULT_OBJECTIVES
from automl.reporting.dashboard import Dashboard, is_loopback
from automl.store.study import StudyStore


def _study(name: str = "exposed") -> StudyStore:
    store = StudyStore.create(name, None, DEFAULT_OBJECTIVES, {"space": "toy"})
    genome = Genome("toy", (("a", 1),))
    trial = store.start(genome, {"a": [1, 2]}, {"key": genome.key()})
    store.complete(trial, {"accuracy": 0.5, "flops": 1.0}, {}, weights={"w": torch.ones(2)})
    return store


def _request(url: str, method: str = "GET") -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_loopback_hosts():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4") and not is_loopback("example.org")


def test_another_host_needs_allow_remote(in_tmp, capsys):
    _study()
    with pytest.raises(AutomlError, match="--allow-remote"):
        Dashboard(StudyStore.open("exposed"), "0.0.0.0", 0)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["dashboard", "--study", "exposed", "--host", "0.0.0.0", "--port", "0"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1 and "--allow-remote" in err


def test_served_to_the_network_it_is_read_only(in_tmp):
    store = _study()
    study_id = store.study._study_id
    with Dashboard(store, "0.0.0.0", 0, allow_remote=True) as board:
        assert board.read_only
        base = f"http://127.0.0.1:{board.port}"
        status, body = _request(f"{base}/api/studies/{study_id}", "DELETE")
        assert status == 403 and b"read-only" in body
        for method in ("POST", "PUT", "PATCH"):
            assert _request(f"{base}/api/studies/{study_id}/note", method)[0] == 403
        status, body = _request(f"{base}/api/studies")
        assert status == 200 and json.loads(body)["study_summaries"][0]["study_name"] == "exposed"
    reopened = StudyStore.open("exposed")
    assert len(reopened.trials()) == 1 and reopened.artifacts_dir.is_dir()  # nothing deleted


def test_allow_writes_passes_writes_through(in_tmp):
    store = _study()
    with Dashboard(store, "0.0.0.0", 0, allow_remote=True, allow_writes=True) as board:
        assert not board.read_only
        status, _ = _request(f"http://127.0.0.1:{board.port}/api/studies/{store.study._study_id}", "DELETE")
        assert status in (200, 204)
    with pytest.raises(AutomlError, match="no study"):
        StudyStore.open("exposed")


def test_a_second_client_is_served_while_a_first_one_idles(in_tmp):
    store = _study()
    with Dashboard(store, "127.0.0.1", 0) as board:
        idle = socket.create_connection(("127.0.0.1", board.port), timeout=30)
        try:
            idle.sendall(b"GET /api/meta HTTP/1.1\r\nHost: x\r\n")  # never finishes its request
            status, body = _request(f"{board.base_url}/api/studies")  # a single-threaded server hangs here
            assert status == 200 and b"exposed" in body
        finally:
            idle.close()
