"""Temperature scaling: fitted on labelled data, undoable, judged by expected calibration error."""

from __future__ import annotations

import math
import random

import pytest

from nlp.calibration import expected_calibration_error, fit_temperature, rescale
from nlp.evaluation import calibration_of


def _softmax(logits: list[float]) -> list[float]:
    top = max(logits)
    exps = [math.exp(v - top) for v in logits]
    return [e / sum(exps) for e in exps]


def test_rescale_applies_and_undoes_a_temperature() -> None:
    probs = [0.7, 0.2, 0.1]
    cooled = rescale(probs, 0.5)
    assert cooled[0] > 0.7 and sum(cooled) == pytest.approx(1.0)
    assert rescale(cooled, 1 / 0.5) == pytest.approx(probs)
    assert rescale(probs, 1.0) == pytest.approx(probs)


def test_the_fitted_temperature_is_the_one_the_labels_were_drawn_with() -> None:
    rng = random.Random(0)
    probs: list[list[float]] = []
    gold: list[int] = []
    for _ in range(2000):
        logits = [rng.gauss(0, 3) for _ in range(3)]
        # The truth is three times less sure than the model says: the model is overconfident.
        truth = _softmax([v / 3.0 for v in logits])
        gold.append(rng.choices(range(3), truth)[0])
        probs.append(_softmax(logits))
    temperature = fit_temperature(probs, gold)
    assert 2.5 < temperature < 3.5

    confidences = [max(p) for p in probs]
    correct = [p.index(max(p)) == g for p, g in zip(probs, gold, strict=True)]
    calibrated = [rescale(p, temperature) for p in probs]
    after = expected_calibration_error([max(p) for p in calibrated], correct)
    assert after < expected_calibration_error(confidences, correct) / 2


def test_ece_is_zero_when_confidence_matches_accuracy() -> None:
    assert expected_calibration_error([0.8] * 10, [True] * 8 + [False] * 2) == pytest.approx(0.0)
    assert expected_calibration_error([1.0, 1.0], [False, False]) == pytest.approx(1.0)
    assert expected_calibration_error([], []) == 0.0


def test_evaluation_reports_ece_with_and_without_the_temperature() -> None:
    gold = ["positive", "negative", "neutral", "positive"]
    raw = [[0.1, 0.1, 0.8], [0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.5, 0.1, 0.4]]
    calibrated = [rescale(row, 2.0) for row in raw]
    result = calibration_of(gold, calibrated, 2.0, binary=False)
    assert result.temperature == 2.0
    assert result.ece_before == pytest.approx(calibration_of(gold, raw, 1.0, False).ece_after)
    assert result.ece_after != pytest.approx(result.ece_before)
