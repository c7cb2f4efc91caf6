"""The support loop: flagged replies as alerts, and what the support team does with them.

Workflow (keyword-only functions over storage queries; each is one transaction):

- `acknowledge` — an open item becomes acknowledged;
- `resolve` — the item is resolved, with the support agent's note;
- `correct_label` — a person's sentiment label for one of the item's text answers (the web desk
  and the Slack alert share `correct_answer_label`); the model's own label is kept;
- `reply` — a message to the customer on *their* channel (Telegram, Slack…) is queued in the
  outbox and recorded, in one transaction; an open item becomes acknowledged. The delivery
  worker sends it; if the platform refuses it for good, a delivery failure of the item is
  stored (purpose `review_reply`).

Every action is stored as a review event (who, what, when, note), so the item's history is data.

Alerts are posted off the hot path by `AlertPoster`, a background task of `cxbot serve`: it
claims review items whose alert is missing or out of date (new reasons, a status change) and
posts or updates them, then records what the message shows. Several processes may run it over
one database (claims are compare-and-set). A refused post (`not_in_channel`,
`channel_not_found`…) gives one log line, a stored delivery failure and a retry later with
backoff; a rate limit is waited out. Neither stops serve, and the review item is never lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bot.errors import (
    CustomerUnreachableError,
    DeliveryError,
    LabelCorrectionError,
    RateLimitedError,
    ReviewNotFoundError,
)
from bot.messages import (
    OutgoingMessage,
    PressOutcome,
    ReviewCard,
    ReviewStep,
    ReviewText,
    SubmitOutcome,
    SupportPress,
    SupportSubmission,
    UserNames,
)
from bot.support_actions import PlainNames, SupportTeam, on_press, on_submit
from bot.turn_outbox import enqueue_message, uses_outbox
from bot.waiting import wait_for_event
from storage import desk_queue as dq
from storage import review_queue as rq
from storage.database import Database, Session, transaction
from storage.label_corrections import add_correction, shown_labels
from storage.privacy import erased_external_id
from storage.tables import Answer, LabelCorrection, ReviewItem, ReviewStatus

log = logging.getLogger(__name__)

STALE_CLAIM = timedelta(minutes=5)  # a claim older than this belongs to a process that died
FIRST_RETRY = 30.0  # seconds before the first retry of a refused alert; doubles
MAX_RETRY = 3600.0
BATCH = 20


class ShowAlert(Protocol):
    """Post (message_ts None) or update an alert; returns its message ts (SlackChannel)."""

    def __call__(
        self, *, target: str, card: ReviewCard, message_ts: str | None
    ) -> Awaitable[str]: ...


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# -- the workflow ---------------------------------------------------------------------------------


def _item(session: Session, review_id: int) -> ReviewItem:
    item = rq.get_review_item(session, review_item_id=review_id)
    if item is None:
        raise ReviewNotFoundError(f"review item #{review_id} does not exist")
    return item


def acknowledge(db: Database, *, review_id: int, actor: str) -> bool:
    """Mark an open item acknowledged; False (nothing stored) when it was not open."""
    with transaction(db) as session:
        item = _item(session, review_id)
        if item.status != ReviewStatus.OPEN:
            return False
        rq.add_review_event(
            session, item=item, action="acknowledged", actor=actor, status=ReviewStatus.ACKNOWLEDGED
        )
        return True


def resolve(db: Database, *, review_id: int, actor: str, note: str) -> bool:
    """Resolve the item with a note; False (nothing stored) when it was resolved already."""
    with transaction(db) as session:
        item = _item(session, review_id)
        if item.status == ReviewStatus.RESOLVED:
            return False
        rq.add_review_event(
            session,
            item=item,
            action="resolved",
            actor=actor,
            note=note,
            status=ReviewStatus.RESOLVED,
        )
        return True


def queue_reply(
    session: Session,
    *,
    review_id: int,
    actor: str,
    text: str,
    can_reply: Callable[[str], bool] = lambda _c: True,
) -> ReviewItem:
    """Inside a transaction: queue `text` for the item's customer and record it; the item.

    Raises, before anything is stored: ReviewNotFoundError for an unknown id,
    CustomerUnreachableError when the customer blocked the bot or was erased, DeliveryError
    when this cxbot does not deliver on their channel (`can_reply(channel)` is False).
    """
    details = rq.review_details(session, review_item_id=review_id)
    if details is None:
        raise ReviewNotFoundError(f"review item #{review_id} does not exist")
    customer = details.customer
    channel, user_id = customer.channel, customer.external_id
    if customer.id is not None and user_id == erased_external_id(customer.id):
        raise CustomerUnreachableError(
            "the customer's data was erased: they cannot be written to any more"
        )
    if customer.unreachable_at is not None:
        why = f" ({customer.unreachable_reason})" if customer.unreachable_reason else ""
        raise CustomerUnreachableError(
            f"the customer cannot be reached on {channel}{why}: they blocked the bot or left"
        )
    if not uses_outbox(channel) or not can_reply(channel):
        raise DeliveryError(f"the {channel} channel is not configured in this cxbot")
    item = _item(session, review_id)  # locked: one status change at a time
    status = ReviewStatus.ACKNOWLEDGED if item.status == ReviewStatus.OPEN else None
    rq.add_review_event(session, item=item, action="replied", actor=actor, note=text, status=status)
    enqueue_message(
        session,
        OutgoingMessage(channel=channel, user_id=user_id, text=text),
        purpose="review_reply",
        review_item_id=review_id,
    )
    return item


def reply(
    db: Database,
    *,
    review_id: int,
    actor: str,
    text: str,
    can_reply: Callable[[str], bool] = lambda _c: True,
) -> None:
    """Queue `text` for the item's customer on their channel and record it, in one transaction.

    `can_reply(channel)`: whether this cxbot delivers on the customer's channel; when it does
    not, DeliveryError is raised and nothing is stored. CustomerUnreachableError (nothing
    stored) when the customer blocked the bot or was erased; ReviewNotFoundError for an
    unknown id.
    """
    with transaction(db) as session:
        queue_reply(session, review_id=review_id, actor=actor, text=text, can_reply=can_reply)


def correct_answer_label(
    session: Session, *, review_id: int, answer_id: int, actor: str, label: str
) -> LabelCorrection:
    """Inside a transaction: store a person's sentiment label for a text answer of item
    `review_id`, and a `label_corrected` review event (the item's history, its alert); the
    correction. The web desk and the Slack alert both correct labels through this.

    Raises, before anything is stored: LabelCorrectionError for an unknown label or the label
    the text already shows; ReviewNotFoundError when the item does not exist (or its customer
    was erased) or the answer is not a text of that item. The model's own label is kept; the
    correction stores who, when, old and new, and the model's id and version.
    """
    wanted = label.strip().lower()
    if wanted not in dq.LABELS:
        raise LabelCorrectionError(
            f"unknown sentiment label {label!r}: use one of {', '.join(dq.LABELS)}"
        )
    item = rq.get_review_item(session, review_item_id=review_id)
    if item is None or dq.is_erased(session, customer_id=item.customer_id):
        raise ReviewNotFoundError(f"review item #{review_id} does not exist")
    answer = session.get(Answer, answer_id)
    if (
        answer is None
        or answer.conversation_id != item.conversation_id
        or answer.question_type != dq.TEXT_TYPE
        or answer.skipped
    ):
        raise ReviewNotFoundError(f"review item #{review_id} has no text answer #{answer_id}")
    before = shown_labels(session, answer_ids=[answer_id]).get(answer_id)
    if before is not None and before.label == wanted:
        raise LabelCorrectionError(f"the text is labelled {wanted} already")
    fix = add_correction(session, answer_id=answer_id, new_label=wanted, actor=actor)
    rq.add_review_event(
        session,
        item=item,
        action="label_corrected",
        actor=actor,
        note=f"answer #{answer_id}: {fix.old_label} → {fix.new_label}",
    )
    return fix


def correct_label(db: Database, *, review_id: int, answer_id: int, actor: str, label: str) -> None:
    """Correct a text answer's sentiment label in one transaction (`correct_answer_label`)."""
    with transaction(db) as session:
        correct_answer_label(
            session, review_id=review_id, answer_id=answer_id, actor=actor, label=label
        )


# -- what an alert shows --------------------------------------------------------------------------


def actor_id(actor: str) -> str:
    """Who an actor string names, as alerts show them: "slack:U012" -> "U012" (a Slack user
    id, mentioned), "desk:ana@example.com" -> "ana@example.com" (a web desk user's e-mail,
    shown as it is)."""
    return actor.split(":", 1)[1] if ":" in actor else actor


@dataclass(frozen=True, slots=True)
class CardVersion:
    """What an alert shows of an item: its updated_at and how many sentiment labels."""

    updated_at: datetime
    labels: int


def review_card(
    db: Database, *, review_id: int, can_reply: Callable[[str], bool] = lambda _c: True
) -> tuple[ReviewCard, CardVersion] | None:
    """The item as an alert shows it, and the version of the item that it shows."""
    with transaction(db) as session:
        details = rq.review_details(session, review_item_id=review_id)
        if details is None:
            return None
        item, customer = details.item, details.customer
        name = " ".join(p for p in (customer.first_name, customer.last_name) if p)
        who = f"{name} ({customer.external_id})" if name else customer.external_id
        scores: list[str] = []
        texts: list[ReviewText] = []
        # The label people see: a support agent's correction wins over the model's.
        shown = shown_labels(session, answer_ids=[a.id for a in details.answers if a.id])
        for answer in details.answers:
            if answer.skipped:
                continue
            if answer.question_type in ("nps", "ces", "csat") and answer.value_int is not None:
                scale = f" of {answer.scale_max}" if answer.scale_max is not None else ""
                scores.append(f"{answer.question_type.upper()} {answer.value_int}{scale}")
            elif answer.question_type == "text" and answer.value_text:
                seen = shown.get(answer.id or -1)
                label = by = model = None
                if seen is not None and seen.corrected_by is not None:
                    label = f"{seen.label} (corrected)"
                    by, model = actor_id(seen.corrected_by), seen.model_label
                elif seen is not None and seen.label is not None:
                    label = f"{seen.label} {seen.confidence or 0:.0%}"
                texts.append(
                    ReviewText(
                        question_id=answer.question_id,
                        text=answer.value_text,
                        sentiment=label,
                        answer_id=answer.id,
                        label=seen.label if seen is not None else None,
                        corrected_from=model,
                        corrected_by=by,
                    )
                )
        card = ReviewCard(
            review_id=review_id,
            status=item.status,
            customer=who,
            channel=customer.channel,
            flow_id=details.conversation.flow_id,
            scores=tuple(scores),
            texts=tuple(texts),
            reasons=tuple(str(r.get("detail") or r.get("code")) for r in item.reasons),
            history=tuple(
                ReviewStep(
                    action=e.action,
                    actor=actor_id(e.actor),
                    at=_aware(e.created_at),
                    note=e.note,
                )
                for e in details.events
            ),
            can_reply=can_reply(customer.channel),
        )
        return card, CardVersion(item.updated_at, len(details.sentiment))


# -- alerts ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What one pass of the alert poster did."""

    shown: int
    failed: int


class AlertPoster:
    """Keeps one alert per review item in the support channel up to date (see module doc)."""

    def __init__(
        self,
        *,
        db: Database,
        target: str,
        show: ShowAlert,
        can_reply: Callable[[str], bool] = lambda _c: True,
        poll_seconds: float = 5.0,
        channel: str = "slack",
    ) -> None:
        self._db = db
        self.target = target
        self._show = show
        self._can_reply = can_reply
        self._poll = poll_seconds
        self._channel = channel
        self._wake = asyncio.Event()

    def nudge(self) -> None:
        """Something changed: look now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Post and update alerts until cancelled."""
        while True:
            await self.sync_pending()
            await wait_for_event(self._wake, self._poll)
            self._wake.clear()

    async def sync_pending(self) -> SyncResult:
        """Post or update every alert that is missing or out of date (claimed in batches)."""
        shown = failed = 0
        while True:
            now = datetime.now(UTC)
            claimed = await asyncio.to_thread(self._claim, now)
            for review_id in claimed:
                if await self._sync_claimed(review_id):
                    shown += 1
                else:
                    failed += 1
            if len(claimed) < BATCH:
                return SyncResult(shown, failed)

    async def sync(self, review_id: int) -> bool:
        """Bring one item's alert up to date now (after a support action); False if not."""
        now = datetime.now(UTC)
        claimed = await asyncio.to_thread(self._claim_one, review_id, now)
        if not claimed:
            self.nudge()  # someone else holds it; the next pass catches up
            return False
        return await self._sync_claimed(review_id)

    def _claim(self, now: datetime) -> list[int]:
        with transaction(self._db) as session:
            return rq.claim_alerts(
                session, target=self.target, now=now, stale_before=now - STALE_CLAIM, limit=BATCH
            )

    def _claim_one(self, review_id: int, now: datetime) -> bool:
        with transaction(self._db) as session:
            return rq.claim_alert(
                session,
                review_item_id=review_id,
                target=self.target,
                now=now,
                stale_before=now - STALE_CLAIM,
            )

    def _alert(self, review_id: int) -> tuple[str, str | None]:
        with transaction(self._db) as session:
            alert = rq.alert_of(session, review_item_id=review_id)
            assert alert is not None  # claimed
            return alert.target, alert.message_ts

    async def _sync_claimed(self, review_id: int) -> bool:
        found = await asyncio.to_thread(
            review_card, self._db, review_id=review_id, can_reply=self._can_reply
        )
        if found is None:
            return False
        card, version = found
        target, ts = await asyncio.to_thread(self._alert, review_id)
        try:
            ts = await self._show(target=target, card=card, message_ts=ts)
        except RateLimitedError as exc:
            log.warning("alert for review #%d: %s; trying again later", review_id, exc)
            await asyncio.to_thread(self._failed, review_id, str(exc), exc.retry_after, False)
            return False
        except DeliveryError as exc:
            delay = await asyncio.to_thread(self._failed, review_id, str(exc), None, True)
            log.error(
                "alert for review #%d could not be posted to %s: %s (is the bot a member of "
                "that channel? /invite it there); retrying in %.0f s",
                review_id,
                target,
                exc,
                delay,
            )
            return False
        await asyncio.to_thread(self._shown, review_id, ts, version)
        return True

    def _shown(self, review_id: int, ts: str, version: CardVersion) -> None:
        with transaction(self._db) as session:
            rq.record_alert_shown(
                session,
                review_item_id=review_id,
                message_ts=ts,
                shown_version=version.updated_at,
                shown_labels=version.labels,
            )

    def _failed(self, review_id: int, error: str, wait: float | None, store: bool) -> float:
        with transaction(self._db) as session:
            alert = rq.alert_of(session, review_item_id=review_id)
            assert alert is not None
            delay = wait if wait is not None else min(FIRST_RETRY * 2**alert.failures, MAX_RETRY)
            count = rq.record_alert_failed(
                session,
                review_item_id=review_id,
                error=error,
                retry_at=datetime.now(UTC) + timedelta(seconds=delay),
            )
            if store and count == 1:  # one stored failure per run of failures, not per retry
                rq.add_delivery_failure(
                    session,
                    channel=self._channel,
                    target=alert.target,
                    purpose="review_alert",
                    error=error,
                    review_item_id=review_id,
                )
            return delay


class ReviewDesk:
    """The `SupportDesk` that alert buttons talk to: `press` and `submit` decide as
    bot.support_actions says, over the workflow below (each action also updates the alert in
    place). `names`: how the platform names people in notices (the Slack channel)."""

    def __init__(
        self,
        *,
        db: Database,
        support_users: Sequence[str],
        poster: AlertPoster | None,
        actor_prefix: str = "slack",
        can_reply: Callable[[str], bool] = lambda _c: True,
        names: UserNames | None = None,
    ) -> None:
        self._db = db
        self._users = frozenset(support_users)
        self._team = SupportTeam(self._users, names or PlainNames())
        self._poster = poster
        self._prefix = actor_prefix
        self._can_reply = can_reply
        self._queued: list[Callable[[], None]] = []

    def on_queued(self, listener: Callable[[], None]) -> None:
        """Call `listener` (in the event loop) after a reply was queued in the outbox."""
        self._queued.append(listener)

    @property
    def support_users(self) -> frozenset[str]:
        """Platform user ids allowed to act on alerts."""
        return self._users

    async def press(self, press: SupportPress) -> PressOutcome:
        """An alert's button was pressed (bot.support_actions.on_press)."""
        return await on_press(self, self._team, press)

    async def submit(self, form: SupportSubmission) -> SubmitOutcome:
        """A support form was submitted (bot.support_actions.on_submit)."""
        return await on_submit(self, self._team, form)

    def _actor(self, user: str) -> str:
        return f"{self._prefix}:{user}"

    async def _refresh(self, review_id: int) -> None:
        if self._poster is not None:
            await self._poster.sync(review_id)

    async def card(self, *, review_id: int) -> ReviewCard | None:
        """The item as an alert shows it."""
        found = await asyncio.to_thread(
            review_card, self._db, review_id=review_id, can_reply=self._can_reply
        )
        return found[0] if found is not None else None

    async def acknowledge(self, *, review_id: int, actor: str) -> bool:
        """Acknowledge and update the alert in place; False (nothing stored) when not open.

        Raises ReviewNotFoundError for an id no item has.
        """
        changed = await asyncio.to_thread(
            acknowledge, self._db, review_id=review_id, actor=self._actor(actor)
        )
        if changed:
            await self._refresh(review_id)
        return changed

    async def resolve(self, *, review_id: int, actor: str, note: str) -> bool:
        """Resolve with a note and update the alert in place; False when already resolved.

        Nothing is stored then (the caller tells the agent, whose note would be lost otherwise).
        Raises ReviewNotFoundError for an id no item has.
        """
        changed = await asyncio.to_thread(
            resolve, self._db, review_id=review_id, actor=self._actor(actor), note=note
        )
        if changed:
            await self._refresh(review_id)
        return changed

    async def correct_label(
        self, *, review_id: int, answer_id: int, actor: str, label: str
    ) -> None:
        """Correct a text answer's sentiment label (`correct_answer_label`: LabelCorrectionError,
        ReviewNotFoundError, nothing stored) and update the alert in place."""
        await asyncio.to_thread(
            correct_label,
            self._db,
            review_id=review_id,
            answer_id=answer_id,
            actor=self._actor(actor),
            label=label,
        )
        await self._refresh(review_id)

    async def reply(self, *, review_id: int, actor: str, text: str) -> None:
        """Queue a reply to the customer, record it, and update the alert in place.

        The delivery worker sends it (and stores a delivery failure if the platform refuses).
        Raises DeliveryError, storing nothing, when the customer's channel is not served here;
        ReviewNotFoundError for an id no item has.
        """
        await asyncio.to_thread(
            reply,
            self._db,
            review_id=review_id,
            actor=self._actor(actor),
            text=text,
            can_reply=self._can_reply,
        )
        for listener in self._queued:
            listener()
        await self._refresh(review_id)
