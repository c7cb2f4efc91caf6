"""`cxbot nlp corrections export` and `cxbot nlp train --with-corrections` as users call them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import build_app
from bot.config import load_settings
from nlp.corrections import read_corrections
from storage import conversations, customers, flow_versions, sentiment
from storage.database import transaction
from storage.label_corrections import add_correction
from tests.fakes.cli_runner import Run, cli_runner
from tests.nlp.test_training import ROWS, _write_corpus

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def cxbot(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Run:
    monkeypatch.setenv("CXBOT_GENERAL__DATA_DIR", str(tmp_path / "data"))
    return cli_runner(capsys)


def _store(texts: list[str], fixes: list[tuple[int, str, datetime]]) -> list[int]:
    """Store text answers (labelled neutral by the model), then corrections of them by index;
    the corrections' ids."""
    app = build_app(load_settings())
    try:
        with transaction(app.db) as s:
            cust = customers.upsert_customer(s, channel="telegram", external_id="42")
            version = flow_versions.publish_flow_version(s, flow_id="f", checksum="c", source="s")
            assert cust.id is not None
            conv = conversations.start_conversation(
                s,
                customer_id=cust.id,
                channel="telegram",
                flow_id="f",
                flow_version=version.version,
                locale="en",
                context={},
            )
            answers = []
            for text in texts:
                answer = conversations.add_answer(
                    s,
                    conversation=conv,
                    question_id="why",
                    question_type="text",
                    raw_text=text,
                    value_text=text,
                )
                sentiment.add_score(
                    s,
                    answer_id=answer.id,
                    label="neutral",
                    confidence=0.5,
                    model_id="shipped",
                    model_version="v1",
                )
                answers.append(answer.id)
        ids = []
        for index, label, when in fixes:
            with transaction(app.db) as s:
                fix = add_correction(
                    s, answer_id=answers[index], new_label=label, actor="desk:a@x", now=when
                )
                assert fix.id is not None
                ids.append(fix.id)
        return ids
    finally:
        app.close()


def test_export_writes_the_newest_correction_of_each_answer(cxbot: Run, tmp_path: Path) -> None:
    first, newest, great, _blank = _store(
        ["the courier was late, again", "great, thanks", "   ", "not corrected"],
        [
            (0, "positive", T0),
            (0, "negative", T0.replace(hour=10)),
            (1, "positive", T0.replace(day=3)),
            (2, "negative", T0.replace(day=3)),
        ],
    )
    code, out, err = cxbot("nlp", "corrections", "export")
    assert code == 0
    assert [json.loads(line) for line in out.splitlines()] == [
        {
            "text": "the courier was late, again",
            "label": "negative",
            "source": f"correction:{newest}",
        },
        {"text": "great, thanks", "label": "positive", "source": f"correction:{great}"},
    ]
    assert f"correction:{first}" not in out
    assert err == (
        "exported 2 correction(s) to standard output; 1 left out: their text is blank or erased"
    )

    target = tmp_path / "corrections.jsonl"
    code, file_out, err = cxbot("nlp", "corrections", "export", "--output", str(target))
    assert (code, file_out) == (0, "")
    assert target.read_text(encoding="utf-8") == out + "\n"
    assert err.startswith(f"exported 2 correction(s) to {target};")
    # The export is a valid input of `nlp train --with-corrections`.
    assert [c.source for c in read_corrections(target)] == [
        f"correction:{newest}",
        f"correction:{great}",
    ]

    code, out, err = cxbot("nlp", "corrections", "export", "--since", "2026-11-03")
    assert code == 0 and [json.loads(line)["label"] for line in out.splitlines()] == ["positive"]


def test_export_with_nothing_stored_writes_an_empty_file(cxbot: Run, tmp_path: Path) -> None:
    target = tmp_path / "none.jsonl"
    assert cxbot("nlp", "corrections", "export", "--output", str(target)) == (
        0,
        "",
        f"exported 0 correction(s) to {target}",
    )
    assert target.read_text(encoding="utf-8") == ""


