"""SQLModel table models. Alembic migrations in `storage/migrations` create and evolve them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (stored as naive UTC by SQLite)."""
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """A stored time as aware UTC: SQLite gives back naive datetimes, and every one is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


class ConversationState(StrEnum):
    """Where a conversation stands."""

    ACTIVE = "active"
    COMPLETED = "completed"
    ABANDONED = "abandoned"  # replaced by a newer survey before it was finished
    OPTED_OUT = "opted_out"  # the customer said stop during it
    EXPIRED = "expired"  # closed unfinished after `expires_at`; later replies are late comments


class ReviewStatus(StrEnum):
    """The support team's progress on a flagged reply."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Customer(SQLModel, table=True):
    """A person we survey, identified by channel and the platform's id for them."""

    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_customer_channel_ext"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    external_id: str = Field(max_length=128)
    first_name: str | None = Field(default=None, max_length=128)
    last_name: str | None = Field(default=None, max_length=128)
    locale: str | None = Field(default=None, max_length=16)
    opted_out_at: datetime | None = None
    # Set when the platform says messages can no longer reach them (blocked the bot, left).
    unreachable_at: datetime | None = None
    unreachable_reason: str | None = Field(default=None, max_length=256)
    # IANA zone name ("Europe/Berlin") for quiet hours; None means the configured default.
    time_zone: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class FlowVersion(SQLModel, table=True):
    """A published version of a flow file; answers point at the version they were given under."""

    __table_args__ = (UniqueConstraint("flow_id", "version", name="uq_flow_version"),)

    id: int | None = Field(default=None, primary_key=True)
    flow_id: str = Field(max_length=64, index=True)
    version: int
    checksum: str = Field(max_length=64)
    source: str
    published_at: datetime = Field(default_factory=utcnow)
    # How it came to be: "file" (a flow file's content, published when the file changed),
    # "publish" (`cxbot flows publish`, the desk's editor) or "rollback" (an older version's
    # content published again). The newest version of a flow is the live one.
    origin: str = Field(default="file", max_length=16)
    published_by: str | None = Field(default=None, max_length=160)


