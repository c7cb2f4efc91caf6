"""Query functions of storage/, on SQLite and PostgreSQL: what they store and what they return."""

from __future__ import annotations

from sqlalchemy import Engine

from storage import conversations, customers, flow_versions, reports, reviews, sentiment
from storage.database import transaction
from storage.tables import Conversation, ConversationState, ReviewStatus


def _conversation(db: Engine, user: str = "ann", channel: str = "telegram") -> Conversation:
    with transaction(db) as s:
        cust = customers.upsert_customer(s, channel=channel, external_id=user, first_name="Ann")
        version = flow_versions.publish_flow_version(s, flow_id="f", checksum="c", source="s")
        assert cust.id is not None
        return conversations.start_conversation(
            s,
            customer_id=cust.id,
            channel=channel,
            flow_id="f",
            flow_version=version.version,
            locale="en",
            context={"order_id": "A-1"},
        )


def test_upsert_keeps_profile_fields_the_platform_did_not_send(db: Engine) -> None:
    with transaction(db) as s:
        customers.upsert_customer(
            s, channel="slack", external_id="U1", first_name="Ann", locale="es"
        )
    with transaction(db) as s:
        again = customers.upsert_customer(s, channel="slack", external_id="U1", last_name="Lee")
        assert (again.first_name, again.last_name, again.locale) == ("Ann", "Lee", "es")
        customers.set_opted_out(s, customer=again, opted_out=True)
    with transaction(db) as s:
        stored = customers.get_customer(s, channel="slack", external_id="U1")
        assert stored is not None and stored.opted_out_at is not None
        assert customers.get_customer(s, channel="telegram", external_id="U1") is None


def test_answers_keep_flow_version_and_scale(db: Engine) -> None:
    conv = _conversation(db)
    with transaction(db) as s:
        conversations.add_answer(
            s,
            conversation=conv,
            question_id="nps",
            question_type="nps",
            raw_text="9",
            value_int=9,
            scale=(0, 10),
        )
        conversations.add_answer(
            s,
            conversation=conv,
            question_id="why",
            question_type="text",
            raw_text="",
            skipped=True,
        )
        conversations.save_progress(
            s, conversation=conv, current_question="ces", invalid_attempts=1
        )
    assert conv.id is not None
    with transaction(db) as s:
        stored = conversations.conversation_answers(s, conversation_id=conv.id)
        assert [(a.question_id, a.value_int, a.skipped, a.flow_version) for a in stored] == [
            ("nps", 9, False, 1),
            ("why", None, True, 1),
        ]
        active = conversations.active_conversation(s, customer_id=conv.customer_id)
        assert active is not None
        assert (active.current_question, active.invalid_attempts) == ("ces", 1)
        assert active.context == {"order_id": "A-1"}
        conversations.end_conversation(s, conversation=active, state=ConversationState.COMPLETED)
    with transaction(db) as s:
        assert conversations.active_conversation(s, customer_id=conv.customer_id) is None
        latest = conversations.latest_conversation(s, customer_id=conv.customer_id)
        assert latest is not None and latest.completed_at is not None


def test_score_rows_skip_skipped_and_filter_by_flow_and_channel(db: Engine) -> None:
    tg, sl = _conversation(db, "a", "telegram"), _conversation(db, "b", "slack")
    with transaction(db) as s:
        for conv, value in ((tg, 10), (sl, 3)):
            conversations.add_answer(
                s,
                conversation=conv,
                question_id="nps",
                question_type="nps",
                raw_text=str(value),
                value_int=value,
                scale=(0, 10),
            )
        conversations.add_answer(
            s,
            conversation=tg,
            question_id="csat",
            question_type="csat",
            raw_text="skip",
            skipped=True,
        )
    with transaction(db) as s:
        rows = reports.score_answers(s)
        assert sorted((r.channel, r.question_type, r.value) for r in rows) == [
            ("slack", "nps", 3),
            ("telegram", "nps", 10),
        ]
        assert [r.value for r in reports.score_answers(s, channel="slack")] == [3]
        assert reports.score_answers(s, flow_id="other") == []


def test_review_reasons_accumulate_on_one_item_per_conversation(db: Engine) -> None:
    conv = _conversation(db)
    with transaction(db) as s:
        reviews.flag_for_review(s, conversation=conv, reasons=[{"code": "nps_detractor"}])
        reviews.flag_for_review(s, conversation=conv, reasons=[{"code": "keyword"}])
    with transaction(db) as s:
        (item,) = reviews.review_items(s, status=ReviewStatus.OPEN)
        assert [r["code"] for r in item.reasons] == ["nps_detractor", "keyword"]
        assert reviews.review_items(s, status=ReviewStatus.RESOLVED) == []


def test_unscored_answers_are_per_model_version(db: Engine) -> None:
    conv = _conversation(db)
    with transaction(db) as s:
        text = conversations.add_answer(
            s,
            conversation=conv,
            question_id="why",
            question_type="text",
            raw_text="slow",
            value_text="slow",
        )
        conversations.add_answer(
            s, conversation=conv, question_id="nps", question_type="nps", raw_text="2", value_int=2
        )
    assert text.id is not None
    with transaction(db) as s:
        assert sentiment.has_unlabelled_answers(s)
        pending = sentiment.unscored_answers(s, model_version="v1", limit=10)
        assert [(p.answer_id, p.text) for p in pending] == [(text.id, "slow")]
        sentiment.add_score(
            s, answer_id=text.id, label="negative", confidence=0.9, model_id="m", model_version="v1"
        )
    with transaction(db) as s:
        assert not sentiment.has_unlabelled_answers(s)
        assert sentiment.unscored_answers(s, model_version="v1", limit=10) == []
        assert len(sentiment.unscored_answers(s, model_version="v2", limit=10)) == 1
        assert [x.label for x in sentiment.scores_for_answer(s, answer_id=text.id)] == ["negative"]


def test_due_redeliveries_are_claimed_once_by_channel(db: Engine) -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    first = _conversation(db, "ann", "telegram")
    second = _conversation(db, "bo", "slack")
    not_due = _conversation(db, "cy", "telegram")
    with transaction(db) as s:
        for conv, at in ((first, now), (second, now), (not_due, now + timedelta(hours=1))):
            s.add(conv)
            conversations.mark_undelivered(s, conversation=conv, redeliver_at=at)
    hold = now + timedelta(minutes=5)
    with transaction(db) as s:
        claimed = conversations.claim_redeliveries(
            s, channels=["telegram"], now=now, hold_until=hold, limit=10
        )
    assert claimed == [("telegram", "ann")]
    with transaction(db) as s:  # held now: nobody else takes it until the hold ends
        assert conversations.claim_redeliveries(
            s, channels=["telegram", "slack"], now=now, hold_until=hold, limit=10
        ) == [("slack", "bo")]
    with transaction(db) as s:
        stored = s.get(Conversation, first.id)
        assert stored is not None and stored.undelivered_at is not None
        conversations.clear_undelivered(s, conversation=stored)
    with transaction(db) as s:
        assert (
            conversations.claim_redeliveries(
                s, channels=["telegram"], now=hold, hold_until=hold, limit=10
            )
            == []
        )  # cleared; the other one is not due yet
