"""`cxbot nlp …` with the real shipped model: classify, eval, score, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from tests.fakes.tiny_model import tiny_bert


def test_classify_prints_label_confidence_and_text(capsys: pytest.CaptureFixture[str]) -> None:
    texts = ["Couldn't have been easier, thank you!", "Never again. Worst service ever.", "none"]
    assert main(["nlp", "classify", *texts]) == 0
    lines = capsys.readouterr().out.splitlines()
    parsed = [line.split("\t") for line in lines]
    assert [(p[0].strip(), p[2]) for p in parsed] == [
        ("positive", texts[0]),
        ("negative", texts[1]),
        ("neutral", texts[2]),
    ]
    assert all(0.34 <= float(p[1]) <= 1.0 for p in parsed)


def test_classify_json_names_the_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nlp", "classify", "--json", "Worst service ever."]) == 0
    row = json.loads(capsys.readouterr().out)
    assert (row["text"], row["label"]) == ("Worst service ever.", "negative")
    assert row["model"] and row["model_version"].startswith("minilm-l6")
    assert 0.34 <= row["confidence"] <= 1.0


def test_classify_json_routes_by_language_and_never_guesses(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    words = ["der", "kurier", "war", "unfreundlich", "und", "zu", "spät"]
    german = tiny_bert(tmp_path / "german", words, always="negative")
    monkeypatch.setenv("CXBOT_SENTIMENT__MODELS", f"de={german}")
    texts = [
        "Der Kurier war unfreundlich und zu spät",
        "el servicio fue pésimo, nunca más",
        "Never again. Worst service ever.",
        "👍",
    ]
    assert main(["nlp", "classify", "--json", *texts]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["text"], r["label"], r["language"]) for r in rows] == [
        (texts[0], "negative", "de"),
        (texts[1], "unclassified", "es"),
        (texts[2], "negative", "en"),
        (texts[3], "positive", "en"),
    ]
    assert rows[0]["model"] == str(german)
    assert (rows[1]["model"], rows[1]["confidence"]) == ("none", 0.0)
    assert rows[2]["model"] == rows[3]["model"] == "cxbot/sentiment-minilm-l6"
    assert rows[0]["model_version"] == rows[1]["model_version"]  # the configuration's


def test_eval_json_has_the_contract_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "mini.jsonl"
    rows = [
        {"text": "I love it, works perfectly", "label": "positive"},
        {"text": "Terrible, it broke after a day", "label": "negative"},
        {"text": "Great support team", "label": "positive"},
        {"text": "Awful experience, I want my money back", "label": "negative"},
    ]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert main(["nlp", "eval", str(data), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"accuracy", "macro_f1", "n", "texts_per_second"} <= set(report)
    assert report["n"] == 4 and report["binary"] is True
    assert report["accuracy"] == 1.0
    assert set(report["per_class"]) == {"negative", "positive"}
    assert report["language"] == "en"
    calibration = report["calibration"]
    assert calibration["temperature"] > 0
    assert 0 <= calibration["ece_after"] <= 1 and 0 <= calibration["ece_before"] <= 1


def test_eval_of_a_language_without_a_model_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "de.jsonl"
    data.write_text('{"text": "sehr gut", "label": "positive"}\n')
    assert main(["nlp", "eval", str(data), "--language", "de"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cxbot: error: no model is configured for language 'de'")


def test_eval_bad_file_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"text": "fine", "label": "positive"}\nnot json\n')
    assert main(["nlp", "eval", str(data)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cxbot: error:") and ":2" in err


def test_a_model_that_cannot_load_names_what_was_tried(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CXBOT_SENTIMENT__MODEL", str(tmp_path / "no-such-model"))
    assert main(["nlp", "classify", "hello"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cxbot: error: cannot load sentiment model")
    assert "no-such-model" in err