def test_export_bad_input_is_a_clear_error(
    cxbot: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _store(["it broke"], [(0, "negative", T0)])
    target = tmp_path / "no-such-folder" / "c.jsonl"
    code, out, err = cxbot("nlp", "corrections", "export", "--output", str(target))
    assert (code, out) == (1, "")
    assert err.startswith(f"cxbot: error: {target}: cannot write:")
    assert not target.parent.exists()

    with pytest.raises(SystemExit) as exited:
        cxbot("nlp", "corrections", "export", "--since", "03/11/2026")
    assert exited.value.code == 2
    assert "expected a day as YYYY-MM-DD, got '03/11/2026'" in capsys.readouterr().err


def _jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_train_with_corrections_prints_before_and_after_figures(cxbot: Run, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    _write_corpus(corpus)
    corrections = _jsonl(
        tmp_path / "corrections.jsonl",
        [
            # The dev split has "still waiting": training on it would flatter the dev figures.
            {"text": "Still  Waiting", "label": "negative", "source": "correction:1"},
            {"text": "the parcel arrived soaked", "label": "negative", "source": "correction:2"},
            {"text": "sorted in a minute, thanks", "label": "positive", "source": "correction:3"},
        ],
    )
    extra = _jsonl(
        tmp_path / "extra.jsonl",
        [
            {"text": "awful, it broke in a day", "label": "negative"},
            {"text": "wonderful, thank you", "label": "positive"},
        ],
    )
    out_dir = tmp_path / "model"
    code, out, err = cxbot(
        "nlp",
        "train",
        "--corpus",
        str(corpus),
        "--with-corrections",
        str(corrections),
        "--eval",
        str(extra),
        "--epochs",
        "1",
        "--output",
        str(out_dir),
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["output_dir"] == str(out_dir)
    assert summary["corrections"] == {
        "file": str(corrections),
        "trained": 2,
        "refused": ["correction:1"],
    }
    assert summary["train_examples"] == 3 * sum(len(t) for t in ROWS.values()) + 2
    meta = json.loads((out_dir / "meta.json").read_text(encoding="utf-8"))
    assert meta["extra_examples"] == 2 and meta["model_version"] == summary["model_version"]
    assert "refused correction:1 (line 1): its text is in the dev split or an --eval file" in err
    assert [f["file"] for f in summary["figures"]] == ["dev", str(extra)]
    assert [f["n"] for f in summary["figures"]] == [12, 2]

    # "before" is the configured model (here the shipped one), "after" the new one: the same
    # figures `cxbot nlp eval` gives for each.
    for figures in summary["figures"]:
        path = corpus / "dev.jsonl" if figures["file"] == "dev" else extra
        code, before, _ = cxbot("nlp", "eval", str(path), "--json")
        assert code == 0
        assert _pair(json.loads(before)) == figures["before"]
        code, after, _ = cxbot(
            "--config", str(_config(tmp_path, out_dir)), "nlp", "eval", str(path), "--json"
        )
        assert code == 0
        assert _pair(json.loads(after)) == figures["after"]
    dev = summary["figures"][0]
    assert "before (the model in use) → after (the new model):" in err
    row = next(line for line in err.splitlines() if line.startswith("dev "))
    assert row.split() == [
        "dev",
        "n=12",
        "accuracy",
        f"{dev['before']['accuracy']:.3f}",
        "→",
        f"{dev['after']['accuracy']:.3f}",
        "macro-F1",
        f"{dev['before']['macro_f1']:.3f}",
        "→",
        f"{dev['after']['macro_f1']:.3f}",
    ]


def _pair(report: dict[str, float]) -> dict[str, float]:
    return {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"]}


def _config(tmp_path: Path, model: Path) -> Path:
    config = tmp_path / "new-model.toml"
    config.write_text(f'[sentiment]\nmodel = "{model}"\n', encoding="utf-8")
    return config


def test_a_bad_corrections_file_trains_nothing(cxbot: Run, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    _write_corpus(corpus)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "it broke", "label": "negative"}\n{"text": "meh", "label": "bad"}\n')
    out_dir = tmp_path / "model"
    args = ["nlp", "train", "--corpus", str(corpus), "--output", str(out_dir)]

    code, out, err = cxbot(*args, "--with-corrections", str(bad))
    assert (code, out) == (1, "")
    assert err == (
        f"cxbot: error: {bad}:2: \"label\" must be one of negative, neutral, positive, got 'bad'"
    )

    refused = _jsonl(tmp_path / "dev-only.jsonl", [{"text": "Love it", "label": "positive"}])
    code, out, err = cxbot(*args, "--with-corrections", str(refused))
    assert (code, out) == (1, "")
    assert err.endswith(
        f"cxbot: error: {refused}: every correction repeats a dev or --eval text; "
        "nothing left to train on"
    )

    code, _, err = cxbot(*args, "--with-corrections", str(tmp_path / "missing.jsonl"))
    assert code == 1 and "missing.jsonl: cannot read" in err

    code, _, err = cxbot("nlp", "train", "--corpus", str(tmp_path / "nowhere"))
    assert code == 1 and err.startswith("cxbot: error: ") and "no such file" in err
    assert not out_dir.exists()


@pytest.mark.parametrize("option", ["--epochs", "--max-train-examples"])
def test_training_sizes_must_be_positive(
    cxbot: Run, option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cxbot("nlp", "train", option, "0")
    assert exited.value.code == 2
    assert "must be 1 or more, got 0" in capsys.readouterr().err
