"""`automl report`: one page with the front, hypervolume by generation, models, accelerators, warm starts."""

from __future__ import annotations

import json

import numpy as np
import pytest

import cli
import search_spaces
from automl.core.pareto import DEFAULT_OBJECTIVES
from automl.reporting.report import hypervolume_by_generation, report_facts, write_report
from automl.store.study import StudyStore

# (accuracy, flops, generation, warm_start_from): gen 0 = (0.5, 1 MFLOPs) and a dominated one,
# gen 1 adds (0.9, 2 MFLOPs) warm-started from trial 0
TRIALS = [(0.5, 1e6, 0, None), (0.4, 2e6, 0, None), (0.9, 2e6, 1, 0)]


def _study(name: str = "rep") -> StudyStore:
    space = search_spaces.get("mobile")
    store = StudyStore.create(name, None, DEFAULT_OBJECTIVES,
                              {"space": "mobile", "dataset": "mnist5k", "strategy": "nsga2", "population": 2,
                               "accelerate": "fx16", "data": {"dataset": "mnist5k", "input_shape": [1, 28, 28]}})
    rng = np.random.default_rng(1)
    for accuracy, flops, generation, warm in TRIALS:
        genome = space.sample(rng)
        trial = store.start(genome, space.genes(), {"key": genome.key(), "genome": space.format(genome),
                                                    "generation": generation, "parents": []})
        attrs = {"flops": flops, "mflops": flops / 1e6, "params": 1234, "seconds": 2.0 if warm is None else 0.5,
                 "epochs": 1.0 if warm is None else 0.3, "accelerators": ["fx16:wl=16,fl=12,rounding=stochastic"],
                 "accelerator_reports": {"fx16": {"values_quantized": 100, "training_flops_saved": 0.0}}}
        if warm is not None:
            attrs |= {"warm_start_from": warm, "transforms": ["stem widen 8->16", "s2 deepen 1->2"]}
        store.complete(trial, {"accuracy": accuracy, "flops": flops}, attrs)
    return store


def test_hypervolume_by_generation_is_exact_and_never_falls(in_tmp):
    rows = hypervolume_by_generation(_study())
    assert [r["generation"] for r in rows] == [0, 1] and [r["trials"] for r in rows] == [2, 3]
    # normalised points: (1 - acc, flops / 2M); reference 1.1, volumes as shares of its 1.1 x 1.1 box.
    # gen 0: (0.5, 0.5) dominates (0.6, 1.0)
    assert rows[0]["hypervolume"] == pytest.approx(0.6 * 0.6 / 1.21)
    # gen 1 adds (0.1, 1.0): 0.36 + 1.0 x 0.1 - overlap 0.6 x 0.1
    assert rows[1]["hypervolume"] == pytest.approx((0.36 + 0.1 - 0.06) / 1.21)


def test_facts_name_accelerators_and_warm_starts(in_tmp):
    facts = report_facts(_study())
    assert [row["trial"] for row in facts["front"]] == [0, 2]
    assert facts["front"][1]["warm_start_from"] == 0
    (accelerator,) = facts["accelerators"]
    assert accelerator["accelerator"] == "fx16" and accelerator["kind"] == "emulated" and accelerator["trials"] == 3
    assert accelerator["means"]["values_quantized"] == 100
    warm = facts["warm_starts"]
    assert warm["warm_started"] == 1 and warm["from_scratch"] == 2
    assert warm["mean_seconds_warm"] == 0.5 and warm["moves"] == {"widen": 1, "deepen": 1}


def test_html_report_is_one_self_contained_page(in_tmp):
    store = _study()
    page = write_report(store, in_tmp / "out")
    assert page == in_tmp / "out" / "report.html" and sorted(p.name for p in page.parent.iterdir()) == ["report.html"]
    text = page.read_text()
    assert text.count('src="data:image/png;base64,') == 2  # the front and the hypervolume curve
    assert "http://" not in text and "https://" not in text and "<script" not in text and "<link" not in text
    for trial in store.pareto():
        assert trial.user_attrs["genome"] in text
    for heading in ("Pareto front", "Hypervolume over generations", "Pareto-optimal models", "Accelerators",
                    "Warm starts (Net2Net)"):
        assert f"<h2>{heading}</h2>" in text


