"""bench/scale.py at a tiny size, so that it cannot rot: its table, not its timings."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "scale.py"
NUMBER = r"\d+(?:\.\d+)?"
TINY = ["--invitations=4", "--customers=2", "--concurrency=2", "--batch=2", "--callers=2"]


def _bench(tmp_path: Path, *options: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, str(BENCH), *TINY, *options],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.splitlines()


def _figures(lines: list[str], label: str) -> list[str]:
    """The cells after a configuration's label, e.g. "SQLite × 1, 8 in flight"."""
    line = next(line for line in lines if line.startswith(label))
    return line[len(label) :].replace("=", " ").replace("+", " ").split()


def test_one_process_on_sqlite_prints_its_row(tmp_path: Path) -> None:
    lines = _bench(tmp_path, "--no-postgres")
    assert lines[0].startswith("Scale bench: 4 invitations (batches of 2, 2 callers), then 2 ")
    assert "[delivery] max_in_flight = 8" in lines[1]
    cells = _figures(lines, "SQLite × 1, 8 in flight")
    # invitations: inv/s, p50, p99, API/s, CPU% = 4 parts, ms/inv; turns: the same three + 6
    assert len(cells) == 4 + 6 + 3 + 6, cells
    assert all(re.fullmatch(NUMBER, c) or c == "–" for c in cells), cells
    assert float(cells[0]) > 0 and float(cells[10]) > 0  # invitations/s, turns/s
    assert not any(line.startswith("PostgreSQL") for line in lines)
    assert lines[-1].startswith("1 configurations in ")


@pytest.mark.postgres
@pytest.mark.slow
def test_two_fleet_sizes_on_postgresql_print_the_scaling_ratio_and_a_profile(
    tmp_path: Path,
) -> None:
    profiles = tmp_path / "profiles"
    lines = _bench(
        tmp_path, "--processes=1,2", "--no-sqlite", "--max-in-flight=2", f"--profile={profiles}"
    )
    if any("PostgreSQL: skipped" in line for line in lines):
        pytest.skip("PostgreSQL not reachable")
    for label in ("PostgreSQL × 1, 2 in flight", "PostgreSQL × 2, 2 in flight"):
        assert float(_figures(lines, label)[0]) > 0
    ratio = next(line for line in lines if line.startswith("PostgreSQL, 2 in flight, 2 proc"))
    assert re.fullmatch(
        rf"PostgreSQL, 2 in flight, 2 processes ÷ 1: invitations/s {NUMBER}×, turns/s {NUMBER}×",
        ratio,
    )
    # The largest fleet once more under py-spy, left out of the ratios.
    profiled = "PostgreSQL × 2, 2 in flight (profiled)"
    assert float(_figures(lines, profiled)[0]) > 0
    assert sum(line.startswith("PostgreSQL, 2 in flight") for line in lines) == 1
    for phase in ("invitations", "turns"):
        assert any(line.startswith(f"profile of {profiled}, {phase}") for line in lines), lines
    assert lines[-1].startswith("3 configurations in ")
