"""Bulk data for the desk benchmark (`bench/desk.py`): many survey responses, some flagged.

Rows are inserted in large batches with explicit ids (no round trip per row), then
PostgreSQL's id sequences are moved past them so that later inserts get fresh ids. Only for
an empty database: the benchmark's own scratch database, never a deployment's.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import create_engine, func, insert, make_url, select, text
from sqlmodel import Session, SQLModel, col

from storage.tables import (
    Answer,
    Conversation,
    Customer,
    Invitation,
    LabelCorrection,
    ReviewEvent,
    ReviewItem,
    SentimentScore,
)

CHANNELS = ("telegram", "slack")
FLOWS = ("delivery", "onboarding", "support")
TOUCHPOINTS = ("delivery", "support", "checkout")
LABELS = ("negative", "neutral", "positive")
COMMENTS = (
    "The courier was two hours late and nobody told me.",
    "Fine, I guess.",
    "Great support, thanks!",
    "The app keeps crashing when I pay.",
    "Agent was friendly but the refund took weeks.",
)
AGENTS = ("desk:ana@example.com", "desk:bo@example.com", "slack:U0SUPPORT1")
BATCH = 5000
_TABLES = (Customer, Conversation, Answer, SentimentScore, Invitation, ReviewItem, ReviewEvent)


@dataclass(frozen=True, slots=True)
class Seeded:
    """How many rows the seed stored."""

    responses: int
    flagged: int
    answers: int
    corrections: int


def _insert(session: Session, model: type[SQLModel], rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), BATCH):
        session.execute(insert(model.__table__), rows[start : start + BATCH])  # type: ignore[attr-defined]


def _flagged_item(
    rng: random.Random, n: int, created: datetime, nps: int, customer_id: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One review item's row and its events (status, assignee and response times at random)."""
    reasons = [{"code": "nps_detractor", "question_id": "nps", "answer_id": 2 * n + 1}]
    if nps > 6 or rng.random() < 0.3:
        reasons = [*reasons, {"code": "negative_sentiment", "question_id": "why"}]
    status = rng.choices(("open", "acknowledged", "resolved"), (5, 2, 3))[0]
    item: dict[str, Any] = {
        "id": n + 1,
        "conversation_id": n + 1,
        "customer_id": customer_id,
        "status": status,
        "reasons": [{**r, "detail": str(r["code"]).upper()} for r in reasons],
        "created_at": created,
        "updated_at": created,
        "assignee": rng.choice(AGENTS) if rng.random() < 0.4 else None,
        "first_ack_at": None,
        "first_reply_at": None,
    }
    events: list[dict[str, Any]] = []
    if status != "open":
        acked = created + timedelta(minutes=rng.randint(5, 600))
        item["first_ack_at"] = item["updated_at"] = acked
        events.append({"review_item_id": n + 1, "action": "acknowledged", "created_at": acked})
        if rng.random() < 0.5:
            replied = acked + timedelta(minutes=rng.randint(1, 120))
            item["first_reply_at"] = item["updated_at"] = replied
            events.append(
                {
                    "review_item_id": n + 1,
                    "action": "replied",
                    "created_at": replied,
                    "note": "Sorry about that, we are on it.",
                }
            )
        if status == "resolved":
            done = item["updated_at"] + timedelta(minutes=rng.randint(1, 600))
            item["updated_at"] = done
            events.append(
                {
                    "review_item_id": n + 1,
                    "action": "resolved",
                    "created_at": done,
                    "note": "Refunded.",
                }
            )
    for event in events:
        event.setdefault("note", None)
        event["actor"] = rng.choice(AGENTS)
    return item, events


