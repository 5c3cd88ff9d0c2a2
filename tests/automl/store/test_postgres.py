"""A study on a real PostgreSQL server, as a team shares one: search, resume, pareto, report
and export against a ``postgresql://`` URL written as users write it."""

from __future__ import annotations

import json
import uuid

import pytest

import cli

QUICK = ["--epochs", "0.05", "--batch-size", "128", "--population", "2", "--max-flops", "3M", "--quiet"]


def run(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(list(args))
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_search_resume_pareto_report_export_on_postgres(postgres_url, in_tmp, capsys):
    study = f"pg-{uuid.uuid4().hex[:8]}"
    code, _, err = run(capsys, "search", "--storage", postgres_url, "--study", study, "--budget", "2", *QUICK)
    assert code == 0, err
    code, out, err = run(capsys, "pareto", "--storage", postgres_url, "--study", study, "--json")
    assert code == 0, err
    front = json.loads(out)["front"]
    assert front and all(row["accuracy"] > 0 for row in front)
    # a resumed search on the same server reuses what is stored and adds the new budget only
    code, _, err = run(capsys, "search", "--storage", postgres_url, "--study", study, "--resume",
                       "--budget", "3", "--quiet")
    assert code == 0, err
    code, out, _ = run(capsys, "pareto", "--storage", postgres_url, "--study", study, "--json")
    assert code == 0
    code, _, err = run(capsys, "report", "--storage", postgres_url, "--study", study, "--out", "report")
    assert code == 0, err
    assert (in_tmp / "report" / "report.html").stat().st_size > 1000
    code, out, err = run(capsys, "export", "--storage", postgres_url, "--study", study, "--out", "exported",
                         "--format", "safetensors", "--json")
    assert code == 0, err
    cards = json.loads(out)
    assert cards and all((in_tmp / "exported" / f"trial-{c['trial']}" / "model.safetensors").exists() for c in cards)


def test_a_new_search_under_an_existing_postgres_study_name_is_refused(postgres_url, in_tmp, capsys):
    study = f"pg-{uuid.uuid4().hex[:8]}"
    assert run(capsys, "search", "--storage", postgres_url, "--study", study, "--budget", "2", *QUICK)[0] == 0
    code, _, err = run(capsys, "search", "--storage", postgres_url, "--study", study, "--budget", "2", *QUICK)
    assert code == 2 and "already exists" in err and len(err.strip().splitlines()) == 1
