"""bench/telegram.py at a tiny size, so that it cannot rot: its table, not its timings."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "telegram.py"
NUMBER = r"\d+(?:\.\d+)?"
FIGURES = 9  # updates/s, CPU, API, SQL/upd, SQL/turn, lag p50/p99, latency p50/p99


def _cells(line: str, label: str) -> list[str]:
    """The figures after `label` in a table row."""
    assert label in line, line
    return line.split(label, 1)[1].split()


def test_one_round_on_sqlite_prints_every_row_and_figure(tmp_path: Path) -> None:
    tiny = ["--customers=3", "--concurrency=3", "--runs=1", "--sqlite-only"]
    done = subprocess.run(
        [sys.executable, str(BENCH), *tiny],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Telegram bench: 3 customers × 6 updates, 3 at a time")
    assert lines[1].startswith("(the fake and the customers in a process of their own; ")

    cxbot = next(line for line in lines if line.startswith("1.1 "))
    cells = _cells(cxbot, "cxbot SQLite")
    assert cells[0] == "18"  # every update of every survey answered
    assert len(cells) == 1 + FIGURES
    assert all(re.fullmatch(NUMBER, c) for c in cells[1:]), cxbot
    assert float(cells[5]) > 0  # SQL per turn: the turn's transaction was counted

    baseline = next(line for line in lines if line.startswith("1.2 "))
    cells = _cells(baseline, "baseline PTB (dict)")
    assert cells[0] == "18"
    assert cells[4:6] == ["–", "–"]  # no SQL
    assert all(re.fullmatch(NUMBER, c) for c in cells[1:4] + cells[6:]), baseline

    medians = [line for line in lines if line.startswith("median ")]
    assert [m.split("×")[0].split(None, 1)[1].strip() for m in medians] == [
        "cxbot SQLite",
        "baseline PTB (dict)",
    ]
    assert any(line.startswith("SQL/upd of cxbot SQLite (medians): turns ") for line in lines)
    ratio = next(line for line in lines if line.startswith("cxbot / baseline updates/s on SQLite"))
    assert re.search(
        rf"SQLite:\s+{NUMBER}\s+\(rounds: {NUMBER}; target ≥ 0.8: (met|not met)\)", ratio
    )
    assert not any("PostgreSQL" in line for line in lines)
    assert lines[-1].startswith("2 runs (1 round of cxbot SQLite, baseline PTB (dict)) in ")
