"""`nlp.training` rebuilds a loadable model reproducibly (on a tiny corpus, to stay fast)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from nlp.classifier import Label
from nlp.training import TrainConfig, train
from nlp.transformer import load_classifier

ROWS = {
    "positive": ["great service, thank you", "love it", "brilliant, so fast", "very happy"],
    "negative": ["terrible, never again", "still waiting", "awful support", "it broke"],
    "neutral": ["none", "that's it", "n/a", "it was for my brother"],
}
# Enough steps for a clear signal on these few texts, yet a few seconds on one core.
TINY = TrainConfig(epochs=4, batch_size=4, lr=3e-4, head_lr=3e-3, max_length=16)


def _write_corpus(folder: Path) -> tuple[Path, Path]:
    train_file, dev_file = folder / "train.jsonl", folder / "dev.jsonl"
    lines = [
        json.dumps({"text": text, "label": label, "source": "hand:test"})
        for label, texts in ROWS.items()
        for text in texts
    ]
    # Each text three times: a tiny corpus still needs several steps per epoch.
    train_file.write_text("\n".join(lines * 3) + "\n", encoding="utf-8")
    dev_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return train_file, dev_file


@pytest.mark.parametrize("probe_epochs", [0, 20])
def test_training_writes_a_loadable_reproducible_model(tmp_path: Path, probe_epochs: int) -> None:
    train_file, dev_file = _write_corpus(tmp_path)
    config = replace(TINY, probe_epochs=probe_epochs)
    lines: list[str] = []
    reports = [
        train(
            tmp_path / name,
            config=config,
            train_path=train_file,
            dev_path=dev_file,
            log=lines.append,
        )
        for name in ("a", "b")
    ]

    meta = json.loads((tmp_path / "a" / "meta.json").read_text(encoding="utf-8"))
    assert meta["config"]["probe_epochs"] == probe_epochs
    assert meta["model_version"] == reports[0].model_version
    assert len(meta["history"]) == TINY.epochs
    # Same seed, data and thread count: bit-identical weights, hence the same version.
    assert reports[0].model_version == reports[1].model_version
    assert (tmp_path / "a" / "adapter.safetensors").read_bytes() == (
        tmp_path / "b" / "adapter.safetensors"
    ).read_bytes()
    assert any(line.startswith("epoch 1:") for line in lines)
    assert any(line.startswith("probe") for line in lines) == (probe_epochs > 0)
    # Texts are prepared as at inference, and confidences are calibrated on the dev split.
    assert meta["text_preparation"] == "chat-v1"
    assert meta["temperature"] > 0 and meta["calibration"]["fitted_on"] == "dev.jsonl"
    assert any(line.startswith("calibration: temperature") for line in lines)

    clf = load_classifier(str(tmp_path / "a"))
    assert clf.model_version == reports[0].model_version
    predictions = clf.classify(ROWS["positive"] + ROWS["negative"])
    labels = [p.label for p in predictions]
    assert labels.count(Label.POSITIVE) >= 3
    assert labels.count(Label.NEGATIVE) >= 3


def test_unknown_mode_is_refused(tmp_path: Path) -> None:
    train_file, dev_file = _write_corpus(tmp_path)
    with pytest.raises(ValueError, match="unknown training mode"):
        train(
            tmp_path / "out",
            config=replace(TINY, mode="everything"),
            train_path=train_file,
            dev_path=dev_file,
            log=lambda _line: None,
        )