class Conversation(SQLModel, table=True):
    """One survey given to one customer: the engine's persisted state between turns."""

    __table_args__ = (
        # At most one active conversation per customer, enforced by the database itself.
        Index(
            "uq_conversation_active",
            "customer_id",
            unique=True,
            sqlite_where=text("state = 'active'"),
            postgresql_where=text("state = 'active'"),
        ),
        # The reminder worker's claims look only at active surveys, by due time.
        Index(
            "ix_conversation_remind_due",
            "remind_at",
            sqlite_where=text("state = 'active'"),
            postgresql_where=text("state = 'active'"),
        ),
        Index(
            "ix_conversation_expiry_due",
            "expires_at",
            sqlite_where=text("state = 'active'"),
            postgresql_where=text("state = 'active'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    channel: str = Field(max_length=32)
    flow_id: str = Field(max_length=64)
    flow_version: int
    state: str = Field(default=ConversationState.ACTIVE, max_length=16)
    current_question: str | None = Field(default=None, max_length=64)
    invalid_attempts: int = 0
    locale: str = Field(default="en", max_length=16)
    context: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    started_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    completed_at: datetime | None = None
    # Set when the bot's last message in this survey did not reach the customer (the platform
    # failing after retries): the question is sent again, in the background at `redeliver_at`
    # (None: only when they next write), or when they write, instead of taking their message as
    # an answer to a question they never saw.
    undelivered_at: datetime | None = None
    redeliver_at: datetime | None = Field(default=None, index=True)
    redeliver_attempts: int = 0
    # Reminders (Telegram and Slack surveys): the next one is due at `remind_at` (None: no more),
    # `reminders_sent` so far; at `expires_at` an unfinished survey closes (None: never).
    remind_at: datetime | None = None
    reminders_sent: int = 0
    expires_at: datetime | None = None
    # A score read from a sentence ("the courier was 2 hours late") awaiting the customer's
    # "yes" before it is stored as the current question's answer; None: nothing pending.
    pending_score: int | None = None


class Answer(SQLModel, table=True):
    """One answer as given: raw text, parsed value, and the flow version it was asked under."""

    # The analytics page's comment walks (migration 0014): counted text answers newest first,
    # and the NPS answer of a survey from the index alone.
    __table_args__ = (
        Index(
            "ix_answer_text_time",
            "answered_at",
            "id",
            sqlite_where=text("question_type = 'text' AND skipped = 0 AND late = 0"),
            postgresql_where=text("question_type = 'text' AND NOT skipped AND NOT late"),
        ),
        Index(
            "ix_answer_nps_survey",
            "conversation_id",
            "value_int",
            sqlite_where=text("question_type = 'nps' AND skipped = 0 AND late = 0"),
            postgresql_where=text("question_type = 'nps' AND NOT skipped AND NOT late"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    channel: str = Field(max_length=32)
    flow_id: str = Field(max_length=64, index=True)
    flow_version: int
    question_id: str = Field(max_length=64)
    question_type: str = Field(max_length=16, index=True)
    raw_text: str = ""
    value_int: int | None = None
    value_text: str | None = None
    scale_min: int | None = None
    scale_max: int | None = None
    skipped: bool = False
    truncated: bool = False
    # A late comment: written after the survey's thanks or after it expired. Feedback, never
    # an answer to a question (reports leave it out of the scores).
    late: bool = False
    answered_at: datetime = Field(default_factory=utcnow, index=True)


class ReviewItem(SQLModel, table=True):
    """A survey response flagged for the support team, with the reasons it was flagged."""

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", unique=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    status: str = Field(default=ReviewStatus.OPEN, max_length=16, index=True)
    # [{"code": "nps_detractor", "question_id": "nps", "answer_id": 3, "detail": "NPS 4"}, ...]
    reasons: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    created_at: datetime = Field(default_factory=utcnow, index=True)
    updated_at: datetime = Field(default_factory=utcnow)
    # Who works on it: an actor as in ReviewEvent ("desk:ana@example.com", "slack:U012…").
    assignee: str | None = Field(default=None, max_length=160, index=True)
    # Response time: the first acknowledgement (or reply, which acknowledges) and the first
    # reply to the customer; set once, never moved by a reopen.
    first_ack_at: datetime | None = None
    first_reply_at: datetime | None = None


class SentimentScore(SQLModel, table=True):
    """A sentiment model's verdict on one free-text answer; re-scoring adds rows (history)."""

    __table_args__ = (
        UniqueConstraint("answer_id", "model_version", name="uq_sentiment_answer_model"),
    )

    id: int | None = Field(default=None, primary_key=True)
    answer_id: int = Field(foreign_key="answer.id", index=True)
    label: str = Field(max_length=16)  # negative / neutral / positive / unclassified
    confidence: float  # 0.0 for unclassified (no model for the language)
    model_id: str = Field(max_length=256)
    model_version: str = Field(max_length=64)
    scored_at: datetime = Field(default_factory=utcnow)
    # ISO 639-1 code of the text's detected language; None for labels from before 0012.
    language: str | None = Field(default=None, max_length=8)


class InboundEvent(SQLModel, table=True):
    """A platform event already handled (Telegram update id, Slack event id): never twice."""

    __table_args__ = (UniqueConstraint("channel", "event_key", name="uq_inbound_event"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    event_key: str = Field(max_length=128)
    received_at: datetime = Field(default_factory=utcnow, index=True)


class ReviewEvent(SQLModel, table=True):
    """One thing the support team did with a review item: who, what, when, and their note."""

    id: int | None = Field(default=None, primary_key=True)
    review_item_id: int = Field(foreign_key="reviewitem.id", index=True)
    action: str = Field(max_length=32)  # acknowledged / resolved / replied
    actor: str = Field(max_length=128)  # e.g. "slack:U012ABCDEF"
    actor_name: str | None = Field(default=None, max_length=128)
    note: str | None = None  # resolution note, or the text sent to the customer
    created_at: datetime = Field(default_factory=utcnow)


class ReviewAlert(SQLModel, table=True):
    """Where a review item's alert lives in the support chat, and which state it shows."""

    id: int | None = Field(default=None, primary_key=True)
    review_item_id: int = Field(foreign_key="reviewitem.id", unique=True)
    target: str = Field(max_length=64)  # the alert channel id
    message_ts: str | None = Field(default=None, max_length=32)  # None until first posted
    # The item's updated_at that the message shows; differing from the item's means "to update".
    shown_version: datetime | None = None
    # How many sentiment labels the message shows (a label arriving later updates it too).
    shown_labels: int = 0
    # A process posting it now (posts happen outside transactions); stale claims are retaken.
    claimed_at: datetime | None = None
    failures: int = 0
    retry_at: datetime | None = None
    last_error: str | None = Field(default=None, max_length=256)


class DeliveryFailure(SQLModel, table=True):
    """A message the platform refused (alert channel missing, customer gone): kept for admins."""

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    target: str = Field(max_length=128)
    purpose: str = Field(max_length=32)  # review_alert / review_reply / survey
    review_item_id: int | None = Field(default=None, foreign_key="reviewitem.id", index=True)
    error: str = Field(max_length=512)
    created_at: datetime = Field(default_factory=utcnow, index=True)


class InboxUpdate(SQLModel, table=True):
    """A platform update, recorded before the platform is told it arrived (the inbox).

    Rows of one `lane` (one customer's chat) are processed one at a time in id order, each in
    the same transaction as the turn it causes; `processed_at` is set then. A row whose
    processing failed waits until `retry_at` and is given up (processed, with `last_error`)
    after a bounded number of attempts, so that one poisonous update cannot stop its lane.
    """

    __table_args__ = (
        UniqueConstraint("channel", "event_key", name="uq_inbox_event"),
        # The lane heads, and the unprocessed rows in id order: claims never scan the done.
        Index(
            "ix_inbox_pending",
            "lane",
            "id",
            sqlite_where=text("processed_at IS NULL"),
            postgresql_where=text("processed_at IS NULL"),
        ),
        Index(
            "ix_inbox_due",
            "id",
            sqlite_where=text("processed_at IS NULL"),
            postgresql_where=text("processed_at IS NULL"),
        ),
        # The flood limit counts one lane's updates in a window (`bot.flood_limit`).
        Index("ix_inbox_lane_received", "lane", "received_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    event_key: str = Field(max_length=128)  # Telegram update_id, Slack event_id / action_ts
    lane: str = Field(max_length=160)
    body: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    received_at: datetime = Field(default_factory=utcnow, index=True)
    processed_at: datetime | None = None
    attempts: int = 0
    retry_at: datetime | None = None
    last_error: str | None = Field(default=None, max_length=512)


class OutboxMessage(SQLModel, table=True):
    """Something the bot decided to send, written in the transaction of that decision.

    `kind`: `message` (a text, maybe with buttons), `close` (show the chosen answer on an
    earlier question and take its buttons away; `body.ref` is that question's row), `button`
    (answer a pressed button: stop its spinner, maybe with a short notice), `event` (a webhook
    event for another system: channel `webhook`, `bot.webhook_events`). The delivery worker
    sends the rows of one `lane` in id order, records the platform's ids, and retries with
    bounded backoff; `claimed_by` / `claimed_until` say which process is sending one now.
    """

    __table_args__ = (
        Index(
            "ix_outbox_pending",
            "lane",
            "id",
            sqlite_where=text("sent_at IS NULL AND failed_at IS NULL"),
            postgresql_where=text("sent_at IS NULL AND failed_at IS NULL"),
        ),
        Index(
            "ix_outbox_due",
            "id",
            sqlite_where=text("sent_at IS NULL AND failed_at IS NULL"),
            postgresql_where=text("sent_at IS NULL AND failed_at IS NULL"),
        ),
        Index(
            "ix_outbox_open_question",
            "lane",
            "id",
            sqlite_where=text("question_id IS NOT NULL AND closed_at IS NULL"),
            postgresql_where=text("question_id IS NOT NULL AND closed_at IS NULL"),
        ),
        Index("ix_outbox_platform_message", "lane", "platform_message_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    recipient: str = Field(max_length=128)  # the customer's platform id (chat id, user id)
    lane: str = Field(max_length=160)
    kind: str = Field(max_length=16)
    body: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    question_id: str | None = Field(default=None, max_length=64)  # its buttons answer this
    purpose: str = Field(default="survey", max_length=32)  # survey / review_reply / notice
    review_item_id: int | None = Field(default=None, foreign_key="reviewitem.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    not_before: datetime = Field(default_factory=utcnow)
    attempts: int = 0
    claimed_by: str | None = Field(default=None, max_length=128)
    claimed_until: datetime | None = None
    sent_at: datetime | None = None
    failed_at: datetime | None = None
    last_error: str | None = Field(default=None, max_length=512)
    platform_message_id: str | None = Field(default=None, max_length=64)
    platform_chat: str | None = Field(default=None, max_length=64)  # Slack: the DM's channel id
    # For a question with buttons: when its buttons were closed, and the answer chosen there.
    closed_at: datetime | None = None
    chosen_label: str | None = Field(default=None, max_length=128)


class InvitationStatus(StrEnum):
    """Where an invitation stands (`invitation.status`)."""

    SCHEDULED = "scheduled"  # waits for `send_at`; the scheduler of `cxbot serve` decides then
    SENT = "sent"  # the survey was opened and its first messages queued (`conversation_id`)
    WITHHELD = "withheld"  # a rule said no (`reason`, `detail`); final


class ApiKey(SQLModel, table=True):
    """A key for the REST API. Only a SHA-256 hash of the key is stored; `prefix` (its first
    characters, not secret) names it in listings and finds its row on each request."""

    id: int | None = Field(default=None, primary_key=True)
    # Several keys may share a name (a replacement created before the old one is revoked); the
    # name is the `source` of the invitations sent with the key.
    name: str = Field(max_length=64, index=True)
    scope: str = Field(max_length=16)  # invite / admin
    prefix: str = Field(max_length=16, unique=True, index=True)
    key_hash: str = Field(max_length=64)  # hex SHA-256 of the whole key
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


class Invitation(SQLModel, table=True):
    """One request to survey a customer after an interaction, and what became of it.

    Unique per (source, interaction_id): a repeat of the same interaction is answered from this
    row. Every rule's decision is kept: `status` withheld with `reason` (a code) and `detail`
    (a sentence); quiet hours show as `send_at` later than `requested_at`.
    """

    __table_args__ = (
        UniqueConstraint("source", "interaction_id", name="uq_invitation_interaction"),
        # The scheduler's claims look only at scheduled rows, by due time.
        Index(
            "ix_invitation_due",
            "send_at",
            sqlite_where=text("status = 'scheduled'"),
            postgresql_where=text("status = 'scheduled'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=64)  # the API key's name, "cli", "csv"
    interaction_id: str = Field(max_length=128)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    channel: str = Field(max_length=32)
    user_id: str = Field(max_length=128)  # the customer's platform id (external_id)
    touchpoint: str | None = Field(default=None, max_length=64, index=True)
    flow_id: str = Field(max_length=64)
    context: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=InvitationStatus.SCHEDULED, max_length=16, index=True)
    reason: str | None = Field(default=None, max_length=32)  # see bot.invitations.rules.Reason
    detail: str | None = Field(default=None, max_length=512)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    requested_at: datetime = Field(default_factory=utcnow)  # now, or the request's send_after
    send_at: datetime = Field(default_factory=utcnow)  # requested_at moved out of quiet hours
    decided_at: datetime | None = None  # when it was sent or withheld
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id", index=True)
    # Scheduler attempts that failed with an error (retried with backoff, then withheld).
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=512)


class Suppression(SQLModel, table=True):
    """A customer who must not be invited (the suppression list), whatever the other rules say."""

    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_suppression_customer"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    external_id: str = Field(max_length=128)
    note: str | None = Field(default=None, max_length=256)
    created_by: str = Field(max_length=64)  # "cli", or the admin API key's name
    created_at: datetime = Field(default_factory=utcnow)


class DeskRole(StrEnum):
    """What a desk user may do: support reviews and replies; admin also manages users and keys."""

    ADMIN = "admin"
    SUPPORT = "support"


class DeskUser(SQLModel, table=True):
    """A person who signs in to the web desk (`cxbot users add`). Only an argon2 hash of the
    password is stored; `session_epoch` grows on every reset or disable, which ends the
    sessions signed before it."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True, index=True)  # stored lower-case
    role: str = Field(max_length=16)  # DeskRole
    password_hash: str = Field(max_length=256)
    session_epoch: int = 0
    disabled_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    last_login_at: datetime | None = None


class LabelCorrection(SQLModel, table=True):
    """A person's correction of a text answer's sentiment label. The model's own label stays in
    SentimentScore; the newest correction of an answer is the label people see."""

    id: int | None = Field(default=None, primary_key=True)
    answer_id: int = Field(foreign_key="answer.id", index=True)
    old_label: str = Field(max_length=16)  # what was shown when corrected (model or correction)
    new_label: str = Field(max_length=16)
    # The model's label at the time, kept beside the correction for training and audits.
    model_label: str | None = Field(default=None, max_length=16)
    model_id: str | None = Field(default=None, max_length=256)
    model_version: str | None = Field(default=None, max_length=64)
    actor: str = Field(max_length=160)  # "desk:ana@example.com", "slack:U012…"
    created_at: datetime = Field(default_factory=utcnow, index=True)


class WebSecret(SQLModel, table=True):
    """A secret the web side needs to agree on across processes (the session cookie key when
    `[desk] session_secret` is not configured), made once by whichever process asks first."""

    name: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=256)
    created_at: datetime = Field(default_factory=utcnow)


class AnalyticsStamp(SQLModel, table=True):
    """How often the answers of one UTC day changed after the day was over: bumped by database
    triggers (migration 0013) on every change the analytics page counts — a label, a
    correction, an erasure, a late-arriving answer. A cached day is valid while the stamps of
    the UTC days it overlaps are what they were when it was computed."""

    day: date = Field(primary_key=True)
    version: int = 0


class AnalyticsDay(SQLModel, table=True):
    """One closed local day of one analytics figure (`kind`: scores, labels) under one filter
    (`signature`) in one time zone: the day's grouped counts as JSON, and the stamps they were
    read with (`storage.analytics_cache`)."""

    __table_args__ = (UniqueConstraint("zone", "signature", "day", name="uq_analytics_day"),)

    id: int | None = Field(default=None, primary_key=True)
    zone: str = Field(max_length=64)
    signature: str = Field(max_length=64)  # sha256 of the figure and its filters
    day: date
    stamp: int
    counts: str  # JSON
    computed_at: datetime = Field(default_factory=utcnow)
