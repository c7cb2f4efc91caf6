"""Tiny Hugging Face sequence-classification models, built and saved by the tests themselves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

LABELS_3 = {0: "negative", 1: "neutral", 2: "positive"}


def tiny_bert(
    folder: Path,
    words: Sequence[str],
    *,
    id2label: dict[int, str] | None = None,
    always: str | None = None,
) -> Path:
    """Save a 2-layer BERT classifier with a vocabulary of ``words`` into ``folder``.

    ``always`` (a label name) zeroes the head and biases it towards that label, so the model
    answers it for every text with high confidence: a per-language model whose verdict a test
    can predict.
    """
    labels = id2label or LABELS_3
    folder.mkdir(parents=True, exist_ok=True)
    vocab = folder / "vocab.txt"
    vocab.write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n", encoding="utf-8"
    )
    tokenizer = BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)
    config = BertConfig(
        vocab_size=5 + len(words),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=len(labels),
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
    )
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    if always is not None:
        target = next(i for i, name in labels.items() if name == always)
        with torch.no_grad():
            model.classifier.weight.zero_()
            model.classifier.bias.zero_()
            model.classifier.bias[target] = 6.0
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
