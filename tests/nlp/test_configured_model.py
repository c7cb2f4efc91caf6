"""Configured models: a tiny BERT classifier built and saved by the test, and load failures."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

from nlp import resolve
from nlp.classifier import Label, SentimentClassifier
from nlp.errors import ModelLoadError
from nlp.transformer import load_classifier, map_id2label

WORDS = ["good", "bad", "great", "awful", "service", "the", "was", "ok", "none"]


def _tiny_model(folder: Path, id2label: dict[int, str]) -> Path:
    vocab = folder / "vocab.txt"
    folder.mkdir(parents=True, exist_ok=True)
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)
    config = BertConfig(
        vocab_size=5 + len(WORDS),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=len(id2label),
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_tiny_three_label_model_end_to_end(tmp_path: Path) -> None:
    folder = _tiny_model(tmp_path / "tiny3", {0: "NEG", 1: "NEU", 2: "POS"})
    clf = load_classifier(str(folder), batch_size=2)
    assert isinstance(clf, SentimentClassifier)
    assert clf.model_id == str(folder)
    assert clf.model_version.startswith("tiny3-")
    texts = ["the service was good", "bad", "none", "great great great service", "ok"]
    predictions = clf.classify(texts)
    assert len(predictions) == len(texts)
    for p in predictions:
        assert p.label in set(Label)
        assert math.isclose(sum(p.scores.values()), 1.0, rel_tol=1e-5)
        assert p.confidence == p.scores[p.label]
    # Same text alone gives the same scores as inside a padded batch.
    alone = clf.classify([texts[3]])[0]
    assert alone.scores == pytest.approx(predictions[3].scores, abs=1e-5)


def test_two_label_model_never_predicts_neutral(tmp_path: Path) -> None:
    folder = _tiny_model(tmp_path / "tiny2", {0: "LABEL_0", 1: "LABEL_1"})
    clf = load_classifier(str(folder))
    assert not clf.has_neutral
    for p in clf.classify(["none", "good", "bad service"]):
        assert p.scores["neutral"] == 0.0
        assert p.label in (Label.NEGATIVE, Label.POSITIVE)


@pytest.mark.parametrize(
    ("id2label", "expected"),
    [
        ({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, ["negative", "neutral", "positive"]),
        ({0: "NEGATIVE", 1: "POSITIVE"}, ["negative", "positive"]),
        ({0: "positive", 1: "negative", 2: "neutral"}, ["positive", "negative", "neutral"]),
        (
            {i: f"{i + 1} star{'s' if i else ''}" for i in range(5)},
            ["negative", "negative", "neutral", "positive", "positive"],
        ),
    ],
)
def test_map_id2label(id2label: dict[int, str], expected: list[str]) -> None:
    assert map_id2label(id2label) == expected


def test_unmappable_labels_are_a_load_error(tmp_path: Path) -> None:
    folder = _tiny_model(tmp_path / "topics", {0: "sports", 1: "politics"})
    with pytest.raises(ModelLoadError, match="cannot map label 'sports'"):
        load_classifier(str(folder))


def test_bad_path_names_what_was_tried(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "model"
    with pytest.raises(ModelLoadError) as info:
        load_classifier(str(missing))
    assert str(missing) in str(info.value)
    assert "does not exist" in str(info.value)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelLoadError, match=r"no config\.json"):
        load_classifier(str(empty))


def test_hub_id_without_downloads_names_every_location(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError) as info:
        load_classifier("some-org/some-sentiment-model")
    message = str(info.value)
    assert "Hugging Face cache for some-org/some-sentiment-model" in message
    assert "downloads not allowed" in message


def test_default_model_without_encoder_names_every_location(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(resolve, "BASE_ENCODER_PACKAGE", "no_such_encoder_package_xyz")
    monkeypatch.delenv("CXBOT_NLP_ENCODER_PATH", raising=False)
    configured = tmp_path / "encoder"
    with pytest.raises(ModelLoadError) as info:
        load_classifier(encoder_path=configured)
    message = str(info.value)
    assert f"configured path {configured}: does not exist" in message
    assert "installed package no_such_encoder_package_xyz" in message
    assert "hub id sentence-transformers/all-MiniLM-L6-v2" in message


def test_int8_quantisation_keeps_the_contract(tmp_path: Path) -> None:
    folder = _tiny_model(tmp_path / "tinyq", {0: "negative", 1: "neutral", 2: "positive"})
    plain = load_classifier(str(folder)).classify(["the service was good", "bad"])
    clf = load_classifier(str(folder), quantize=True)
    assert clf.model_version.endswith("-int8")
    quantized = clf.classify(["the service was good", "bad"])
    for a, b in zip(plain, quantized, strict=True):
        assert a.scores == pytest.approx(b.scores, abs=0.05)