def test_markdown_report_links_its_pngs(in_tmp):
    page = write_report(_study(), in_tmp / "md", "md")
    text = page.read_text()
    assert "![Pareto front](pareto.png)" in text and "![Hypervolume over generations](hypervolume.png)" in text
    for name in ("pareto.png", "hypervolume.png"):
        assert (page.parent / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| 2 |" in text and "Warm starts" in text


def test_a_study_without_warm_starts_or_accelerators_leaves_those_sections_out(in_tmp):
    store = StudyStore.create("plain", None, DEFAULT_OBJECTIVES, {"space": "toy"})
    from automl.core.genome import Genome

    genome = Genome("toy", (("a", 1),))
    store.complete(store.start(genome, {"a": [1, 2]}, {"key": genome.key(), "genome": "a1"}),
                   {"accuracy": 0.7, "flops": 5.0}, {})
    text = write_report(store, in_tmp / "plain").read_text()
    assert "Accelerators" not in text and "Warm starts" not in text and "a1" in text


def run(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(list(args))
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_cli_report(capsys, in_tmp):
    _study()
    code, out, _ = run(capsys, "report", "--study", "rep", "--out", "r", "--json")
    assert code == 0
    facts = json.loads(out)
    assert facts["report"] == "r/report.html" and (in_tmp / "r" / "report.html").exists()
    assert [r["hypervolume"] for r in facts["hypervolume"]] == pytest.approx([0.36 / 1.21, 0.40 / 1.21])
    code, out, _ = run(capsys, "report", "--out", "r2")  # the newest study by default
    assert code == 0 and (in_tmp / "r2" / "report.html").exists()
    code, _, err = run(capsys, "report", "--study", "rep", "--out", "r", "--format", "pdf")
    assert code == 2 and "unknown report format 'pdf'" in err


def test_settings_show_the_device_used_and_no_empty_cell(in_tmp):
    store = _study()
    genome = search_spaces.get("mobile").sample(np.random.default_rng(5))
    trial = store.start(genome, search_spaces.get("mobile").genes(), {"key": genome.key(), "genome": "g"})
    store.complete(trial, {"accuracy": 0.3, "flops": 3e6}, {"device": "cpu"})
    store.update_settings(device="auto", accelerate="", max_flops=None, warm_epochs=None, epochs=1.0)
    settings = report_facts(store)["settings"]
    assert settings["device"] == "auto (used: cpu)" and settings["accelerate"] == "none"
    assert settings["max_flops"] == "no limit" and settings["warm_epochs"] == "0.3 (default)"
    text = write_report(store, in_tmp / "s").read_text()
    assert "<td></td>" not in text


def test_warm_start_savings_count_children_and_what_they_saved(in_tmp):
    store = _study()
    store.update_settings(epochs=1.0)
    saved = report_facts(store)["warm_starts"]
    from automl.reporting.report import warm_start_savings

    savings = warm_start_savings(store)
    assert savings["children"] == 1 and savings["warm_started"] == 1 and saved["warm_started"] == 1
    # the warm child (2 MFLOPs) trained 0.3 epochs: 0.7 epochs saved, at the scratch trials' rate
    # (2 s + 2 s for 1 epoch of 1 and 2 MFLOPs) 0.7 x 2e6 x 4 / 3e6 s
    assert savings["epochs_saved"] == pytest.approx(0.7)
    assert savings["seconds_saved"] == pytest.approx(0.7 * 2e6 * 4 / 3e6)
    assert "1 of 1 children inherited" in savings["sentence"]
