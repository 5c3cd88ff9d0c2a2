"""automl ablate: singles and allowed pairs on the same candidates, each pair read against
what its singles predict; refused pairs listed; progress on stderr also with --json."""

import json
import math
import sys

import pytest

from automl.core.errors import AutomlError
from automl.experiments.ablate import methods_of


def _cli(argv, capsys, monkeypatch):
    import cli

    monkeypatch.setattr(sys, "argv", ["automl", *argv])  # as the console script sees it
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    captured = capsys.readouterr()
    return exit_.value.code, captured.out, captured.err


def test_ablate_quick_pairs_interactions_heatmap_and_provenance(tmp_path, capsys, monkeypatch):
    png, out = tmp_path / "pairs.png", tmp_path / "ablate.json"
    code, stdout, stderr = _cli(["ablate", "--only", "subset,rescale,s3pool", "--candidates", "2", "--seeds", "1",
                                 "--epochs", "0.1", "--max-flops", "4M", "--json", "--png", str(png),
                                 "--out", str(out)], capsys, monkeypatch)
    assert code == 0, stderr
    result = json.loads(stdout)
    ticks = [line for line in stderr.splitlines() if line.startswith("candidate ")]
    assert [t.split(" (")[0] for t in ticks] == ["candidate 1/2", "candidate 2/2"]  # one line per candidate
    runs = [line.split(",")[0] for line in stderr.splitlines() if " runs, " in line]
    assert runs == [f"{done}/14 runs" for done in range(1, 15)]  # 14 runs: every one is a twentieth or more
    assert "2 candidates x 6 entries (plain, 3 alone, 2 combined; 1 refused) x 1 seed(s)" in stderr  # said first
    assert "plus 1 plain seed(s) for the noise ceiling: 14 runs" in stderr
    table = result["table"]
    assert set(table) == {"subset", "rescale", "s3pool", "subset+rescale", "subset+s3pool"}
    assert "rescale+s3pool" in result["refused"] and "cannot be combined" in result["refused"]["rescale+s3pool"]
    for pair in ("subset+rescale", "subset+s3pool"):
        a, b = pair.split("+")
        row = table[pair]
        assert row["expected_speedup"] == pytest.approx(table[a]["measured_speedup"] * table[b]["measured_speedup"])
        assert row["speedup_interaction"] == pytest.approx(row["measured_speedup"] / row["expected_speedup"])
        assert row["accuracy_interaction"] == pytest.approx(
            row["accuracy_delta_mean"] - table[a]["accuracy_delta_mean"] - table[b]["accuracy_delta_mean"])
        assert row["theoretical_training_flops_saved"] >= table["subset"]["theoretical_training_flops_saved"] - 0.05
        assert row["size"] == 2 and (math.isnan(row["kendall_tau"]) or -1 <= row["kendall_tau"] <= 1)
    pairs = result["pairs"]
    assert pairs["methods"] == ["subset", "rescale", "s3pool"]
    speedup = pairs["measured_speedup"]
    assert speedup[0][0] == table["subset"]["measured_speedup"] and speedup[0][1] == speedup[1][0]
    assert speedup[1][2] is None and speedup[2][1] is None  # refused
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stored = json.loads(out.read_text())
    assert stored["provenance"]["command"].startswith("automl ablate") and stored["table"] == result["table"]


def test_ablate_refuses_what_it_cannot_combine():
    with pytest.raises(AutomlError, match="single methods"):
        methods_of("subset+rescale,fx16")
    with pytest.raises(AutomlError, match="at least two"):
        methods_of("subset")
    with pytest.raises(AutomlError, match="twice"):
        methods_of("subset,subset")
    with pytest.raises(AutomlError):
        methods_of("subset,nosuchmethod")


def test_ablate_bad_choice_is_one_line_and_exit_2(capsys, monkeypatch):
    code, _, stderr = _cli(["ablate", "--only", "subset"], capsys, monkeypatch)
    assert code == 2 and stderr.strip().count("\n") == 0 and "at least two" in stderr
    for only in ("nosuch", "fx16:bits=abc"):  # the real mistake is named, not the count
        code, _, stderr = _cli(["ablate", "--only", only], capsys, monkeypatch)
        assert code == 2 and stderr.strip().count("\n") == 0 and "at least two" not in stderr, stderr


SPEEDUP = {"none": 1.0, "subset": 2.0, "rescale": 1.5, "s3pool": 0.8, "subset+rescale": 2.4, "subset+s3pool": 1.6}
DELTA = {"none": 0.0, "subset": -0.10, "rescale": -0.05, "s3pool": 0.0, "subset+rescale": -0.20, "subset+s3pool": -0.1}


def _fake_runs(entries, candidates, epochs, max_flops, seed, seeds, progress=None, on_run=None):
    """Known speed-ups and accuracy changes per entry, three candidates of rising accuracy."""
    runs = {}
    for entry in ["none", *entries]:
        runs[entry] = [{"genome": f"g{c}", "mflops": 1.0 + c, "seconds": 10 / SPEEDUP[entry],
                        "seconds_per_epoch": 10 / SPEEDUP[entry], "accuracy": 0.5 + 0.1 * c + DELTA[entry],
                        "accuracies": [0.5 + 0.1 * c + DELTA[entry]], "epochs": 1.0,
                        "flops_saved_fraction": 0.5 if "subset" in entry else 0.0, "reports": {}}
                       for c in range(candidates)]
    for c in range(candidates):
        if progress is not None:
            progress(c + 1, candidates, {entry: rows[c] for entry, rows in runs.items()})
    return {"runs": runs, "noise_runs": [[0.5 + 0.1 * c] for c in range(candidates)]}


def test_ablate_reads_each_pair_against_its_singles(tmp_path, capsys, monkeypatch):
    """The arithmetic on known numbers (no training): interactions, the pair matrix, the
    heat-map, --json on stdout and one progress line per candidate on stderr."""
    import automl.experiments.ablate as module

    monkeypatch.setattr(module, "run_interleaved", _fake_runs)
    png = tmp_path / "pairs.png"
    code, stdout, stderr = _cli(["ablate", "--only", "subset,rescale,s3pool", "--candidates", "3", "--json",
                                 "--png", str(png)], capsys, monkeypatch)
    assert code == 0, stderr
    result = json.loads(stdout)
    table = result["table"]
    assert table["subset+rescale"]["expected_speedup"] == pytest.approx(3.0)
    assert table["subset+rescale"]["speedup_interaction"] == pytest.approx(0.8)  # 2.4 measured / 3.0 expected
    assert table["subset+rescale"]["accuracy_interaction"] == pytest.approx(-0.05)  # -0.20 vs -0.10 - 0.05
    assert table["subset+s3pool"]["speedup_interaction"] == pytest.approx(1.0)
    assert table["subset"]["kendall_tau"] == pytest.approx(1.0) and table["subset"]["tau_below_ceiling"] == 0
    assert set(result["refused"]) == {"rescale+s3pool"}
    assert result["pairs"]["speedup_interaction"][0][1] == pytest.approx(0.8)
    assert result["pairs"]["speedup_interaction"][1][2] is None
    ticks = [line.split(" (")[0] for line in stderr.splitlines() if line.startswith("candidate ")]
    assert ticks == ["candidate 1/3", "candidate 2/3", "candidate 3/3"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