def seed_desk(
    session: Session, *, responses: int, flagged: int, now: datetime, seed: int = 13
) -> Seeded:
    """Store `responses` completed surveys (an NPS and a labelled comment each, most invited
    at a touchpoint) over the last 60 days, `flagged` of them flagged for review."""
    for model in _TABLES:
        if session.execute(select(func.count()).select_from(model)).scalar():
            raise ValueError(f"seed_desk needs an empty database; {model.__name__} has rows")
    rng = random.Random(seed)
    chosen = set(rng.sample(range(responses), flagged))
    customers, conversations, answers, scores, invitations = [], [], [], [], []
    items: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    corrections: list[dict[str, Any]] = []
    for n in range(responses):
        created = now - timedelta(seconds=rng.randint(60, 60 * 86400))
        channel, flow = rng.choice(CHANNELS), rng.choice(FLOWS)
        user = f"bench-{n}"
        customers.append(
            {"id": n + 1, "channel": channel, "external_id": user, "created_at": created}
        )
        conversations.append(
            {
                "id": n + 1,
                "customer_id": n + 1,
                "channel": channel,
                "flow_id": flow,
                "flow_version": 1,
                "state": "completed",
                "locale": "en",
                "context": {"order_id": f"A-{n}"},
                "started_at": created - timedelta(minutes=3),
                "updated_at": created,
                "completed_at": created,
            }
        )
        flag = n in chosen
        nps = rng.randint(0, 6) if flag else rng.randint(0, 10)
        comment = rng.choice(COMMENTS)
        common = {
            "conversation_id": n + 1,
            "customer_id": n + 1,
            "channel": channel,
            "flow_id": flow,
            "flow_version": 1,
            "answered_at": created - timedelta(minutes=1),
            "skipped": False,
            "truncated": False,
            "late": False,
            "value_int": None,
            "value_text": None,
            "scale_min": None,
            "scale_max": None,
        }
        answers.append(
            {
                **common,
                "id": 2 * n + 1,
                "question_id": "nps",
                "question_type": "nps",
                "raw_text": str(nps),
                "value_int": nps,
                "scale_min": 0,
                "scale_max": 10,
            }
        )
        answers.append(
            {
                **common,
                "id": 2 * n + 2,
                "question_id": "why",
                "question_type": "text",
                "raw_text": comment,
                "value_text": comment,
            }
        )
        label = rng.choice(LABELS)
        scores.append(
            {
                "id": n + 1,
                "answer_id": 2 * n + 2,
                "label": label,
                "confidence": round(rng.uniform(0.35, 0.99), 3),
                "model_id": "bench/model",
                "model_version": "v1",
                "scored_at": created,
            }
        )
        if rng.random() < 0.7:
            invitations.append(
                {
                    "id": n + 1,
                    "source": "bench",
                    "interaction_id": f"i-{n}",
                    "customer_id": n + 1,
                    "channel": channel,
                    "user_id": user,
                    "touchpoint": rng.choice(TOUCHPOINTS),
                    "flow_id": flow,
                    "context": {},
                    "status": "sent",
                    "created_at": created,
                    "requested_at": created,
                    "send_at": created,
                    "decided_at": created,
                    "conversation_id": n + 1,
                    "attempts": 0,
                }
            )
        if flag:
            item, item_events = _flagged_item(rng, n, created, nps, n + 1)
            items.append(item)
            events.extend(item_events)
            if rng.random() < 0.05:
                new = rng.choice([x for x in LABELS if x != label])
                corrections.append(
                    {
                        "answer_id": 2 * n + 2,
                        "old_label": label,
                        "new_label": new,
                        "model_label": label,
                        "model_id": "bench/model",
                        "model_version": "v1",
                        "actor": AGENTS[0],
                        "created_at": created + timedelta(hours=1),
                    }
                )
    batches: list[tuple[type[SQLModel], list[dict[str, Any]]]] = [
        (Customer, customers),
        (Conversation, conversations),
        (Answer, answers),
        (SentimentScore, scores),
        (Invitation, invitations),
        (ReviewItem, items),
        (ReviewEvent, events),
        (LabelCorrection, corrections),
    ]
    for table, rows in batches:
        _insert(session, table, rows)
    if session.get_bind().dialect.name == "postgresql":
        for seeded in (*_TABLES, LabelCorrection):
            name = str(seeded.__tablename__)
            session.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                    f"coalesce((SELECT max(id) FROM {name}), 1))"
                )
            )
    else:
        session.execute(text("ANALYZE"))  # the planner's statistics for the new rows
    return Seeded(responses, len(items), len(answers), len(corrections))


@contextmanager
def scratch_postgres(admin_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on the server of `admin_url`, dropped afterwards."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"cxbot_bench_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def vacuum_analyze(url: str) -> None:
    """PostgreSQL: VACUUM ANALYZE the whole database (outside a transaction) after a seed."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("VACUUM ANALYZE"))
    finally:
        engine.dispose()


def review_ids(session: Session, *, limit: int) -> Sequence[int]:
    """Some review item ids, for timing item pages."""
    stmt = select(col(ReviewItem.id)).order_by(col(ReviewItem.id)).limit(limit)
    return [int(i) for i in session.execute(stmt).scalars()]
