"""bench/dashboard.py at a tiny size, so that it cannot rot: its table, not its timings."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "dashboard.py"
NUMBER = r"\d+(?:\.\d+)?"
TINY = ["--responses=300", "--rounds=2", "--exports=1", "--cold-rounds=1", "--no-postgres"]
PAGES = (
    "year by day",
    "year by week",
    "year by month",
    "week, delivery+telegram+pro, by touchpoint",
    "month, by segment:plan",
)


def test_a_tiny_run_on_sqlite_prints_every_page_and_the_export(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), *TINY],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "bot.analytics.build_analytics: the service, no HTTP" in out
    assert "300 responses over 365 days" in out
    for page in PAGES:
        row = next(line for line in out.splitlines() if line.strip().startswith(page))
        # p50, p99, mean, first view and the full-count baseline
        assert len(re.findall(NUMBER, row[row.index(page) + len(page) :])) == 5, row
    assert re.search(rf"full CSV export \(\d+ rows, 1 runs\): p50 {NUMBER} ms", out)
    assert re.search(r"[\d,]+ rows/s", out)
    assert "p99 of the page < 500 ms on PostgreSQL: not measured" in out
    assert "seeded 300 responses" in done.stderr
