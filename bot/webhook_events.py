"""Events for other systems: a response completed, a response flagged for review.

When a survey's conversation reaches COMPLETED (`Engine`) or a review item is opened or
extended (the turn's score and keyword rules, the sentiment worker's text rules), the event is
written to the outbox IN THAT SAME TRANSACTION, one row per subscribed `[[webhooks]]` endpoint:
a response never completes without its event, and no event tells of a response that was rolled
back. A `DeliveryWorker` of its own (`bot.webhook_serve`) POSTs the rows through
`adapters.webhooks.WebhookSender`, signed the Standard Webhooks way.

Ordering: each row's lane is `webhook:<endpoint>:<conversation id>`. The events of one response
reach an endpoint in the order they happened (flagged for a low score, then completed, then
flagged again for a negative comment), while a slow or failing event of one response holds back
no other response's events, and several processes deliver one endpoint's events in parallel.
Events of different responses may arrive in any order (as with any Standard Webhooks sender);
receivers order them by `timestamp` and drop repeats by the `webhook-id` header.

Row body: `{"endpoint", "webhook_id", "payload"}`; `payload` is the JSON sent:

    {"type": "response.completed" | "response.flagged",
     "timestamp": "2026-11-29T22:30:00.123456Z",
     "data": {"conversation_id", "flow": {"id", "version"}, "channel",
              "customer": {"channel", "external_id"}, "state", "locale", "started_at",
              "completed_at", "touchpoint", "context", "scores": {"nps", "ces", "csat"},
              "answers": [{"question_id", "type", "value", "skipped", "scale", "answered_at",
                           "sentiment": {"label", "confidence", "model_version"} | null}],
              # response.flagged only:
              "review": {"id", "status", "reasons"}, "reasons": [the reasons this flag added]}}
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bot.messages import OutgoingEvent
from bot.webhook_settings import EVENT_TYPES, RESPONSE_COMPLETED, RESPONSE_FLAGGED, WebhookEndpoint
from storage import outbox as out_q
from storage.database import Session
from storage.responses import ResponseRecord, response_record
from storage.tables import Answer, Conversation, ReviewItem, SentimentScore

CHANNEL = "webhook"
SCORE_TYPES = ("nps", "ces", "csat")


def _now() -> datetime:
    return datetime.now(UTC)


class WebhookEvents:
    """Queues the events each endpoint subscribed to; does nothing when none is configured."""

    def __init__(
        self, endpoints: Sequence[WebhookEndpoint], *, clock: Callable[[], datetime] = _now
    ) -> None:
        self._subscribers: dict[str, tuple[str, ...]] = {
            kind: tuple(e.name for e in endpoints if kind in e.events) for kind in EVENT_TYPES
        }
        self._clock = clock

    def completed(self, session: Session, *, conversation: Conversation) -> int:
        """The conversation just reached COMPLETED: queue `response.completed`; rows queued."""
        if not self._subscribers[RESPONSE_COMPLETED] or conversation.id is None:
            return 0
        return self._queue(session, RESPONSE_COMPLETED, conversation.id, {}, None)

    def flagged(
        self, session: Session, *, review: ReviewItem, reasons: Sequence[Mapping[str, Any]]
    ) -> int:
        """`reasons` were just added to `review`: queue `response.flagged`; rows queued."""
        if not self._subscribers[RESPONSE_FLAGGED] or review.id is None:
            return 0
        extra = {
            "review": {
                "id": review.id,
                "status": str(review.status),
                "reasons": [dict(r) for r in review.reasons],
            },
            "reasons": [dict(r) for r in reasons],
        }
        return self._queue(session, RESPONSE_FLAGGED, review.conversation_id, extra, review.id)

    def _queue(
        self,
        session: Session,
        event_type: str,
        conversation_id: int,
        extra: dict[str, Any],
        review_item_id: int | None,
    ) -> int:
        record = response_record(session, conversation_id=conversation_id)
        if record is None:
            return 0
        payload = {
            "type": event_type,
            "timestamp": iso(self._clock()),
            "data": {**response_data(record), **extra},
        }
        # One id per event, the same for every endpoint and every retry.
        event_id = f"msg_{uuid.uuid4().hex}"
        endpoints = self._subscribers[event_type]
        for name in endpoints:
            out_q.enqueue(
                session,
                channel=CHANNEL,
                recipient=f"{name}:{conversation_id}",
                kind=out_q.KIND_EVENT,
                body={"endpoint": name, "webhook_id": event_id, "payload": payload},
                purpose=event_type,
                review_item_id=review_item_id,
            )
        return len(endpoints)


def event_from_body(body: Mapping[str, Any]) -> OutgoingEvent:
    """The event an outbox row keeps."""
    return OutgoingEvent(
        endpoint=str(body["endpoint"]),
        event_id=str(body["webhook_id"]),
        payload=dict(body["payload"]),
    )


# -- the payload ------------------------------------------------------------------------------


def iso(moment: datetime | None) -> str | None:
    """A UTC time as ISO 8601 with `Z` (SQLite hands back naive UTC times)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def response_data(record: ResponseRecord) -> dict[str, Any]:
    """What every event says about its response."""
    conversation = record.conversation
    context = dict(conversation.context)
    # Invitations record their touchpoint on the conversation (or in its context).
    touchpoint = getattr(conversation, "touchpoint", None) or context.get("touchpoint")
    scores: dict[str, int | None] = dict.fromkeys(SCORE_TYPES)
    for answer in record.answers:
        if answer.question_type in scores and answer.value_int is not None:
            scores[answer.question_type] = answer.value_int  # the latest answer wins
    return {
        "conversation_id": conversation.id,
        "flow": {"id": conversation.flow_id, "version": conversation.flow_version},
        "channel": conversation.channel,
        "customer": {
            "channel": record.customer.channel,
            "external_id": record.customer.external_id,
        },
        "state": str(conversation.state),
        "locale": conversation.locale,
        "started_at": iso(conversation.started_at),
        "completed_at": iso(conversation.completed_at),
        "touchpoint": touchpoint,
        "context": context,
        "scores": scores,
        "answers": [_answer(a, record.sentiment.get(a.id or 0)) for a in record.answers],
    }


def _answer(answer: Answer, label: SentimentScore | None) -> dict[str, Any]:
    value: int | bool | str | None
    if answer.skipped:
        value = None
    elif answer.question_type == "yes_no":
        value = bool(answer.value_int)
    elif answer.value_int is not None:
        value = answer.value_int
    else:
        value = answer.value_text
    scale = (
        [answer.scale_min, answer.scale_max]
        if answer.scale_min is not None and answer.scale_max is not None
        else None
    )
    return {
        "question_id": answer.question_id,
        "type": answer.question_type,
        "value": value,
        "skipped": answer.skipped,
        "scale": scale,
        "answered_at": iso(answer.answered_at),
        "sentiment": (
            {
                "label": label.label,
                "confidence": round(label.confidence, 4),
                "model_version": label.model_version,
            }
            if label is not None
            else None
        ),
    }
