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
