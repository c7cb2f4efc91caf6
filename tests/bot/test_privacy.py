"""Erasure, export and text retention, proven by reading every table back (SQLite, PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import select as sa_select
from sqlmodel import SQLModel, col, select

from bot.app import App
from bot.housekeeping import run_housekeeping
from bot.messages import IncomingMessage
from bot.privacy import erase_customer, expire_old_text, export_customer
from storage import outbox as out_q
from storage.database import transaction
from storage.inbox import NewUpdate, record_updates
from storage.reports import score_answers
from storage.review_queue import add_delivery_failure, add_review_event
from storage.sentiment import add_score
from storage.suppressions import is_suppressed
from storage.tables import Answer, Invitation, LabelCorrection, ReviewItem

ERASED = "7700990011"  # the customer asking to be forgotten
KEPT = "7700990022"  # another customer, untouched
# Everything the erased customer wrote or is called: none may be left in any table.
MARKERS = ("Zelda", "Quux", "courier Bob", "555-0199", "still angry", "T-SECRET-9", ERASED)


async def _survey(app: App, user: str, name: str, texts: list[str]) -> None:
    await app.engine.begin(
        channel="telegram", user_id=user, first_name=name, context={"ticket_id": "T-SECRET-9"}
    )
    for text in texts:
        await app.engine.handle(
            IncomingMessage(channel="telegram", user_id=user, text=text, first_name=name)
        )


async def _customer_with_everything(app: App, user: str, name: str) -> None:
    """A finished survey, a late comment, and every side row that may quote the customer."""
    texts = ["3", "courier Bob was rude, cancel", "2", "1", "call me at 555-0199"]
    await _survey(app, user, name, [*texts, "still angry about Bob"])
    with transaction(app.db) as s:
        record_updates(
            s,
            channel="telegram",
            updates=[NewUpdate(event_key=f"{user}-1", lane=f"telegram:{user}", body={"t": name})],
        )
        out_q.enqueue(s, channel="telegram", recipient=user, kind="message", body={"t": name})
        text_answer = s.exec(
            select(Answer).where(Answer.question_type == "text", col(Answer.raw_text) != "")
        ).first()
        assert text_answer is not None and text_answer.id is not None
        add_score(
            s,
            answer_id=text_answer.id,
            label="negative",
            confidence=0.9,
            model_id="m",
            model_version=f"v-{user}",
        )
        # A support agent's correction of that label (it goes with the answer).
        s.add(
            LabelCorrection(
                answer_id=text_answer.id,
                old_label="negative",
                new_label="neutral",
                model_label="negative",
                actor="desk:ana@example.com",
            )
        )
        item = s.exec(select(ReviewItem).where(ReviewItem.customer_id == text_answer.customer_id))
        review = item.one()
        add_review_event(
            s, item=review, action="replied", actor="slack:U1", note=f"Sorry {name}, courier Bob"
        )
        add_delivery_failure(s, channel="telegram", target=user, purpose="survey", error="gone")
        s.add(
            Invitation(
                source="cli",
                interaction_id=f"ticket-{name[0]}",
                customer_id=text_answer.customer_id,
                channel="telegram",
                user_id=user,
                flow_id="post_interaction",
                context={"ticket_id": "T-SECRET-9"},
                status="sent",
            )
        )


def _every_stored_value(app: App) -> dict[str, str]:
    """Each table's rows, as one string per table (the suppression list left out)."""
    dump: dict[str, str] = {}
    with transaction(app.db) as s:
        for table in SQLModel.metadata.sorted_tables:
            if table.name != "suppression":
                dump[table.name] = repr(s.execute(sa_select(table)).all())
    return dump


