"""Temperature scaling: confidences that mean what they say.

A classifier's softmax confidence is usually not a probability of being right (label smoothing
in training, for one, makes it timid). Temperature scaling divides the logits by one number
``T`` fitted to minimise the negative log-likelihood on held-out labelled data — the project's
dev split (``nlp/data/dev.jsonl``), never the evaluation sets. Labels never change (the argmax
is the same), only confidences. ``T`` is stored in the model's ``meta.json`` as
``temperature`` and every backend applies it: ``softmax(logits / T)``.

Everything here works on probabilities, not logits: ``log p`` equals the logits up to a
per-text constant, which softmax ignores, so ``softmax(log(p) / T)`` is the calibrated
distribution and ``softmax(T · log(p_T))`` undoes a calibration.

``python -m nlp.calibration MODEL_DIR`` fits ``T`` for a trained folder and writes it (with
the dev split's expected calibration error before and after) into its ``meta.json``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_TINY = 1e-45


def rescale(probs: Sequence[float], factor: float) -> list[float]:
    """``softmax(log(probs) / factor)``: apply a temperature (or undo one with ``1 / T``)."""
    logs = [math.log(max(p, _TINY)) / factor for p in probs]
    top = max(logs)
    exps = [math.exp(v - top) for v in logs]
    total = sum(exps)
    return [e / total for e in exps]


def _nll(probs: Sequence[Sequence[float]], gold: Sequence[int], temperature: float) -> float:
    total = 0.0
    for row, g in zip(probs, gold, strict=True):
        total -= math.log(max(rescale(row, temperature)[g], _TINY))
    return total / max(1, len(gold))


def fit_temperature(
    probs: Sequence[Sequence[float]],
    gold: Sequence[int],
    *,
    low: float = 0.05,
    high: float = 20.0,
    iterations: int = 60,
) -> float:
    """The temperature minimising the mean negative log-likelihood of ``gold`` (class indexes)
    under ``probs`` (uncalibrated). Golden-section search on log T: the NLL is unimodal in T."""
    if not gold:
        return 1.0
    a, b = math.log(low), math.log(high)
    ratio = (math.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = _nll(probs, gold, math.exp(c)), _nll(probs, gold, math.exp(d))
    for _ in range(iterations):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = _nll(probs, gold, math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = _nll(probs, gold, math.exp(d))
    return round(math.exp((a + b) / 2), 4)


def expected_calibration_error(
    confidences: Sequence[float], correct: Sequence[bool], bins: int = 15
) -> float:
    """ECE: the confidence-weighted gap between confidence and accuracy, over ``bins`` equal-width
    confidence bins (Guo et al., 2017). 0 is perfectly calibrated."""
    n = len(confidences)
    if n == 0:
        return 0.0
    sums = [[0.0, 0.0, 0] for _ in range(bins)]
    for conf, ok in zip(confidences, correct, strict=True):
        b = min(bins - 1, int(conf * bins))
        sums[b][0] += conf
        sums[b][1] += 1.0 if ok else 0.0
        sums[b][2] += 1
    return sum(abs(c - a) for c, a, _ in sums) / n


def calibrate_dir(
    model_dir: str | os.PathLike[str],
    dev_path: str | os.PathLike[str] | None = None,
    *,
    encoder_path: str | os.PathLike[str] | None = None,
    num_threads: int | None = None,
) -> dict[str, Any]:
    """Fit the temperature of the trained folder ``model_dir`` on the dev split and write it into
    its ``meta.json`` (``temperature``, ``calibration``); returns the ``calibration`` entry."""
    from nlp.classifier import SENTIMENT_LABELS
    from nlp.evaluation import read_eval_file
    from nlp.training import DATA_DIR
    from nlp.transformer import load_classifier

    folder = Path(model_dir)
    dev_file = Path(dev_path) if dev_path else DATA_DIR / "dev.jsonl"
    rows = read_eval_file(dev_file)
    classifier = load_classifier(
        str(folder), encoder_path=encoder_path, temperature=1.0, num_threads=num_threads
    )
    predictions = classifier.classify([t for t, _ in rows])
    probs = [[p.scores[c] for c in SENTIMENT_LABELS] for p in predictions]
    gold = [SENTIMENT_LABELS.index(label) for _, label in rows]
    temperature = fit_temperature(probs, gold)
    entry = {
        "fitted_on": dev_file.name,
        "n": len(rows),
        "ece_before": round(_ece(probs, gold, 1.0), 4),
        "ece_after": round(_ece(probs, gold, temperature), 4),
        "nll_before": round(_nll(probs, gold, 1.0), 4),
        "nll_after": round(_nll(probs, gold, temperature), 4),
    }
    meta_path = folder / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["temperature"] = temperature
    meta["calibration"] = entry
    meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return {"temperature": temperature, **entry}


def _ece(probs: Sequence[Sequence[float]], gold: Sequence[int], temperature: float) -> float:
    scaled = [rescale(row, temperature) for row in probs]
    confidences = [max(row) for row in scaled]
    correct = [row.index(max(row)) == g for row, g in zip(scaled, gold, strict=True)]
    return expected_calibration_error(confidences, correct)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m nlp.calibration MODEL_DIR [--dev FILE]``: fit and store the temperature."""
    import argparse

    parser = argparse.ArgumentParser(description="Fit a trained model's temperature on dev.")
    parser.add_argument("model_dir")
    parser.add_argument("--dev", default=None, help="labelled JSONL; default nlp/data/dev.jsonl")
    args = parser.parse_args(argv)
    print(json.dumps(calibrate_dir(args.model_dir, args.dev)))


if __name__ == "__main__":
    main()
