"""bench/sentiment.py at a tiny size, so that it cannot rot: its table, not its timings."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "sentiment.py"
NUMBER = r"\d+(?:\.\d+)?"


@pytest.mark.slow
def test_a_quick_run_prints_every_backend_the_targets_agreement_and_memory(
    tmp_path: Path,
) -> None:
    labelled = tmp_path / "tiny.jsonl"
    rows = [("Great support, thanks!", "positive"), ("It crashed again.", "negative")]
    labelled.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in rows))
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--eval", str(labelled)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for backend in ("onnx", "torch", "pipeline"):
        row = next(line for line in out.splitlines() if line.startswith(f"{backend} "))
        assert len(re.findall(NUMBER, row)) == 4, row
    assert re.search(
        rf"target: ONNX batched >= 1.5x torch batched: {NUMBER}x \((met|NOT met)\)", out
    )
    assert re.search(rf"target: ONNX single-text p50 <= 10 ms: {NUMBER} ms", out)
    assert re.search(r"tiny\.jsonl +2/2 = 100\.00%", out)
    assert re.search(rf"sentiment off +{NUMBER}", out)
    assert re.search(rf"backend onnx +idle, model not loaded yet +{NUMBER}", out)
    assert re.search(rf"backend onnx +after the first classification +{NUMBER}", out)
