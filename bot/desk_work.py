"""What the web desk does with review items: the queue, one item, response times, and the
actions (acknowledge, assign, resolve, reply, reopen, correct a label).

Every method is one transaction, run in a worker thread. Actions carry the `version` of the
item that the page showed (`ItemView.version`, a token of `updated_at`): when the item changed
since — another agent acted, or the same form was submitted twice — ReviewConflictError is
raised and nothing is stored. Every action stores a review event, so the item's history and its
Slack alert (which updates when `updated_at` changes) show it: one state, two views.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import fields
from datetime import UTC, datetime, timedelta

from bot.config import DeskSettings
from bot.desk_views import (
    HistoryEntry,
    ItemView,
    QueueFilter,
    QueuePage,
    ResponseTimes,
    TextLabel,
    TimelineEntry,
)
from bot.errors import (
    CustomerUnreachableError,
    ReviewConflictError,
    ReviewNotFoundError,
)
from bot.reviews import correct_answer_label, queue_reply
from storage import desk_queue as dq
from storage import review_queue as rq
from storage.database import Database, Session, transaction
from storage.label_corrections import ShownLabel
from storage.tables import Answer, ReviewItem, ReviewStatus, as_utc

log = logging.getLogger(__name__)

STATUSES = (
    ReviewStatus.OPEN.value,
    ReviewStatus.ACKNOWLEDGED.value,
    ReviewStatus.RESOLVED.value,
    dq.UNRESOLVED,
)
SENTIMENTS = (*dq.LABELS, dq.UNCLASSIFIED, dq.UNLABELLED)
MAX_PER_PAGE = 500
MAX_TEXT = 4000  # a reply or note longer than this is refused, not cut


def version_of(item: ReviewItem) -> str:
    """The opaque version token of an item: its `updated_at`, to the microsecond."""
    updated = as_utc(item.updated_at)
    assert updated is not None
    return updated.isoformat()


def check_filter(filt: QueueFilter) -> None:
    """ValueError with a clear message for a filter the queue cannot apply."""
    if filt.status is not None and filt.status not in STATUSES:
        raise ValueError(f"unknown status {filt.status!r}: use one of {', '.join(STATUSES)}")
    if filt.sentiment is not None and filt.sentiment not in SENTIMENTS:
        raise ValueError(
            f"unknown sentiment {filt.sentiment!r}: use one of {', '.join(SENTIMENTS)}"
        )
    if filt.order not in dq.ORDERS:
        raise ValueError(f"unknown order {filt.order!r}: use one of {', '.join(dq.ORDERS)}")
    if filt.page < 1:
        raise ValueError("page must be 1 or more")
    if not 1 <= filt.per_page <= MAX_PER_PAGE:
        raise ValueError(f"per_page must be between 1 and {MAX_PER_PAGE}")
    if filt.since is not None and filt.until is not None and filt.since > filt.until:
        raise ValueError("the start date is after the end date")


def _text(value: str, what: str) -> str:
    cleaned = value.strip()
    if not cleaned:
        raise ValueError(f"the {what} is empty: write something first")
    if len(cleaned) > MAX_TEXT:
        raise ValueError(f"the {what} is {len(cleaned)} characters long; at most {MAX_TEXT}")
    return cleaned


def _text_label(answer: Answer, shown: ShownLabel | None, low: float) -> TextLabel:
    assert answer.id is not None
    label = shown.label if shown else None
    confidence = shown.confidence if shown else None
    return TextLabel(
        answer_id=answer.id,
        text=answer.value_text or answer.raw_text,
        label=label,
        confidence=confidence,
        model_label=shown.model_label if shown else None,
        model_id=shown.model_id if shown else None,
        model_version=shown.model_version if shown else None,
        corrected_by=shown.corrected_by if shown else None,
        corrected_at=shown.corrected_at if shown else None,
        low_confidence=bool(
            shown and shown.corrected_by is None and confidence is not None and confidence < low
        ),
    )


class DeskWork:
    """What the web desk does with review items; every method one transaction (in a thread)."""

    def __init__(
        self,
        *,
        db: Database,
        settings: DeskSettings,
        can_reply: Callable[[str], bool] = lambda _c: True,
    ) -> None:
        self._db = db
        self._settings = settings
        self._can_reply = can_reply
        self._changed: list[Callable[[int], Awaitable[None]]] = []
        self._queued: list[Callable[[], None]] = []
        self._facts = dq.FactsCache()  # the queue's costly per-item facts, between requests

    def on_changed(self, listener: Callable[[int], Awaitable[None]]) -> None:
        """Await `listener(review_id)` after any change (serve: the Slack alert's sync)."""
        self._changed.append(listener)

    def on_queued(self, listener: Callable[[], None]) -> None:
        """Call `listener()` after a reply was queued in the outbox (serve: delivery.nudge)."""
        self._queued.append(listener)

    @property
    def _target(self) -> timedelta:
        return timedelta(hours=self._settings.response_target_hours)

    async def _changed_now(self, review_id: int) -> None:
        for listener in self._changed:
            try:
                await listener(review_id)
            except Exception:  # a listener (Slack) failing must not undo the stored action
                log.exception("after a desk action on review #%d, a listener failed", review_id)

    # -- reading ---------------------------------------------------------------------------------

    async def queue(self, filt: QueueFilter, *, now: datetime | None = None) -> QueuePage:
        """One page of the review queue; ValueError for a filter that cannot apply."""
        check_filter(filt)
        query = dq.QueueQuery(
            now=now or datetime.now(UTC),
            target=self._target,
            low_below=self._settings.low_confidence_below,
            **{f.name: getattr(filt, f.name) for f in fields(QueueFilter)},
        )
        stored = await asyncio.to_thread(self._read_queue, query)
        return QueuePage(
            rows=list(stored.rows),
            total=stored.total,
            page=filt.page,
            per_page=filt.per_page,
            counts=stored.counts,
            facets=stored.facets,
        )

    def _read_queue(self, query: dq.QueueQuery) -> dq.StoredPage:
        with transaction(self._db) as session:
            return dq.queue_page(session, query, self._facts)

    async def item(self, review_id: int, *, now: datetime | None = None) -> ItemView | None:
        """Everything about one item; None when there is no such item or it was erased."""
        return await asyncio.to_thread(self._read_item, review_id, now or datetime.now(UTC))

    def _read_item(self, review_id: int, now: datetime) -> ItemView | None:
        with transaction(self._db) as session:
            found = dq.item_details(session, review_id=review_id, now=now, target=self._target)
        if found is None:
            return None
        low = self._settings.low_confidence_below
        item, customer, conversation = found.item, found.customer, found.conversation
        texts = {
            a.id: _text_label(a, found.labels.get(a.id), low)
            for a in found.answers
            if a.question_type == dq.TEXT_TYPE and a.id is not None and not a.skipped
        }
        created = as_utc(item.created_at)
        assert created is not None and item.id is not None
        unreachable: str | None = None
        if customer.unreachable_at is not None:
            unreachable = customer.unreachable_reason or "cannot be reached"
        return ItemView(
            id=item.id,
            version=version_of(item),
            status=item.status,
            created_at=created,
            assignee=item.assignee,
            customer=dq.customer_name(customer),
            channel=customer.channel,
            external_id=customer.external_id,
            unreachable=unreachable,
            flow_id=conversation.flow_id,
            flow_version=conversation.flow_version,
            touchpoint=found.touchpoint,
            context=dict(conversation.context),
            reasons=[dict(r) for r in item.reasons],
            scores={
                a.question_id: a.value_int
                for a in found.answers
                if a.question_type in dq.SCORE_TYPES and a.value_int is not None and not a.skipped
            },
            timeline=[
                TimelineEntry(
                    when=m.when,
                    who=m.who,
                    text=m.text,
                    question_id=m.question_id,
                    actor=m.actor,
                    score=m.score,
                    label=texts.get(m.answer_id) if m.answer_id is not None else None,
                )
                for m in found.messages
            ],
            texts=list(texts.values()),
            history=[
                HistoryEntry(
                    when=as_utc(e.created_at) or created,
                    action=e.action,
                    actor=e.actor,
                    note=e.note,
                )
                for e in found.events
            ],
            first_ack_at=as_utc(item.first_ack_at),
            first_reply_at=as_utc(item.first_reply_at),
            overdue=found.overdue,
        )

    async def response_times(self, *, days: int, now: datetime | None = None) -> ResponseTimes:
        """p50/p90 time to first acknowledgement and first reply, items of the last `days`."""
        if days < 1:
            raise ValueError("days must be 1 or more")
        since = (now or datetime.now(UTC)) - timedelta(days=days)
        times = await asyncio.to_thread(self._read_times, since)
        return ResponseTimes(
            days=days,
            acknowledged=len(times.acknowledged),
            replied=len(times.replied),
            ack_p50=dq.percentile(times.acknowledged, 0.5),
            ack_p90=dq.percentile(times.acknowledged, 0.9),
            reply_p50=dq.percentile(times.replied, 0.5),
            reply_p90=dq.percentile(times.replied, 0.9),
        )

    def _read_times(self, since: datetime) -> dq.StoredTimes:
        with transaction(self._db) as session:
            return dq.response_times(session, since=since)

    def assignees(self) -> list[str]:
        """Every actor some item is assigned to now, sorted."""
        with transaction(self._db) as session:
            return dq.current_assignees(session)

    # -- acting ----------------------------------------------------------------------------------

    def _current(self, session: Session, review_id: int, version: str) -> ReviewItem:
        """The item, locked, when the page that acts on it showed its current version (an
        item whose customer was erased is not found)."""
        item = rq.get_review_item(session, review_item_id=review_id)
        if item is None or dq.is_erased(session, customer_id=item.customer_id):
            raise ReviewNotFoundError(f"review item #{review_id} does not exist")
        if version_of(item) != version:
            raise ReviewConflictError(
                f"review item #{review_id} changed since this page was shown "
                "(someone acted on it, or the form was sent twice): reload it and try again"
            )
        return item

    async def _act(
        self, review_id: int, work: Callable[[Session], None], *, queued: bool = False
    ) -> None:
        """Run `work` in one transaction in a thread, then tell the listeners."""
        await asyncio.to_thread(self._run, work)
        if queued:
            for listener in self._queued:
                listener()
        await self._changed_now(review_id)

    def _run(self, work: Callable[[Session], None]) -> None:
        with transaction(self._db) as session:
            work(session)

    async def acknowledge(self, review_id: int, *, actor: str, version: str) -> None:
        """Acknowledge an open item; ReviewConflictError when it is not open (or changed)."""

        def work(session: Session) -> None:
            item = self._current(session, review_id, version)
            if item.status != ReviewStatus.OPEN:
                raise ReviewConflictError(f"review item #{review_id} is {item.status}, not open")
            rq.add_review_event(
                session,
                item=item,
                action="acknowledged",
                actor=actor,
                status=ReviewStatus.ACKNOWLEDGED,
            )

        await self._act(review_id, work)

    async def assign(
        self, review_id: int, *, actor: str, assignee: str | None, version: str
    ) -> None:
        """Give the item to `assignee` (an actor string) or to nobody (None)."""
        wanted = assignee.strip() if assignee else None
        if wanted is not None and ":" not in wanted:
            raise ValueError(f"assignee {wanted!r} is not an actor such as desk:ana@example.com")

        def work(session: Session) -> None:
            item = self._current(session, review_id, version)
            if item.assignee == wanted:
                who = wanted or "nobody"
                raise ReviewConflictError(f"review item #{review_id} is assigned to {who} already")
            item.assignee = wanted
            rq.add_review_event(
                session, item=item, action="assigned", actor=actor, note=wanted or "unassigned"
            )

        await self._act(review_id, work)

    async def resolve(self, review_id: int, *, actor: str, note: str, version: str) -> None:
        """Resolve with a note; ValueError for an empty note, ReviewConflictError if resolved."""
        text = _text(note, "note")

        def work(session: Session) -> None:
            item = self._current(session, review_id, version)
            if item.status == ReviewStatus.RESOLVED:
                raise ReviewConflictError(f"review item #{review_id} is resolved already")
            rq.add_review_event(
                session,
                item=item,
                action="resolved",
                actor=actor,
                note=text,
                status=ReviewStatus.RESOLVED,
            )

        await self._act(review_id, work)

    async def reply(self, review_id: int, *, actor: str, text: str, version: str) -> None:
        """Queue a reply to the customer on their channel and record it (an open item becomes
        acknowledged). CustomerUnreachableError (blocked, erased) and DeliveryError (channel
        not served here) store nothing; ValueError for an empty text."""
        message = _text(text, "reply")

        def work(session: Session) -> None:
            found = rq.get_review_item(session, review_item_id=review_id)
            if found is not None and dq.is_erased(session, customer_id=found.customer_id):
                # Before the version: erasing changed the item, and the reason matters more.
                raise CustomerUnreachableError(
                    "the customer's data was erased: they cannot be written to any more"
                )
            self._current(session, review_id, version)
            queue_reply(
                session, review_id=review_id, actor=actor, text=message, can_reply=self._can_reply
            )

        await self._act(review_id, work, queued=True)

    async def reopen(self, review_id: int, *, actor: str, version: str) -> None:
        """Open a resolved or acknowledged item again; ReviewConflictError when it is open."""

        def work(session: Session) -> None:
            item = self._current(session, review_id, version)
            if item.status == ReviewStatus.OPEN:
                raise ReviewConflictError(f"review item #{review_id} is open already")
            rq.add_review_event(
                session, item=item, action="reopened", actor=actor, status=ReviewStatus.OPEN
            )

        await self._act(review_id, work)

    async def correct_label(
        self, answer_id: int, *, actor: str, label: str, review_id: int
    ) -> None:
        """Correct the sentiment label of a text answer of item `review_id`.

        LabelCorrectionError for an unknown label or the label already shown;
        ReviewNotFoundError when the answer is not a text of that item. The model's own label
        is kept; the correction stores who, when, old and new, and shows in the history
        (bot.reviews.correct_answer_label, which the Slack alert's form uses too).
        """

        def work(session: Session) -> None:
            correct_answer_label(
                session, review_id=review_id, answer_id=answer_id, actor=actor, label=label
            )

        await self._act(review_id, work)
