"""The shipped corpus is what the generator builds, and shares nothing with the eval sets."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path

import pytest

from nlp.data import generate

DATA = Path(generate.__file__).resolve().parent
# The evaluation sets live in ../shared/eval beside the repository (CI and developers alike).
REPO = Path(__file__).resolve().parents[2]
EVAL_DIR = Path(os.environ.get("CXBOT_EVAL_DIR", REPO.parent / "shared" / "eval"))


def _load(name: str) -> list[dict[str, str]]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_generator_reproduces_the_shipped_files() -> None:
    train, dev = generate.build()
    assert [(e.text, e.label) for e in train] == [
        (r["text"], r["label"]) for r in _load("train.jsonl")
    ]
    assert [(e.text, e.label) for e in dev] == [(r["text"], r["label"]) for r in _load("dev.jsonl")]


def test_corpus_is_balanced_enough_and_disjoint() -> None:
    train, dev = _load("train.jsonl"), _load("dev.jsonl")
    counts = Counter(r["label"] for r in train)
    assert min(counts.values()) > 0.2 * len(train)
    assert not {r["text"] for r in train} & {r["text"] for r in dev}


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


@pytest.mark.skipif(not EVAL_DIR.is_dir(), reason="evaluation sets not present")
def test_no_evaluation_text_in_the_corpus() -> None:
    corpus = {_norm(r["text"]) for name in ("train.jsonl", "dev.jsonl") for r in _load(name)}
    corpus = {t for t in corpus if len(t.split()) >= 5}  # short stock phrases occur anywhere
    for f in sorted(EVAL_DIR.glob("*.jsonl")):
        lines = f.read_text(encoding="utf-8").split("\n")
        texts = {_norm(json.loads(line)["text"]) for line in lines if line}
        overlap = sorted(corpus & texts)
        assert not overlap, f"{f.name} shares {len(overlap)} texts, e.g. {overlap[:3]}"
