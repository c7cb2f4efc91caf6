"""`storage.correction_export`: the newest correction per answer with its text, per database."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

from storage import conversations, customers, flow_versions, sentiment
from storage.correction_export import export_corrections
from storage.database import transaction
from storage.label_corrections import add_correction
from storage.tables import Conversation

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _conversation(db: Engine) -> Conversation:
    with transaction(db) as s:
        cust = customers.upsert_customer(s, channel="telegram", external_id="ann")
        version = flow_versions.publish_flow_version(s, flow_id="f", checksum="c", source="s")
        assert cust.id is not None
        return conversations.start_conversation(
            s,
            customer_id=cust.id,
            channel="telegram",
            flow_id="f",
            flow_version=version.version,
            locale="en",
            context={},
        )


def _text_answer(db: Engine, conv: Conversation, text: str, label: str = "neutral") -> int:
    with transaction(db) as s:
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
            label=label,
            confidence=0.6,
            model_id="shipped",
            model_version="minilm-l6-full-abc",
        )
        return answer.id


def _correct(db: Engine, answer_id: int, label: str, when: datetime) -> int:
    with transaction(db) as s:
        fix = add_correction(s, answer_id=answer_id, new_label=label, actor="desk:a@x", now=when)
        assert fix.id is not None
        return fix.id


def test_newest_correction_per_answer_with_its_text(db: Engine) -> None:
    conv = _conversation(db)
    late = _text_answer(db, conv, "the courier was late again", label="neutral")
    great = _text_answer(db, conv, "great, thanks", label="negative")
    _text_answer(db, conv, "never corrected")
    _correct(db, late, "positive", T0)
    newest_late = _correct(db, late, "negative", T0.replace(hour=10))
    fix_great = _correct(db, great, "positive", T0.replace(hour=11))

    with transaction(db) as s:
        found = export_corrections(s)

    assert found.blank == 0
    assert [(r.correction_id, r.answer_id, r.text, r.label) for r in found.rows] == [
        (newest_late, late, "the courier was late again", "negative"),
        (fix_great, great, "great, thanks", "positive"),
    ]
    # The model's verdict and version stay beside the person's label.
    first = found.rows[0]
    assert (first.model_label, first.model_version, first.actor) == (
        "neutral",
        "minilm-l6-full-abc",
        "desk:a@x",
    )


def test_blank_texts_are_counted_not_exported(db: Engine) -> None:
    conv = _conversation(db)
    blank = _text_answer(db, conv, "   ")
    kept = _text_answer(db, conv, "it broke")
    _correct(db, blank, "negative", T0)
    fix = _correct(db, kept, "negative", T0)

    with transaction(db) as s:
        found = export_corrections(s)

    assert [r.correction_id for r in found.rows] == [fix]
    assert found.blank == 1


def test_since_keeps_answers_whose_newest_correction_is_that_day_or_later(db: Engine) -> None:
    conv = _conversation(db)
    old = _text_answer(db, conv, "old one")
    recent = _text_answer(db, conv, "recent one")
    _correct(db, old, "negative", T0)
    _correct(db, recent, "negative", T0)
    # Corrected again later: the answer is in, with its newest label only.
    again = _correct(db, recent, "positive", T0.replace(day=5))

    with transaction(db) as s:
        found = export_corrections(s, since=datetime(2026, 11, 5, tzinfo=UTC))
        everything = export_corrections(s)

    assert [(r.correction_id, r.label) for r in found.rows] == [(again, "positive")]
    assert len(everything.rows) == 2
