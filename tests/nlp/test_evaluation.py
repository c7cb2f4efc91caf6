"""Evaluation files, metrics and the JSON report shape."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from nlp.classifier import Label, Prediction
from nlp.errors import EvalFileError
from nlp.evaluation import evaluate, read_eval_file, score
from nlp.transformer import TransformerClassifier


class _Fixed:
    """A classifier returning fixed scores per text, to check the metric arithmetic."""

    model_id = "fixed"
    model_version = "1"

    def __init__(self, table: dict[str, tuple[float, float, float]]) -> None:
        self.table = table

    def classify(self, texts: Sequence[str]) -> list[Prediction]:
        out = []
        for t in texts:
            neg, neu, pos = self.table[t]
            scores = {"negative": neg, "neutral": neu, "positive": pos}
            label = max(scores, key=lambda k: scores[k])
            out.append(Prediction(Label(label), scores[label], scores))
        return out


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_read_eval_file_reports_bad_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text('{"text": "fine", "label": "positive"}\n\n{"text": "x", "label": "meh"}\n')
    with pytest.raises(EvalFileError, match=r"bad\.jsonl:3:.*label"):
        read_eval_file(f)
    f.write_text('{"text": "fine", "label": "positive"}\nnot json\n')
    with pytest.raises(EvalFileError, match=r"bad\.jsonl:2: not valid JSON"):
        read_eval_file(f)
    with pytest.raises(EvalFileError, match="cannot read"):
        read_eval_file(tmp_path / "missing.jsonl")


def test_three_class_metrics() -> None:
    gold = ["negative", "negative", "neutral", "positive"]
    probs = [[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.1, 0.2, 0.7]]
    report = score(gold, probs, seconds=2.0)
    assert not report.binary
    assert report.accuracy == 0.75
    assert report.per_class["negative"].recall == 0.5
    assert report.per_class["neutral"].precision == 0.5
    # F1: negative 2/3, neutral 2/3, positive 1.
    assert report.macro_f1 == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert report.texts_per_second == 2.0


def test_binary_file_ignores_neutral_probability(tmp_path: Path) -> None:
    f = _write(
        tmp_path / "bin.jsonl",
        [
            {"text": "a", "label": "negative"},
            {"text": "b", "label": "positive"},
        ],
    )
    # "a" is most likely neutral, but negative beats positive: binary scoring counts it right.
    clf = _Fixed({"a": (0.3, 0.6, 0.1), "b": (0.1, 0.5, 0.4)})
    report = evaluate(clf, read_eval_file(f))
    assert report.binary
    assert report.accuracy == 1.0
    assert set(report.per_class) == {"negative", "positive"}


def test_report_json_shape_with_real_model(
    tmp_path: Path, default_classifier: TransformerClassifier
) -> None:
    f = _write(
        tmp_path / "tiny.jsonl",
        [
            {"text": "Absolutely brilliant service, thank you!", "label": "positive"},
            {"text": "The worst experience I've ever had.", "label": "negative"},
            {"text": "none", "label": "neutral"},
        ],
    )
    data = json.loads(json.dumps(evaluate(default_classifier, read_eval_file(f)).to_dict()))
    for key in ("accuracy", "macro_f1", "n", "texts_per_second", "per_class", "binary"):
        assert key in data
    assert data["n"] == 3
    assert data["accuracy"] == 1.0
    assert data["texts_per_second"] > 0
    assert set(data["per_class"]["neutral"]) == {"precision", "recall", "f1", "support"}
