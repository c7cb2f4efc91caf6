"""Bulk data for the analytics benchmark (`bench/dashboard.py`): a year of survey responses with
realistic score mixes, comments in three languages, sentiment labels (a few corrected),
invitations at touchpoints (some withheld), two flows, two channels, a `plan` segment in the
context, and review items with response times for the detractors.

Rows are inserted in large batches with explicit ids (Core inserts, no round trip per row),
then PostgreSQL's id sequences are moved past them. Only for an empty database: the
benchmark's own scratch database, never a deployment's.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlmodel import Session, SQLModel

from storage.tables import (
    Answer,
    Conversation,
    Customer,
    Invitation,
    LabelCorrection,
    ReviewItem,
    SentimentScore,
)

FLOWS = ("delivery", "support")
CHANNELS = ("telegram", "slack")
PLANS = ("free", "pro", "business")
TOUCHPOINTS = ("delivery", "checkout", "support_contact", "onboarding")
WITHHELD = ("cooldown", "quiet_hours", "suppressed", "opted_out")
AGENTS = ("desk:ana@example.com", "desk:bo@example.com")
BATCH = 5000
_TABLES: tuple[type[SQLModel], ...] = (
    Customer,
    Conversation,
    Answer,
    SentimentScore,
    LabelCorrection,
    Invitation,
    ReviewItem,
)
# Comments by language and tone; a detractor mostly writes a negative one.
COMMENTS = {
    "en": {
        "negative": (
            "The courier was two hours late and nobody told me.",
            "Parcel arrived damaged and the refund is still not there.",
            "Support kept me waiting on hold for forty minutes.",
            "The app crashes every time I try to pay.",
            "Delivery window was missed again, very frustrating.",
        ),
        "neutral": (
            "It was fine, nothing special.",
            "Delivery on time, packaging could be better.",
            "Okay experience overall.",
        ),
        "positive": (
            "Great support, the agent solved it in minutes!",
            "Fast delivery and friendly courier, thanks.",
            "Checkout was quick and easy.",
            "Very helpful agent, refund processed the same day.",
        ),
    },
    "es": {
        "negative": ("El repartidor llegó muy tarde y nadie me avisó.", "El pedido llegó roto."),
        "neutral": ("Todo normal, sin problemas.",),
        "positive": ("Entrega rápida y el repartidor muy amable.", "Excelente atención."),
    },
    "de": {
        "negative": ("Der Kurier kam zwei Stunden zu spät.", "Die App stürzt beim Bezahlen ab."),
        "neutral": ("Alles in Ordnung.",),
        "positive": ("Schnelle Lieferung, freundlicher Kurier.", "Sehr hilfreicher Support."),
    },
}


PRODUCTS = tuple(
    f"{kind} {size}"
    for kind in ("Sofa", "Lamp", "Kettle", "Jacket", "Phone case", "Desk", "Blender", "Rug")
    for size in ("S", "M", "L", "XL", "mini", "pro")
)
DETAILS = {
    "negative": ("arrived scratched", "was missing a part", "is not as described", "broke"),
    "neutral": ("is as expected", "looks okay", "works"),
    "positive": ("is perfect", "looks great", "works really well", "exceeded expectations"),
}


@dataclass(frozen=True, slots=True)
class SeededYear:
    """How many rows the seed stored."""

    responses: int
    answers: int
    comments: int
    invitations: int
    review_items: int


def _insert(session: Session, model: type[SQLModel], rows: list[dict[str, Any]]) -> None:
    table = model.__table__  # type: ignore[attr-defined]
    for start in range(0, len(rows), BATCH):
        session.execute(insert(table), rows[start : start + BATCH])


def _nps(rng: random.Random, when: datetime, flow: str) -> int:
    """A score whose mix drifts over the year (a summer dip) and differs by flow."""
    season = math.sin(2 * math.pi * when.timetuple().tm_yday / 365)
    promoter = 0.42 + 0.08 * season + (0.05 if flow == "delivery" else -0.03)
    detractor = 0.22 - 0.06 * season + (0.0 if flow == "delivery" else 0.05)
    roll = rng.random()
    if roll < detractor:
        return rng.choices(range(7), (2, 1, 2, 3, 4, 6, 8))[0]
    if roll < detractor + (1 - promoter - detractor):
        return rng.choice((7, 8))
    return rng.choice((9, 10, 10))


def _comment(rng: random.Random, locale: str, tone: str, order: str) -> str:
    """One or two sentences of the tone, sometimes with a product and the order number: most
    comments differ, as people's do."""
    pool = COMMENTS[locale][tone]
    parts = rng.sample(pool, k=min(len(pool), rng.choice((1, 1, 2))))
    if rng.random() < 0.5:
        parts.append(f"{rng.choice(PRODUCTS)} {rng.choice(DETAILS[tone])}.")
    if rng.random() < 0.3:
        parts.append(f"Order {order}.")
    return " ".join(parts)


