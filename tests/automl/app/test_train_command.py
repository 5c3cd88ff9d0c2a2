"""`automl train`: a trial's architecture trained longer becomes a new trial of its study."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import cli
from automl.store.study import StudyStore


def run(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    """A two-trial search on the embedded data (0.05 epochs each, small architectures)."""
    folder = tmp_path_factory.mktemp("train-command")
    url = f"sqlite:///{folder / 'tiny.db'}"
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["search", "--budget", "2", "--epochs", "0.05", "--max-flops", "3M", "--study", "tiny",
                  "--storage", url, "--device", "cpu", "--quiet"])
    assert exit_info.value.code == 0
    return url, folder


def test_train_stores_a_new_trial_that_pareto_lineage_and_export_read(capsys, tiny_study):
    url, folder = tiny_study
    code, out, err = run(capsys, "train", "--storage", url, "--trial", 0, "--epochs", 0.05, "--device", "cpu",
                         "--json")  # --study left out: the newest study in the storage, as everywhere
    assert code == 0, err
    row = json.loads(out)
    store = StudyStore.open("tiny", url)
    source, made = store.study.trials[0], store.study.trials[row["trial"]]
    assert made.state.name == "COMPLETE" and row["trained_from"] == 0 and made.user_attrs["trained_from"] == 0
    assert made.params == source.params and made.user_attrs["genome"] == source.user_attrs["genome"]
    assert made.user_attrs["key"] != source.user_attrs["key"]  # not the search's own evaluation of the genome
    assert made.user_attrs["weights_artifact"] and made.user_attrs["accelerators"] == []
    assert made.user_attrs["flops"] == source.user_attrs["flops"] and made.values[1] == source.values[1]
    assert made.user_attrs["epochs"] == pytest.approx(0.05, abs=0.02) and made.user_attrs["seconds"] > 0

    from automl.reporting.report import report_facts

    facts = report_facts(store)  # the search's history leaves the trained trial out; the front does not
    assert sum(row["new_trials"] for row in facts["hypervolume"]) == 2
    code, out, _ = run(capsys, "pareto", "--study", "tiny", "--storage", url, "--json", "--png", folder / "p.png")
    assert code == 0 and {r["trial"] for r in json.loads(out)["front"]} <= {0, 1, made.number}
    code, out, _ = run(capsys, "lineage", "--study", "tiny", "--storage", url, "--trial", made.number, "--json")
    assert code == 0 and {"parent": 0, "child": made.number, "kind": "trained"} in json.loads(out)["edges"]
    code, out, err = run(capsys, "export", "--study", "tiny", "--storage", url, "--trial", made.number,
                         "--format", "safetensors", "--out", folder / "exported", "--json")
    assert code == 0, err
    card = json.loads(out)[0]
    assert card["trial"] == made.number and card["search"]["trained_from"] == 0 and card["weights"] == "search"


@pytest.mark.parametrize("args, message", [
    (["--trial", 99], "has no trial 99"),
    (["--study", "ghost", "--trial", 0], "no study 'ghost'"),
    (["--trial", 0, "--epochs", 0], "epochs must be a positive number"),
    (["--trial", 0, "--nproc", 2, "--accelerate", "fx16"], "accelerator 'fx16' cannot train on 2 processes"),
    (["--trial", 0, "--accelerate", "warp9"], "unknown accelerator 'warp9'"),
])
def test_a_bad_request_is_one_line_and_exit_2(capsys, tiny_study, args, message):
    url, _ = tiny_study
    base = ["train", "--storage", url, "--epochs", 0.05, "--device", "cpu"]
    code, _, err = run(capsys, *base, *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert len(StudyStore.open("tiny", url).study.trials) >= 2  # nothing half-made is left RUNNING
    assert all(t.state.name != "RUNNING" for t in StudyStore.open("tiny", url).study.trials)


@pytest.mark.slow  # the quick suite checks DDP itself in tests/automl/evaluate/test_distributed.py
def test_train_and_export_on_two_gloo_processes(capsys, tiny_study):
    url, folder = tiny_study
    code, out, err = run(capsys, "train", "--study", "tiny", "--storage", url, "--trial", 1, "--epochs", 0.1,
                         "--nproc", 2, "--device", "cpu", "--json")
    assert code == 0, err
    row = json.loads(out)
    assert row["state"] == "COMPLETE" and row["trained_from"] == 1
    assert row["distributed"]["processes"] == 2 and row["distributed"]["per_process_batch"] == 32
    code, out, err = run(capsys, "export", "--study", "tiny", "--storage", url, "--trial", 0, "--retrain-epochs",
                         0.05, "--nproc", 2, "--format", "safetensors", "--out", folder / "ddp", "--json")
    assert code == 0, err
    card = json.loads(out)[0]
    assert card["retrained"]["distributed"]["processes"] == 2 and 0 <= card["test_accuracy"] <= 1


@pytest.mark.slow
def test_train_under_torchrun_records_once_from_rank_0(tiny_study):
    url, _ = tiny_study
    root = Path(__file__).resolve().parents[3]
    before = len(StudyStore.open("tiny", url).study.trials)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(root / "cli.py"), "train", "--study", "tiny", "--storage", url, "--trial", "0",
                           "--epochs", "0.05", "--device", "cpu", "--json"],
                          capture_output=True, text=True, cwd=root, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    row = json.loads(done.stdout)  # rank 0 alone prints
    assert row["distributed"]["launcher"] == "torchrun" and row["distributed"]["processes"] == 2
    assert len(StudyStore.open("tiny", url).study.trials) == before + 1


@pytest.mark.parametrize("command", [["train", "--help"], ["export", "--help"], ["bench", "scale", "--help"]])
def test_help_of_the_ddp_commands_imports_no_torch(command):
    root = Path(__file__).resolve().parents[3]
    probe = ("import runpy, sys\n"
             f"sys.argv = ['automl', *{command!r}]\n"
             "try:\n    runpy.run_path('cli.py', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "print('HEAVY', sorted(m for m in ('torch', 'optuna') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, timeout=600)
    assert "--nproc" in done.stdout or "--ddp-processes" in done.stdout, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "HEAVY []", done.stderr[-2000:]


def test_export_retrains_with_prunetrain_and_the_narrowed_model_loads_and_predicts(capsys, tiny_study):
    from automl import load_model
    from automl.nn.flops import count_flops

    url, folder = tiny_study
    strong = "prunetrain:ratio=0.99,every=0.25,grow=false,step=prox"  # prunes within a fraction of an epoch
    code, out, err = run(capsys, "export", "--study", "tiny", "--storage", url, "--trial", 0, "--retrain-epochs",
                         0.3, "--accelerate", strong, "--format", "safetensors,onnx", "--device", "cpu",
                         "--out", folder / "pruned", "--json")
    assert code == 0, err
    card = json.loads(out)[0]
    report = card["retrained"]["accelerator_reports"]["prunetrain"]
    assert card["retrained"]["accelerators"][0].startswith("prunetrain:ratio=0.99") and report["reconfigurations"] >= 1
    source = StudyStore.open("tiny", url).study.trials[0]
    assert card["channel_widths"] and card["flops"] == report["flops_after"] < source.user_attrs["flops"]
    model = load_model(folder / "pruned" / "trial-0")  # the genome rebuilt, cut to the recorded widths
    c, h, w = card["input_shape"]
    assert count_flops(model, (c, h, w)) == card["flops"]
    assert model(torch.zeros(2, c, h, w)).shape == (2, card["num_classes"])


@pytest.mark.parametrize("args, message", [
    (["--accelerate", "prunetrain"], "--accelerate trains: it needs --retrain-epochs E"),
    (["--retrain-epochs", 0.05, "--accelerate", "earlystop"], "'earlystop' cannot train a model for export"),
    (["--retrain-epochs", 0.05, "--accelerate", "wae"], "'wae' cannot train a model for export"),
    (["--retrain-epochs", 0.05, "--accelerate", "warp9"], "unknown accelerator 'warp9'"),
    (["--retrain-epochs", 0.05, "--nproc", 2, "--accelerate", "prunetrain"], "cannot train on 2 processes"),
])
def test_export_refuses_accelerators_it_cannot_retrain_with(capsys, tiny_study, args, message):
    url, folder = tiny_study
    code, _, err = run(capsys, "export", "--study", "tiny", "--storage", url, "--trial", 0, "--format",
                       "safetensors", "--device", "cpu", "--out", folder / "refused", *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (folder / "refused").exists()  # refused before anything was written
