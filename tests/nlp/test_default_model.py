"""The shipped default model loads from the installed package and gets obvious cases right."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from nlp.classifier import Label, Prediction, SentimentClassifier
from nlp.transformer import SHIPPED_MODEL_DIR, TransformerClassifier

POSITIVE = [
    "The delivery was super fast and the driver was lovely, thank you!",
    "Couldn't have been easier.",
    "Sarah on support sorted everything out in five minutes. Brilliant service.",
    "love it 😍",
]
NEGATIVE = [
    "Still waiting for my refund after six weeks. Terrible.",
    "Never again.",
    "Oh wonderful, it crashed again.",
    "The parcel arrived smashed and nobody answers the phone.",
]
NEUTRAL = ["none", "that's it", "n/a", "it was for my brother", "no comment"]


def test_is_a_sentiment_classifier(default_classifier: TransformerClassifier) -> None:
    assert isinstance(default_classifier, SentimentClassifier)
    assert default_classifier.model_id
    meta = json.loads((SHIPPED_MODEL_DIR / "meta.json").read_text(encoding="utf-8"))
    assert default_classifier.model_version == meta["model_version"]


@pytest.mark.parametrize(
    ("texts", "expected"),
    [(POSITIVE, Label.POSITIVE), (NEGATIVE, Label.NEGATIVE), (NEUTRAL, Label.NEUTRAL)],
    ids=["positive", "negative", "neutral-non-answers"],
)
def test_obvious_cases(
    default_classifier: TransformerClassifier, texts: list[str], expected: Label
) -> None:
    predictions = default_classifier.classify(texts)
    got = {text: p.label for text, p in zip(texts, predictions, strict=True)}
    assert got == dict.fromkeys(texts, expected)


def test_predictions_are_well_formed_and_in_input_order(
    default_classifier: TransformerClassifier,
) -> None:
    texts = ["x " * 600, "great", "", "terrible, awful service", "ok"]  # long text is truncated
    predictions = default_classifier.classify(texts)
    assert len(predictions) == len(texts)
    for p in predictions:
        assert isinstance(p, Prediction)
        assert set(p.scores) == {"negative", "neutral", "positive"}
        assert math.isclose(sum(p.scores.values()), 1.0, rel_tol=1e-4)
        assert p.confidence == max(p.scores.values()) == p.scores[p.label]
    assert predictions[1].label is Label.POSITIVE
    assert predictions[3].label is Label.NEGATIVE
    # Batching must not change results: one-by-one equals batched.
    single = default_classifier.classify([texts[3]])[0]
    assert single.label == predictions[3].label
    assert math.isclose(single.confidence, predictions[3].confidence, abs_tol=1e-4)


def test_empty_input_and_single_string(default_classifier: TransformerClassifier) -> None:
    assert default_classifier.classify([]) == []
    with pytest.raises(TypeError):
        default_classifier.classify("a single string")


def test_shipped_artefact_is_small_and_described() -> None:
    sizes = sum(f.stat().st_size for f in Path(SHIPPED_MODEL_DIR).iterdir() if f.is_file())
    assert sizes < 25 * 1024 * 1024
    meta = json.loads((SHIPPED_MODEL_DIR / "meta.json").read_text(encoding="utf-8"))
    for key in ("model_version", "corpus_sha256", "config", "dev", "base_encoder"):
        assert key in meta


def test_shipped_model_was_trained_on_the_shipped_corpus() -> None:
    from nlp.training import DATA_DIR, corpus_hash

    meta = json.loads((SHIPPED_MODEL_DIR / "meta.json").read_text(encoding="utf-8"))
    assert meta["corpus_sha256"] == corpus_hash(DATA_DIR / "train.jsonl", DATA_DIR / "dev.jsonl")


def test_a_trained_adapter_folder_loads_as_a_configured_model(tmp_path: Path) -> None:
    import shutil

    from nlp.transformer import load_classifier

    folder = tmp_path / "my-model"
    shutil.copytree(SHIPPED_MODEL_DIR, folder)
    clf = load_classifier(str(folder))
    assert clf.model_id == str(folder)
    assert clf.classify(["never again"])[0].label is Label.NEGATIVE
