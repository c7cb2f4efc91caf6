"""Corrections files: validated line by line, held-out texts refused, folded into training."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from nlp.corrections import fold_corrections, read_corrections
from nlp.errors import EvalFileError
from nlp.training import corpus_hash, train
from tests.nlp.test_training import TINY, _write_corpus


def _lines(path: Path, *records: object) -> Path:
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records),
        encoding="utf-8",
    )
    return path


def test_a_corrections_file_reads_in_the_corpus_format(tmp_path: Path) -> None:
    path = _lines(
        tmp_path / "c.jsonl",
        {"text": "the app froze at checkout", "label": "negative", "source": "correction:7"},
        "",
        {"text": "fine", "label": "neutral"},
    )
    rows = read_corrections(path)
    assert [(r.text, r.label, r.source, r.line) for r in rows] == [
        ("the app froze at checkout", "negative", "correction:7", 1),
        ("fine", "neutral", "c.jsonl:3", 3),
    ]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("not json", "c.jsonl:2: not valid JSON"),
        ('["text", "label"]', "c.jsonl:2: expected a JSON object"),
        ('{"label": "negative"}', 'c.jsonl:2: "text" must be a non-empty string'),
        ('{"text": "  ", "label": "negative"}', 'c.jsonl:2: "text" must be a non-empty string'),
        ('{"text": "ok", "label": "angry"}', 'c.jsonl:2: "label" must be one of negative'),
        ('{"text": "ok"}', 'c.jsonl:2: "label" must be one of'),
        ('{"text": "ok", "label": "neutral", "source": 3}', 'c.jsonl:2: "source" must be'),
    ],
)
def test_a_bad_line_is_named_by_its_number(tmp_path: Path, bad: str, message: str) -> None:
    path = _lines(tmp_path / "c.jsonl", {"text": "good", "label": "positive"}, bad)
    with pytest.raises(EvalFileError, match=message.replace("[", r"\[")):
        read_corrections(path)


def test_an_empty_or_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EvalFileError, match="no corrections in the file"):
        read_corrections(_lines(tmp_path / "empty.jsonl", ""))
    with pytest.raises(EvalFileError, match="cannot read"):
        read_corrections(tmp_path / "missing.jsonl")


def test_texts_of_held_out_data_are_refused_whatever_their_case_and_spacing(
    tmp_path: Path,
) -> None:
    path = _lines(
        tmp_path / "c.jsonl",
        {"text": "Still  waiting ", "label": "negative", "source": "correction:1"},
        {"text": "the refund came quickly", "label": "positive", "source": "correction:2"},
    )
    folded = fold_corrections(read_corrections(path), ["still waiting", "love it"])
    assert [c.source for c in folded.refused] == ["correction:1"]
    assert folded.rows == [("the refund came quickly", "positive")]


def test_extra_rows_join_the_training_split_and_are_recorded(tmp_path: Path) -> None:
    train_file, dev_file = _write_corpus(tmp_path)
    extra = [("the parcel arrived soaked", "negative"), ("sorted in a minute", "positive")]
    config = replace(TINY, epochs=1, probe_epochs=0)
    lines: list[str] = []
    plain = train(
        tmp_path / "plain",
        config=config,
        train_path=train_file,
        dev_path=dev_file,
        log=lambda _line: None,
    )
    folded = train(
        tmp_path / "folded",
        config=config,
        train_path=train_file,
        dev_path=dev_file,
        extra_rows=extra,
        log=lines.append,
    )

    assert (plain.train_examples, folded.train_examples) == (36, 38)
    assert folded.extra_examples == 2
    assert "corpus: 36 train + 2 extra / 12 dev from " + str(tmp_path) in lines
    meta = json.loads((tmp_path / "folded" / "meta.json").read_text(encoding="utf-8"))
    assert (meta["train_examples"], meta["extra_examples"]) == (38, 2)
    # The artefact names its training data: the corrections change the corpus hash.
    assert meta["corpus_sha256"] == corpus_hash(train_file, dev_file, extra)
    assert meta["corpus_sha256"] != corpus_hash(train_file, dev_file)
    assert plain.model_version != folded.model_version


def test_max_train_examples_trains_on_a_fixed_sample(tmp_path: Path) -> None:
    train_file, dev_file = _write_corpus(tmp_path)
    config = replace(TINY, epochs=1, probe_epochs=0, max_train_examples=10)
    reports = [
        train(
            tmp_path / name,
            config=config,
            train_path=train_file,
            dev_path=dev_file,
            extra_rows=[("the parcel arrived soaked", "negative")],
            log=lambda _line: None,
        )
        for name in ("a", "b")
    ]
    # Ten sampled corpus rows plus every extra row; the same sample each run.
    assert [r.train_examples for r in reports] == [11, 11]
    assert reports[0].model_version == reports[1].model_version
    meta = json.loads((tmp_path / "a" / "meta.json").read_text(encoding="utf-8"))
    assert meta["config"]["max_train_examples"] == 10
