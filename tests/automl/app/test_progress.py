"""Output for logs: plain progress lines when not a terminal, nothing wrapped, tables that
fall back to one record per line where they do not fit."""

from __future__ import annotations

import io

from rich.console import Console

from automl.app.commands.console import LogConsole
from automl.app.progress import PlainProgress, RichProgress, choose_progress
from automl.core.progress import SilentProgress
from automl.reporting.tables import show_table

GENOME = "stem16-ir_r1_k3_e1_c16-ir_r2_k3_e6_c24-ir_r2_k5_e6_c32-ir_r3_k3_e6_c64-ir_r1_k7_e3_c96-head256"


def _log() -> tuple[LogConsole, io.StringIO]:
    stream = io.StringIO()
    return LogConsole(file=stream), stream


def test_the_renderer_follows_the_stream_and_the_flags():
    log, _ = _log()
    terminal = Console(file=io.StringIO(), force_terminal=True)
    assert isinstance(choose_progress(log), PlainProgress)
    assert isinstance(choose_progress(terminal), RichProgress)
    assert isinstance(choose_progress(terminal, as_json=True), PlainProgress)  # stdout holds the JSON
    assert type(choose_progress(log, quiet=True)) is SilentProgress


def test_plain_progress_logs_each_candidate_and_each_tenth_of_its_epochs():
    log, stream = _log()
    progress = PlainProgress(log)
    progress.search_started(2, 0)
    progress.generation_started(0, 2)
    progress.candidate_started(GENOME)
    for epoch in range(1, 31):
        progress.epoch_finished(epoch, 30, 1.0 / epoch)
    progress.candidate_finished(GENOME, {"accuracy": 0.91, "flops": 5.2e6}, {"trial": 0, "seconds": 3.0})
    progress.candidate_started("short")
    progress.candidate_finished("short", None, {"trial": 1, "reason": "loss is nan"})
    progress.search_finished()
    lines = stream.getvalue().splitlines()
    assert sum("epoch " in line for line in lines) == 10  # 30 epochs: one line per 3
    assert any(line.endswith("epoch 30/30: loss 0.033") for line in lines)
    assert any(f"candidate 1/2: trial 0: {GENOME}  accuracy 0.9100  5.20 MFLOPs  (3.0s)" in line for line in lines)
    assert any("candidate 2/2: failed trial 1: short: loss is nan" in line for line in lines)
    assert sum(GENOME in line for line in lines) == 2  # started and finished, each whole on one line


def test_a_log_console_never_wraps():
    log, stream = _log()
    log.print(f"trial 3: {GENOME} " * 5)
    show_table(log, "front", ["trial", "genome"], [["3", GENOME * 3]])
    text = stream.getvalue()
    assert len(text.splitlines()[0]) > 400
    assert sum(GENOME * 3 in line for line in text.splitlines()) == 1


def test_a_table_too_wide_for_the_terminal_becomes_one_record_per_line():
    stream = io.StringIO()
    narrow = Console(file=stream, force_terminal=True, width=60)
    show_table(narrow, "Pareto front", ["trial", "genome", "accuracy"], [["0", GENOME, "0.9100"], ["1", "a", "0.5"]])
    lines = stream.getvalue().splitlines()
    assert lines[0].strip().endswith("Pareto front")
    assert any(f"trial: 0  genome: {GENOME}  accuracy: 0.9100" in line for line in lines)
    stream = io.StringIO()
    wide = Console(file=stream, force_terminal=True, width=200)
    show_table(wide, "Pareto front", ["trial", "genome"], [["0", GENOME]])
    assert "┃" in stream.getvalue() and sum(GENOME in line for line in stream.getvalue().splitlines()) == 1