async def test_erase_leaves_no_personal_data_and_keeps_anonymous_scores(any_db_app: App) -> None:
    app = any_db_app
    await _customer_with_everything(app, ERASED, "Zelda Quux")
    with transaction(app.db) as s:
        scores_before = sorted((r.question_type, r.value) for r in score_answers(s))
    before = _every_stored_value(app)
    assert all(any(m in text for text in before.values()) for m in MARKERS)

    done = erase_customer(app.db, channel="telegram", user_id=ERASED, by="cli")

    assert done.suppressed and done.counts["customer"] == 1
    assert done.counts["answer_deleted"] >= 3 and done.counts["sentimentscore"] == 1
    assert done.counts["inboxupdate"] == 1 and done.counts["deliveryfailure"] == 1
    for table, text in _every_stored_value(app).items():
        for marker in MARKERS:
            assert marker not in text, f"{marker!r} left in table {table}"
    with transaction(app.db) as s:
        assert sorted((r.question_type, r.value) for r in score_answers(s)) == scores_before
        assert is_suppressed(s, channel="telegram", external_id=ERASED)
        assert not s.exec(select(Answer).where(col(Answer.late))).all()
        assert not s.exec(select(LabelCorrection)).all()
    again = erase_customer(app.db, channel="telegram", user_id=ERASED, by="cli")
    assert not again.suppressed and not again.lines()  # nothing left to erase


async def test_erase_touches_no_other_customer(any_db_app: App) -> None:
    app = any_db_app
    await _survey(app, KEPT, "Kim", ["9", "great service from Ana", "7", "5", ""])
    await _survey(app, ERASED, "Zelda", ["3", "courier Bob was rude", "2", "1", ""])
    kept_before = export_customer(app.db, channel="telegram", user_id=KEPT)
    erase_customer(app.db, channel="telegram", user_id=ERASED, by="cli")
    assert export_customer(app.db, channel="telegram", user_id=KEPT) == kept_before
    texts = [a["raw_text"] for a in kept_before["answers"]]
    assert "great service from Ana" in texts


async def test_export_gives_the_customers_data_as_json_ready_dicts(any_db_app: App) -> None:
    app = any_db_app
    await _survey(app, ERASED, "Zelda", ["3", "courier Bob was rude", "2", "1", ""])
    data = export_customer(app.db, channel="telegram", user_id=ERASED)
    assert data["customer"]["first_name"] == "Zelda"
    assert data["conversations"][0]["context"]["ticket_id"] == "T-SECRET-9"
    by_question = {a["question_id"]: a for a in data["answers"]}
    assert by_question["nps"]["value_int"] == 3
    assert by_question["fix_first"]["raw_text"] == "courier Bob was rude"


async def test_retention_deletes_old_free_text_only(any_db_app: App) -> None:
    app = any_db_app
    await _survey(app, ERASED, "Zelda", ["3", "old courier Bob story", "2", "1", ""])
    now = datetime.now(UTC)
    with transaction(app.db) as s:  # the first survey is 40 days old
        for answer in s.exec(select(Answer)):
            answer.answered_at = now - timedelta(days=40)
            s.add(answer)
    await _survey(app, KEPT, "Kim", ["9", "fresh praise", "7", "5", ""])
    assert expire_old_text(app.db, days=0, now=now) == {}
    counts = expire_old_text(app.db, days=30, now=now)
    # the typed comment and the skipped last question; three scores keep their value
    assert counts["answer_deleted"] == 2 and counts["answer_blanked"] == 3
    with transaction(app.db) as s:
        texts = [a.raw_text for a in s.exec(select(Answer).where(Answer.question_type == "text"))]
        old_scores = s.exec(select(Answer).where(Answer.customer_id == 1)).all()
        assert "fresh praise" in texts and not any("Bob" in t for t in texts)
        assert {(a.question_id, a.value_int, a.raw_text) for a in old_scores} == {
            ("nps", 3, ""),
            ("ces", 2, ""),
            ("csat", 1, ""),
        }
    assert expire_old_text(app.db, days=30, now=now)["answer_deleted"] == 0


async def test_serves_housekeeping_expires_text_when_retention_is_set(any_db_app: App) -> None:
    app = any_db_app
    await _survey(app, ERASED, "Zelda", ["3", "old courier Bob story", "2", "1", ""])
    with transaction(app.db) as s:
        for answer in s.exec(select(Answer)):
            answer.answered_at = datetime.now(UTC) - timedelta(days=40)
            s.add(answer)
    task = asyncio.create_task(run_housekeeping(app.db, interval=3600, text_retention_days=30))
    try:
        for _ in range(500):  # the first round runs at once, in a worker thread
            with transaction(app.db) as s:
                if not s.exec(select(Answer).where(Answer.question_type == "text")).all():
                    break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    with transaction(app.db) as s:
        assert not s.exec(select(Answer).where(Answer.question_type == "text")).all()
        assert {a.value_int for a in s.exec(select(Answer))} == {3, 2, 1}