def _tone(rng: random.Random, nps: int) -> str:
    weights = {True: (8, 2, 1), False: (1, 3, 8)}[nps <= 6] if nps not in (7, 8) else (2, 6, 3)
    return rng.choices(("negative", "neutral", "positive"), weights)[0]


def seed_year(session: Session, *, responses: int, now: datetime, seed: int = 14) -> SeededYear:
    """Store `responses` surveys answered over the 365 days before `now` (ValueError when the
    database already holds any)."""
    for model in _TABLES:
        if session.execute(select(func.count()).select_from(model)).scalar():
            raise ValueError(f"seed_year needs an empty database; {model.__name__} has rows")
    rng = random.Random(seed)
    rows: dict[type[SQLModel], list[dict[str, Any]]] = {m: [] for m in _TABLES}
    answer_id = 0
    for n in range(1, responses + 1):
        when = now - timedelta(seconds=rng.randint(600, 365 * 86400))
        flow = rng.choices(FLOWS, (3, 2))[0]
        channel = rng.choice(CHANNELS)
        locale = rng.choices(("en", "es", "de"), (7, 2, 1))[0]
        user = f"bench-{n}"
        rows[Customer].append(
            {"id": n, "channel": channel, "external_id": user, "locale": locale, "created_at": when}
        )
        context = {"plan": rng.choices(PLANS, (6, 3, 1))[0], "order_id": f"A-{n}"}
        rows[Conversation].append(
            {
                "id": n,
                "customer_id": n,
                "channel": channel,
                "flow_id": flow,
                "flow_version": 1,
                "state": "completed",
                "locale": locale,
                "context": context,
                "started_at": when - timedelta(minutes=4),
                "updated_at": when,
                "completed_at": when,
            }
        )
        common = {
            "conversation_id": n,
            "customer_id": n,
            "channel": channel,
            "flow_id": flow,
            "flow_version": 1,
            "skipped": False,
            "truncated": False,
            "late": False,
            "value_text": None,
        }
        nps = _nps(rng, when, flow)
        ces_scale = (1, 7) if flow == "delivery" else (1, 5)
        effort = 1 + round((ces_scale[1] - 1) * min(1.0, max(0.0, nps / 10 + rng.gauss(0, 0.2))))
        satisfied = 1 + round(4 * min(1.0, max(0.0, nps / 10 + rng.gauss(0, 0.15))))
        scores = [("nps", nps, (0, 10), 3), ("ces", effort, ces_scale, 2)]
        scores.append(("csat", satisfied, (1, 5), 1))
        for kind, value, (low, high), minutes_before in scores:
            if kind != "nps" and rng.random() < 0.15:
                continue  # not every flow run asks every question
            answer_id += 1
            skipped = rng.random() < 0.02
            rows[Answer].append(
                {
                    **common,
                    "id": answer_id,
                    "question_id": kind,
                    "question_type": kind,
                    "raw_text": "skip" if skipped else str(value),
                    "value_int": None if skipped else value,
                    "skipped": skipped,
                    "scale_min": low,
                    "scale_max": high,
                    "answered_at": when - timedelta(minutes=minutes_before),
                }
            )
        if rng.random() < 0.6:
            tone = _tone(rng, nps)
            comment = _comment(rng, locale, tone, context["order_id"])
            answer_id += 1
            rows[Answer].append(
                {
                    **common,
                    "id": answer_id,
                    "question_id": "why",
                    "question_type": "text",
                    "raw_text": comment,
                    "value_text": comment,
                    "scale_min": None,
                    "scale_max": None,
                    "value_int": None,
                    "answered_at": when,
                }
            )
            if rng.random() < 0.95:  # the rest still waits for the sentiment worker
                label = tone if rng.random() < 0.85 else rng.choice(("negative", "neutral"))
                rows[SentimentScore].append(
                    {
                        "id": len(rows[SentimentScore]) + 1,
                        "answer_id": answer_id,
                        "label": label,
                        "confidence": round(rng.uniform(0.4, 0.99), 3),
                        "model_id": "bench/model",
                        "model_version": "v1",
                        "scored_at": when + timedelta(seconds=5),
                    }
                )
                if label != tone and rng.random() < 0.3:
                    rows[LabelCorrection].append(
                        {
                            "id": len(rows[LabelCorrection]) + 1,
                            "answer_id": answer_id,
                            "old_label": label,
                            "new_label": tone,
                            "model_label": label,
                            "model_id": "bench/model",
                            "model_version": "v1",
                            "actor": rng.choice(AGENTS),
                            "created_at": when + timedelta(hours=2),
                        }
                    )
        invited = rng.random() < 0.75
        if invited:
            rows[Invitation].append(
                _invitation(len(rows[Invitation]) + 1, n, user, channel, flow, when, rng, n)
            )
        if rng.random() < 0.08:  # someone a rule kept from being asked
            rows[Invitation].append(
                _invitation(len(rows[Invitation]) + 1, n, user, channel, flow, when, rng, None)
            )
        if nps <= 6:
            rows[ReviewItem].append(_review_item(n, when, rng, nps))
    for model in _TABLES:
        _insert(session, model, rows[model])
    if session.get_bind().dialect.name == "postgresql":
        for model in _TABLES:
            table = model.__tablename__
            session.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"coalesce((SELECT max(id) FROM {table}), 1))"
                )
            )
    else:
        session.execute(text("ANALYZE"))  # the planner's statistics for the new rows
    return SeededYear(
        responses=responses,
        answers=len(rows[Answer]),
        comments=sum(1 for a in rows[Answer] if a["question_type"] == "text"),
        invitations=len(rows[Invitation]),
        review_items=len(rows[ReviewItem]),
    )


