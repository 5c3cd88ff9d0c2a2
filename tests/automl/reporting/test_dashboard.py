"""optuna-dashboard on a study: its HTTP API shows the trials as the search recorded them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

import search_spaces
from automl.reporting.dashboard import Dashboard
from automl.core.errors import AutomlError
from automl.core.pareto import DEFAULT_OBJECTIVES
from automl.store.study import StudyStore

ROOT = Path(__file__).resolve().parents[3]  # the repository root (tests/automl/reporting/ is three below)


def _study(name: str = "dash") -> StudyStore:
    """Three trials of the mobile space recorded as the search records them (no training)."""
    space = search_spaces.get("mobile")
    store = StudyStore.create(name, None, DEFAULT_OBJECTIVES, {"space": "mobile", "dataset": "mnist5k"})
    rng = np.random.default_rng(0)
    for number, (accuracy, flops) in enumerate([(0.9, 3e6), (0.8, 1e6), (0.7, 2e6)]):
        genome = space.sample(rng)
        trial = store.start(genome, space.genes(), {"key": genome.key(), "genome": space.format(genome),
                                                    "generation": 0, "parents": []})
        store.complete(trial, {"accuracy": accuracy, "flops": flops},
                       {"flops": flops, "mflops": flops / 1e6, "params": 1000 + number, "seconds": 1.5,
                        "accelerators": ["fx16:wl=16,fl=12,rounding=stochastic"]},
                       weights={"w": torch.full((2,), float(number))})
    return store


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def test_dashboard_serves_the_study_through_its_http_api(in_tmp):
    store = _study()
    port = _free_port()
    with Dashboard(store, "127.0.0.1", port) as board:
        assert board.url == f"http://127.0.0.1:{port}/dashboard/studies/{store.study_id}"
        summaries = _get(f"{board.base_url}/api/studies")["study_summaries"]
        study_id = next(s["study_id"] for s in summaries if s["study_name"] == "dash")
        detail = _get(f"{board.base_url}/api/studies/{study_id}")
        assert detail["objective_names"] == ["accuracy", "flops"]
        assert len(detail["trials"]) == 3
        genes = search_spaces.get("mobile").gene_names
        for trial in detail["trials"]:
            assert [p["name"] for p in trial["params"]] == genes  # genes as params
            assert all(p["distribution"]["type"] == "CategoricalDistribution" for p in trial["params"])
            attrs = {a["key"] for a in trial["user_attrs"]}
            assert {"flops", "params", "seconds", "accelerators", "genome"} <= attrs
            assert [a["filename"] for a in trial["artifacts"]] == [f"trial-{trial['number']}.safetensors"]
        # the Pareto front the dashboard plots is the study's
        assert sorted(t["number"] for t in detail["best_trials"]) == sorted(t.number for t in store.pareto()) == [0, 1]
        artifact = detail["trials"][0]["artifacts"][0]["artifact_id"]
        with urllib.request.urlopen(f"{board.base_url}/artifacts/{study_id}/{detail['trials'][0]['trial_id']}/"
                                    f"{artifact}", timeout=30) as response:
            assert response.status == 200 and len(response.read()) > 0  # weights are downloadable
    with pytest.raises(OSError):  # stopped: the port no longer answers
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/meta", timeout=5)


def test_a_busy_port_is_a_one_line_error(in_tmp):
    store = _study()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        with pytest.raises(AutomlError, match="cannot serve the dashboard on 127.0.0.1") as refused:
            Dashboard(store, "127.0.0.1", holder.getsockname()[1])
    assert "\n" not in str(refused.value)


def test_cli_dashboard_prints_the_url_and_stops_cleanly_on_ctrl_c(in_tmp):
    _study()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # a shell may start tests with SIGINT ignored, which a child inherits: give it Ctrl-C back
    process = subprocess.Popen([sys.executable, "-m", "automl", "dashboard", "--study", "dash", "--port", "0"],
                               cwd=in_tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        line = process.stdout.readline()
        assert "optuna-dashboard for study 'dash': http://127.0.0.1:" in line, process.stderr.read()
        url = line.split(": ", 1)[1].strip()
        base = url.split("/dashboard", 1)[0]
        assert _get(f"{base}/api/meta")["artifact_is_available"] is True  # the study's weights are served
        with urllib.request.urlopen(url, timeout=30) as response:  # the single-page app itself
            assert response.status == 200 and b"<html" in response.read().lower()
        process.send_signal(signal.SIGINT)
        try:
            _, err = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail(f"the dashboard did not stop on SIGINT: {process.communicate()[1]}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert "dashboard stopped" in err and "Traceback" not in err
