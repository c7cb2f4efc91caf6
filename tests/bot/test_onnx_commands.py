"""`cxbot nlp export-onnx`: what each configured model gets, and a failed export named."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlp.onnx_export import INFO_FILE, export_folder, store_export
from tests.fakes.cli_runner import cli_runner
from tests.fakes.handmade_onnx import handmade_adapter, write_handmade_model
from tests.fakes.tiny_model import tiny_bert


def configure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **sentiment: str) -> None:
    monkeypatch.setenv("CXBOT_GENERAL__DATA_DIR", str(tmp_path / "data"))
    for key, value in sentiment.items():
        monkeypatch.setenv(f"CXBOT_SENTIMENT__{key.upper()}", value)


def test_a_cached_export_is_reported_up_to_date(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    adapter = handmade_adapter(tmp_path / "adapter")
    cache = tmp_path / "cache"
    store_export(cache, "hand-1", write_handmade_model, source="handmade")
    configure(monkeypatch, tmp_path, model=str(adapter), onnx_cache_dir=str(cache))
    code, out, _ = cli_runner(capsys)("nlp", "export-onnx")
    assert code == 0
    assert out.split("\t") == [
        "en",
        str(adapter),
        "hand-1",
        "up to date",
        str(export_folder(cache, "hand-1")),
    ]


def test_a_hugging_face_model_has_nothing_to_export(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tiny_bert(tmp_path / "hf", ["great"])
    configure(monkeypatch, tmp_path, model=str(folder))
    code, out, _ = cli_runner(capsys)("nlp", "export-onnx")
    assert (code, out) == (0, f"en\t{folder}\truns on torch (not a cxbot model): nothing to export")


def test_a_model_that_cannot_be_exported_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A damaged cache folder sends it back to torch, which cannot read the (empty) weights.
    adapter = handmade_adapter(tmp_path / "adapter")
    cache = tmp_path / "cache"
    store_export(cache, "hand-1", write_handmade_model, source="handmade")
    (export_folder(cache, "hand-1") / INFO_FILE).unlink()
    configure(monkeypatch, tmp_path, model=str(adapter), onnx_cache_dir=str(cache))
    code, _, err = cli_runner(capsys)("nlp", "export-onnx")
    assert code == 1
    assert f"en model '{adapter}'" in err
    assert "missing or damaged" in err
