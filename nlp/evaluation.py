"""Scoring a classifier on labelled JSONL files (``{"text": ..., "label": ...}`` per line).

A file without any ``neutral`` row is a binary task: the classifier's neutral probability is
ignored and the prediction is the more probable of negative and positive. That is how binary
public benchmarks are scored fairly against a three-class model.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nlp.classifier import SENTIMENT_LABELS, SentimentClassifier
from nlp.errors import EvalFileError

LABELS: tuple[str, ...] = SENTIMENT_LABELS


def jsonl_records(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) of each non-blank line of a JSON Lines file; EvalFileError naming
    the file and line when it cannot be read or a line is not a JSON object."""
    p = Path(path)
    try:
        raw = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalFileError(f"{p}: cannot read: {exc}") from exc
    # Split on "\n" only: str.splitlines() would also split on U+2028 inside JSON strings.
    for lineno, line in enumerate(raw.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalFileError(f"{p}:{lineno}: not valid JSON: {exc.msg}") from exc
        if not isinstance(record, dict):
            raise EvalFileError(f"{p}:{lineno}: expected a JSON object")
        yield lineno, record


def check_label(path: Path, lineno: int, label: object) -> str:
    """`label` when it is one of LABELS, else EvalFileError naming the file and line."""
    if label not in LABELS:
        raise EvalFileError(
            f'{path}:{lineno}: "label" must be one of {", ".join(LABELS)}, got {label!r}'
        )
    return str(label)


def read_eval_file(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """Read ``(text, label)`` rows; raises EvalFileError naming the file and line on bad input."""
    p = Path(path)
    rows: list[tuple[str, str]] = []
    for lineno, record in jsonl_records(p):
        text = record.get("text")
        if not isinstance(text, str):
            raise EvalFileError(f'{p}:{lineno}: missing or non-string "text"')
        rows.append((text, check_label(p, lineno, record.get("label"))))
    if not rows:
        raise EvalFileError(f"{p}: no rows")
    return rows


@dataclass(frozen=True)
class ClassMetrics:
    """Precision, recall, F1 and support of one class."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Calibration:
    """Expected calibration error (ECE, 15 bins) of the confidences without and with the
    model's temperature (``meta.json``; 1.0 = uncalibrated, then before == after)."""

    temperature: float
    ece_before: float
    ece_after: float

    def to_dict(self) -> dict[str, float]:
        """A JSON-ready dict."""
        return {
            "temperature": self.temperature,
            "ece_before": round(self.ece_before, 4),
            "ece_after": round(self.ece_after, 4),
        }


@dataclass(frozen=True)
class EvalReport:
    """Result of an evaluation; ``binary`` is True when neutral was excluded."""

    n: int
    accuracy: float
    macro_f1: float
    per_class: dict[str, ClassMetrics]
    binary: bool
    texts_per_second: float
    seconds: float
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)
    calibration: Calibration | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (at least accuracy, macro_f1, n, texts_per_second)."""
        extra = {"calibration": self.calibration.to_dict()} if self.calibration else {}
        return {
            **extra,
            "n": self.n,
            "accuracy": round(self.accuracy, 4),
            "macro_f1": round(self.macro_f1, 4),
            "binary": self.binary,
            "texts_per_second": round(self.texts_per_second, 1),
            "seconds": round(self.seconds, 3),
            "per_class": {
                name: {
                    "precision": round(m.precision, 4),
                    "recall": round(m.recall, 4),
                    "f1": round(m.f1, 4),
                    "support": m.support,
                }
                for name, m in self.per_class.items()
            },
            "confusion": self.confusion,
        }


def _decide(probs: Sequence[float], binary: bool) -> str:
    if binary:
        neg, pos = probs[LABELS.index("negative")], probs[LABELS.index("positive")]
        return "positive" if pos > neg else "negative"
    return LABELS[max(range(len(LABELS)), key=lambda i: probs[i])]


def score(
    gold: Sequence[str],
    probs: Sequence[Sequence[float]],
    *,
    seconds: float,
    binary: bool | None = None,
) -> EvalReport:
    """Compute metrics from gold labels and per-text probabilities in ``LABELS`` order."""
    if len(gold) != len(probs):
        raise ValueError("gold and predictions differ in length")
    if binary is None:
        binary = "neutral" not in gold
    classes = [c for c in LABELS if not (binary and c == "neutral")]
    predicted = [_decide(p, binary) for p in probs]
    confusion = {g: {p: 0 for p in classes} for g in classes}
    for g, p in zip(gold, predicted, strict=True):
        confusion[g][p] += 1
    per_class: dict[str, ClassMetrics] = {}
    for c in classes:
        tp = confusion[c][c]
        predicted_c = sum(confusion[g][c] for g in classes)
        support = sum(confusion[c].values())
        precision = tp / predicted_c if predicted_c else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[c] = ClassMetrics(precision, recall, f1, support)
    n = len(gold)
    correct = sum(confusion[c][c] for c in classes)
    # Macro-F1 over the classes present in the gold labels (the usual convention).
    present = [c for c in classes if per_class[c].support > 0]
    macro = sum(per_class[c].f1 for c in present) / len(present) if present else 0.0
    return EvalReport(
        n=n,
        accuracy=correct / n if n else 0.0,
        macro_f1=macro,
        per_class=per_class,
        binary=binary,
        texts_per_second=n / seconds if seconds > 0 else 0.0,
        seconds=seconds,
        confusion=confusion,
    )


def calibration_of(
    gold: Sequence[str], probs: Sequence[Sequence[float]], temperature: float, binary: bool
) -> Calibration:
    """ECE of ``probs`` (calibrated with ``temperature``) and of the same probabilities with the
    temperature undone. A binary file is judged on negative vs positive, renormalised."""
    from nlp.calibration import expected_calibration_error, rescale

    def ece(rows: Sequence[Sequence[float]]) -> float:
        confidences: list[float] = []
        correct: list[bool] = []
        for g, row in zip(gold, rows, strict=True):
            if binary:
                neg, pos = row[LABELS.index("negative")], row[LABELS.index("positive")]
                total = neg + pos or 1.0
                confidences.append(max(neg, pos) / total)
            else:
                confidences.append(max(row))
            correct.append(_decide(row, binary) == g)
        return expected_calibration_error(confidences, correct)

    raw = [rescale(row, 1.0 / temperature) for row in probs] if temperature != 1.0 else probs
    return Calibration(temperature, ece(raw), ece(probs))


def evaluate(classifier: SentimentClassifier, rows: Sequence[tuple[str, str]]) -> EvalReport:
    """Classify every row's text (timed, batched by the classifier) and score the labels, with
    the calibration error before/after the classifier's ``temperature`` (if it has one)."""
    texts = [t for t, _ in rows]
    started = time.perf_counter()
    predictions = classifier.classify(texts)
    seconds = time.perf_counter() - started
    probs = [[p.scores.get(c, 0.0) for c in LABELS] for p in predictions]
    gold = [label for _, label in rows]
    report = score(gold, probs, seconds=seconds)
    temperature = getattr(classifier, "temperature", 1.0)
    if not isinstance(temperature, int | float) or temperature <= 0:
        temperature = 1.0
    calibration = calibration_of(gold, probs, float(temperature), report.binary)
    return replace(report, calibration=calibration)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m nlp.evaluation FILE.jsonl... [--model M] [--json]``: score the classifier."""
    import argparse

    from nlp.transformer import load_classifier

    parser = argparse.ArgumentParser(description="Evaluate the sentiment classifier.")
    parser.add_argument("files", nargs="+")
    parser.add_argument("--model", default=None, help="folder or hub id; default: shipped")
    parser.add_argument("--artefact-dir", default=None, help="trained artefact folder")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quantize", action="store_true", help="dynamic int8 (CPU)")
    args = parser.parse_args(argv)
    classifier = load_classifier(args.model, artefact_dir=args.artefact_dir, quantize=args.quantize)
    for f in args.files:
        report = evaluate(classifier, read_eval_file(f))
        if args.json:
            print(json.dumps({"file": f, **report.to_dict()}))
        else:
            kind = "binary" if report.binary else "3-class"
            cal = report.calibration
            ece = f" ECE {cal.ece_before:.3f}→{cal.ece_after:.3f}" if cal else ""
            print(
                f"{Path(f).name}: n={report.n} ({kind}) accuracy={report.accuracy:.3f} "
                f"macro-F1={report.macro_f1:.3f} {report.texts_per_second:.0f} texts/s{ece}"
            )


if __name__ == "__main__":
    main()