def _invitation(
    row_id: int,
    customer_id: int,
    user: str,
    channel: str,
    flow: str,
    when: datetime,
    rng: random.Random,
    conversation_id: int | None,
) -> dict[str, Any]:
    asked = when - timedelta(minutes=rng.randint(10, 600))
    return {
        "id": row_id,
        "source": "bench",
        "interaction_id": f"i-{row_id}",
        "customer_id": customer_id,
        "channel": channel,
        "user_id": user,
        "touchpoint": rng.choice(TOUCHPOINTS),
        "flow_id": flow,
        "context": {},
        "status": "sent" if conversation_id else "withheld",
        "reason": None if conversation_id else rng.choice(WITHHELD),
        "created_at": asked,
        "requested_at": asked,
        "send_at": asked,
        "decided_at": asked,
        "conversation_id": conversation_id,
        "attempts": 0,
    }


def _review_item(n: int, when: datetime, rng: random.Random, nps: int) -> dict[str, Any]:
    status = rng.choices(("open", "acknowledged", "resolved"), (2, 2, 6))[0]
    acked = when + timedelta(minutes=rng.lognormvariate(4, 1)) if status != "open" else None
    replied = (
        acked + timedelta(minutes=rng.lognormvariate(3, 1))
        if acked is not None and rng.random() < 0.6
        else None
    )
    return {
        "id": n,
        "conversation_id": n,
        "customer_id": n,
        "status": status,
        "reasons": [{"code": "nps_detractor", "question_id": "nps", "detail": f"NPS {nps}"}],
        "created_at": when,
        "updated_at": replied or acked or when,
        "assignee": rng.choice(AGENTS) if status != "open" else None,
        "first_ack_at": acked,
        "first_reply_at": replied,
    }
