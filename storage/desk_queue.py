"""Queries behind the web desk: the review queue with its filters and counts, one item's whole
story, and response times.

The queue stays fast with many flagged items. What the queue filters, counts and orders by
(status, assignee, dates, the sentiment shown, the least confident uncorrected label, the
touchpoint, the reason codes; some of them lookups through the item's answers, labels,
corrections and invitation) is kept per process in a `FactsCache`, in queue order. Each
request first reads a few watermarks (row counts and newest ids of the review items, labels
and corrections, and the newest item update): new rows and updates refresh only the items they
touch; anything else (a deletion, rows committed out of id order) derives every item again.
Filtering, counting per facet and paging then run in memory over items grouped by their facet
values, and four queries read the page's own rows (items, answers, model labels, corrections)
for its ids only.

An item whose customer was erased is left out everywhere: its text is gone, and the desk shows
it as not found.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from storage.label_corrections import ShownLabel, shown_labels
from storage.outbox import lane_of
from storage.tables import (
    Answer,
    Conversation,
    Customer,
    Invitation,
    LabelCorrection,
    OutboxMessage,
    ReviewEvent,
    ReviewItem,
    ReviewStatus,
    SentimentScore,
    as_utc,
)

TEXT_TYPE = "text"
SCORE_TYPES = ("nps", "ces", "csat")
LABELS = ("negative", "neutral", "positive")  # most negative first, and alphabetical
# The label of a text in a language without a model (nlp.routing); never a correction's.
UNCLASSIFIED = "unclassified"
UNLABELLED = "unlabelled"
UNRESOLVED = "unresolved"  # the status filter for open and acknowledged together
UNASSIGNED = "none"  # the assignee filter for items nobody took
ORDERS = ("newest", "oldest_open")
EXCERPT_CHARS = 160
# The facets counted under the other filters, in the order the desk shows them.
FACETS = ("status", "reason", "channel", "flow", "sentiment", "touchpoint")


@dataclass(frozen=True, slots=True)
class QueueQuery:
    """What the queue is asked for (bot.desk_views.QueueFilter plus the desk's settings)."""

    now: datetime
    target: timedelta  # response target: not acknowledged within it is overdue
    low_below: float  # model labels less confident than this are low confidence
    status: str | None = None
    reason: str | None = None
    flow: str | None = None
    channel: str | None = None
    touchpoint: str | None = None
    sentiment: str | None = None
    assignee: str | None = None
    since: date | None = None
    until: date | None = None
    low_confidence: bool = False
    overdue: bool = False
    order: str = "newest"
    page: int = 1
    per_page: int = 50


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One review item as a line of the queue (bot.desk_views re-exports it)."""

    id: int
    created_at: datetime
    status: str
    customer: str
    channel: str
    flow_id: str
    touchpoint: str | None
    reasons: tuple[str, ...]
    details: tuple[str, ...]
    excerpt: str
    scores: dict[str, int]
    sentiment: str | None
    confidence: float | None
    low_confidence: bool
    assignee: str | None
    overdue: bool


@dataclass(frozen=True, slots=True)
class StoredPage:
    """One page of the queue, its total and the per-facet counts and offered values."""

    rows: list[QueueRow]
    total: int
    counts: dict[str, dict[str, int]]
    facets: dict[str, list[str]]


# -- derived values, as correlated expressions on one review item ------------------------------


def _text_answers(answer: Any) -> ColumnElement[bool]:
    return and_(
        answer.conversation_id == ReviewItem.conversation_id,
        answer.question_type == TEXT_TYPE,
        answer.skipped == false(),
    )


def _newest(model: Any, column: Any, answer: Any) -> Any:
    """`column` of the answer's newest `model` row (by id). A max(id) lookup rather than
    ORDER BY id DESC LIMIT 1, which PostgreSQL may answer by walking the whole primary key."""
    newest = (
        select(func.max(model.id))
        .where(model.answer_id == answer.id)
        .correlate_except(model)
        .scalar_subquery()
    )
    return select(column).where(model.id == newest).correlate_except(model).scalar_subquery()


def _sentiment_expr() -> ColumnElement[str]:
    """The item's sentiment: the most negative label shown on its texts, else "unlabelled".

    A correction wins over the model. The labels sort alphabetically in the order of their
    negativity (negative < neutral < positive), so min() of the shown labels is the most
    negative one, with each label computed once per text.
    """
    answer = aliased(Answer)
    shown = func.coalesce(
        _newest(LabelCorrection, LabelCorrection.new_label, answer),
        _newest(SentimentScore, SentimentScore.label, answer),
    )
    worst = (
        select(func.min(shown)).where(_text_answers(answer)).correlate(ReviewItem).scalar_subquery()
    )
    return func.coalesce(worst, UNLABELLED)


def _lowest_confidence_expr() -> Any:
    """The least confidence among the item's model labels that nobody corrected (None: no
    such label)."""
    answer = aliased(Answer)
    corrected = exists().where(col(LabelCorrection.answer_id) == answer.id)
    return (
        select(func.min(_newest(SentimentScore, SentimentScore.confidence, answer)))
        .where(_text_answers(answer), not_(corrected))
        .correlate(ReviewItem)
        .scalar_subquery()
    )


def _touchpoint_expr() -> Any:
    """The touchpoint of the invitation that opened the item's survey (None: not invited)."""
    # min(), not ORDER BY id LIMIT 1: one index lookup on either database (a survey has one
    # invitation; were there several, the same one is named everywhere).
    return (
        select(func.min(Invitation.touchpoint))
        .where(col(Invitation.conversation_id) == ReviewItem.conversation_id)
        .correlate(ReviewItem)
        .scalar_subquery()
    )


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


# -- the facts cache ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ItemFacts:
    """What the queue filters, counts and orders one item by."""

    status: str
    assignee: str | None
    created: datetime
    acknowledged: bool  # first_ack_at is set
    erased: bool  # its customer was erased: never shown
    channel: str
    flow: str
    touchpoint: str | None
    sentiment: str  # the most negative label shown on its texts, or "unlabelled"
    lowest_confidence: float | None  # of its uncorrected model labels
    reasons: frozenset[str]  # reason codes

    @property
    def combo(self) -> tuple[str, frozenset[str], str, str, str, str | None]:
        """Its value of each facet, in FACETS order: items alike here filter and count alike."""
        return (
            self.status,
            self.reasons,
            self.channel,
            self.flow,
            self.sentiment,
            self.touchpoint,
        )


# Tables whose new rows change some item's facts, with how a row leads to its conversation.
# Answers are not among them: a text answer changes no fact until it is labelled (a new
# sentiment score), and a reason it adds is a review item update (`updated_at`). Nor are
# invitations: one is tied to its survey before the survey can be flagged, and never deleted.
_SOURCES: tuple[tuple[Any, Any], ...] = (
    (ReviewItem, col(ReviewItem.conversation_id)),
    (SentimentScore, None),  # through its answer
    (LabelCorrection, None),  # through its answer
)
# Review items updated this long before the newest update seen are looked at again on each
# refresh: a transaction that stamped its update earlier may commit after a later one.
UPDATE_LOOKBACK = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class _Marks:
    """How far the facts reach: (row count, newest id) per source, and the newest item
    update."""

    tables: tuple[tuple[int, int], ...]
    updated: datetime | None


def _watermarks(session: Session) -> _Marks:
    """The current marks, in one statement of index lookups and one small scan."""
    columns: list[Any] = []
    for model, _link in _SOURCES:
        columns.append(select(func.count()).select_from(model).scalar_subquery())
        columns.append(select(func.coalesce(func.max(model.id), 0)).scalar_subquery())
    columns.append(select(func.max(ReviewItem.updated_at)).scalar_subquery())
    row = session.execute(select(*columns)).one()
    tables = tuple((int(row[i]), int(row[i + 1])) for i in range(0, 2 * len(_SOURCES), 2))
    return _Marks(tables=tables, updated=as_utc(row[-1]))


def _touched_conversations(old: _Marks) -> Any:
    """The conversations of rows newer than the `old` marks (a subquery of `cid`)."""
    parts: list[Select[Any]] = []
    for (model, link), (_count, newest) in zip(_SOURCES, old.tables, strict=True):
        if link is not None:
            parts.append(select(link.label("cid")).where(model.id > newest))
        else:
            parts.append(
                select(col(Answer.conversation_id).label("cid"))
                .join(model, model.answer_id == col(Answer.id))
                .where(model.id > newest)
            )
    if old.updated is not None:
        parts.append(
            select(col(ReviewItem.conversation_id).label("cid")).where(
                col(ReviewItem.updated_at) > old.updated - UPDATE_LOOKBACK
            )
        )
    return union_all(*parts).subquery()


def _only_appended(old: _Marks, new: _Marks) -> bool:
    """Whether each source only gained rows above its old newest id, as many as its count
    grew by, so that the new rows are exactly those with greater ids. A deletion (an
    erasure), or a row committed after one with a greater id (PostgreSQL), breaks this: then
    every item is derived again."""
    for (old_count, old_max), (new_count, new_max) in zip(old.tables, new.tables, strict=True):
        added = new_count - old_count
        if added < 0 or (added == 0) != (new_max == old_max) or added > new_max - old_max:
            return False
    return True


def _compute_facts(session: Session, conversations: Any | None) -> dict[int, ItemFacts]:
    """The facts of every item, or of the items of `conversations` (a subquery of `cid`)."""
    stmt = (
        select(
            col(ReviewItem.id),
            col(ReviewItem.status),
            col(ReviewItem.assignee),
            col(ReviewItem.created_at),
            col(ReviewItem.first_ack_at).is_not(None),
            col(Customer.external_id).startswith("erased:"),
            col(Conversation.channel),
            col(Conversation.flow_id),
            _touchpoint_expr(),
            _sentiment_expr(),
            _lowest_confidence_expr(),
            col(ReviewItem.reasons),
        )
        .join(Conversation, col(Conversation.id) == col(ReviewItem.conversation_id))
        .join(Customer, col(Customer.id) == col(ReviewItem.customer_id))
    )
    if conversations is not None:
        stmt = stmt.where(col(ReviewItem.conversation_id).in_(select(conversations.c.cid)))
    if session.get_bind().dialect.name == "postgresql":
        # Thousands of correlated lookups look costly to the planner, whose JIT then spends
        # longer compiling (seconds) than the lookups take. For this transaction only.
        session.execute(text("SET LOCAL jit = off"))
    facts: dict[int, ItemFacts] = {}
    # Core rows straight from the connection: the ORM's per-row work doubled the cost.
    for row in session.connection().execute(stmt):
        item_id, status, assignee, created, acked, erased, channel, flow = row[:8]
        touchpoint, sentiment, lowest, reasons = row[8:]
        facts[int(item_id)] = ItemFacts(
            status=status,
            assignee=assignee,
            created=as_utc(created) or created,
            acknowledged=bool(acked),
            erased=bool(erased),
            channel=channel,
            flow=flow,
            touchpoint=touchpoint,
            sentiment=sentiment,
            lowest_confidence=None if lowest is None else float(lowest),
            reasons=frozenset(str(r.get("code")) for r in reasons),
        )
    return facts


Combo = tuple[str, frozenset[str], str, str, str, str | None]
# (item id, combo, is open, facts), newest first.
Ordered = list[tuple[int, Combo, bool, ItemFacts]]


class FactsCache:
    """Each item's facts, kept between requests of one process (see the module doc), with
    the items in queue order (newest first), so that a request sorts nothing.

    Safe to share between threads: a refresh builds new collections and swaps them in.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._marks: _Marks | None = None
        self._facts: dict[int, ItemFacts] = {}
        self._ordered: Ordered = []

    def current(self, session: Session) -> Ordered:
        """Every item as of this transaction, newest first (refreshed first when needed)."""
        marks = _watermarks(session)
        with self._lock:
            old, facts, ordered = self._marks, self._facts, self._ordered
        if old == marks:
            return ordered
        if old is not None and _only_appended(old, marks):
            fresh = dict(facts)
            fresh.update(_compute_facts(session, _touched_conversations(old)))
        else:
            fresh = _compute_facts(session, None)
        ordered = sorted(
            ((i, f.combo, f.status == ReviewStatus.OPEN, f) for i, f in fresh.items()),
            key=lambda entry: (entry[3].created, entry[0]),
            reverse=True,
        )
        with self._lock:
            self._marks, self._facts, self._ordered = marks, fresh, ordered
        return ordered


# -- the queue ----------------------------------------------------------------------------------


def _misses(query: QueueQuery, combo: Combo) -> tuple[int, ...]:
    """The positions (in FACETS) of the facet filters that items like this do not meet."""
    status, reasons, channel, flow, sentiment, touchpoint = combo
    missed: list[int] = []
    if query.status and not (
        status in (ReviewStatus.OPEN, ReviewStatus.ACKNOWLEDGED)
        if query.status == UNRESOLVED
        else status == query.status
    ):
        missed.append(0)
    if query.reason and query.reason not in reasons:
        missed.append(1)
    for position, wanted, value in (
        (2, query.channel, channel),
        (3, query.flow, flow),
        (4, query.sentiment, sentiment),
        (5, query.touchpoint, touchpoint),
    ):
        if wanted and value != wanted:
            missed.append(position)
    return tuple(missed)


def _base_filter(query: QueueQuery) -> Callable[[ItemFacts], bool]:
    """Whether an item meets the filters that are not counted facets: assignee, dates,
    overdue, low confidence (bounds worked out once, not per item)."""
    since = _day_start(query.since) if query.since is not None else None
    until = _day_start(query.until + timedelta(days=1)) if query.until is not None else None
    overdue_from = query.now - query.target

    def matches(fact: ItemFacts) -> bool:
        if query.assignee == UNASSIGNED:
            if fact.assignee is not None:
                return False
        elif query.assignee and fact.assignee != query.assignee:
            return False
        if (since is not None and fact.created < since) or (
            until is not None and fact.created >= until
        ):
            return False
        if query.overdue and (
            fact.status == ReviewStatus.RESOLVED or fact.acknowledged or fact.created > overdue_from
        ):
            return False
        return not query.low_confidence or (
            fact.lowest_confidence is not None and fact.lowest_confidence < query.low_below
        )

    return matches


def _has_base_filters(query: QueueQuery) -> bool:
    return bool(
        query.assignee or query.since or query.until or query.overdue or query.low_confidence
    )


def _counts(listed: Counter[Combo], single: dict[int, Counter[Combo]]) -> dict[str, dict[str, int]]:
    """facet -> value -> count: an item every filter lets through counts under every facet;
    one that misses a single facet's filter counts under that facet only (a facet's counts
    apply every other filter)."""
    counts: dict[str, dict[str, int]] = {facet: {} for facet in FACETS}
    for position, facet in enumerate(FACETS):
        tally = counts[facet]
        for combos in (listed, single[position]):
            for combo, n in combos.items():
                values = combo[position]
                for value in values if isinstance(values, frozenset) else (values,):
                    if value is not None:
                        tally[value] = tally.get(value, 0) + n
    return counts


def queue_page(session: Session, query: QueueQuery, cache: FactsCache | None = None) -> StoredPage:
    """One page of the queue under `query`, with the total and every facet's counts.

    `cache`: the process's FactsCache (None: the facts are derived afresh, for one call).
    """
    ordered = (cache or FactsCache()).current(session)
    base = _base_filter(query) if _has_base_filters(query) else None
    misses: dict[Combo, tuple[int, ...]] = {}  # items alike miss alike: worked out once
    listed: list[Combo] = []
    single: dict[int, list[Combo]] = {position: [] for position in range(len(FACETS))}
    matching: list[tuple[int, bool]] = []  # (id, open), newest first
    for item_id, combo, is_open, fact in ordered:
        if fact.erased or (base is not None and not base(fact)):
            continue
        missed = misses.get(combo)
        if missed is None:
            missed = misses[combo] = _misses(query, combo)
        if not missed:
            listed.append(combo)
            matching.append((item_id, is_open))
        elif len(missed) == 1:
            single[missed[0]].append(combo)
    if query.order == "oldest_open":
        matching.reverse()
        matching = [m for m in matching if m[1]] + [m for m in matching if not m[1]]
    start = (query.page - 1) * query.per_page
    ids = [item_id for item_id, _open in matching[start : start + query.per_page]]
    counts = _counts(Counter(listed), {p: Counter(c) for p, c in single.items()})
    # A select offers the values that find something under the other filters, and the one
    # chosen (so that it shows, and can be changed, even when it finds nothing).
    offered: dict[str, list[str]] = {}
    for facet, name, picked in (
        ("flow", "flows", query.flow),
        ("channel", "channels", query.channel),
        ("touchpoint", "touchpoints", query.touchpoint),
        ("reason", "reasons", query.reason),
    ):
        offered[name] = sorted({*counts[facet], *([picked] if picked else [])})
    offered["assignees"] = current_assignees(session)
    return StoredPage(
        rows=queue_rows(session, ids=ids, now=query.now, target=query.target, low=query.low_below),
        total=len(matching),
        counts=counts,
        facets=offered,
    )


def customer_name(customer: Customer) -> str:
    """How the desk names a customer: `First Last (external id)`, or the id alone."""
    name = " ".join(p for p in (customer.first_name, customer.last_name) if p)
    return f"{name} ({customer.external_id})" if name else customer.external_id


def _is_overdue(item: ReviewItem, now: datetime, target: timedelta) -> bool:
    created = as_utc(item.created_at)
    assert created is not None
    return (
        item.status != ReviewStatus.RESOLVED
        and item.first_ack_at is None
        and created <= now - target
    )


def _touchpoints(session: Session, conversation_ids: Sequence[int]) -> dict[int, str | None]:
    found: dict[int, str | None] = {}
    if not conversation_ids:
        return found
    stmt = (
        select(col(Invitation.conversation_id), func.min(Invitation.touchpoint))
        .where(col(Invitation.conversation_id).in_(conversation_ids))
        .group_by(col(Invitation.conversation_id))
    )
    for conversation_id, touchpoint in session.execute(stmt):
        found[int(conversation_id)] = touchpoint  # as _touchpoint_expr names it
    return found


def _worst(labels: Iterable[ShownLabel]) -> ShownLabel | None:
    # "unclassified" (no model for the text's language) sorts after every sentiment, as in SQL.
    order = (*LABELS, UNCLASSIFIED)
    ranked = [s for s in labels if s.label in order]
    return min(ranked, key=lambda s: order.index(s.label or ""), default=None)


def queue_rows(
    session: Session, *, ids: Sequence[int], now: datetime, target: timedelta, low: float
) -> list[QueueRow]:
    """The queue lines of these items, in the order of `ids` (four queries, whatever the page)."""
    if not ids:
        return []
    found = session.execute(
        select(ReviewItem, Conversation, Customer)
        .join(Conversation, col(Conversation.id) == col(ReviewItem.conversation_id))
        .join(Customer, col(Customer.id) == col(ReviewItem.customer_id))
        .where(col(ReviewItem.id).in_(ids))
    ).all()
    by_id = {item.id: (item, conv, cust) for item, conv, cust in found}
    conversation_ids = [conv.id for _i, conv, _c in found]
    answers: dict[int, list[Answer]] = {}
    for answer in session.execute(
        select(Answer)
        .where(col(Answer.conversation_id).in_(conversation_ids))
        .order_by(col(Answer.id))
    ).scalars():
        answers.setdefault(answer.conversation_id, []).append(answer)
    texts = [
        a.id
        for group in answers.values()
        for a in group
        if a.question_type == TEXT_TYPE and a.id is not None
    ]
    labels = shown_labels(session, answer_ids=texts)
    touchpoints = _touchpoints(session, conversation_ids)
    rows: list[QueueRow] = []
    for review_id in ids:
        if review_id not in by_id:
            continue
        item, conv, cust = by_id[review_id]
        mine = answers.get(conv.id or -1, [])
        text_answers = [a for a in mine if a.question_type == TEXT_TYPE and not a.skipped]
        shown = [labels[a.id] for a in text_answers if a.id in labels]
        worst = _worst(shown)
        excerpt = next((a.value_text or a.raw_text for a in text_answers if a.value_text), "")
        if len(excerpt) > EXCERPT_CHARS:
            excerpt = excerpt[: EXCERPT_CHARS - 1] + "…"
        created = as_utc(item.created_at)
        assert created is not None
        rows.append(
            QueueRow(
                id=review_id,
                created_at=created,
                status=item.status,
                customer=customer_name(cust),
                channel=conv.channel,
                flow_id=conv.flow_id,
                touchpoint=touchpoints.get(conv.id or -1),
                reasons=tuple(str(r.get("code")) for r in item.reasons),
                details=tuple(str(r.get("detail") or r.get("code")) for r in item.reasons),
                excerpt=excerpt,
                scores={
                    a.question_id: a.value_int
                    for a in mine
                    if a.question_type in SCORE_TYPES and a.value_int is not None and not a.skipped
                },
                sentiment=worst.label if worst else None,
                confidence=worst.confidence if worst else None,
                low_confidence=any(
                    s.corrected_by is None and s.confidence is not None and s.confidence < low
                    for s in shown
                ),
                assignee=item.assignee,
                overdue=_is_overdue(item, now, target),
            )
        )
    return rows


# -- one item -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One message of an item's conversation: the customer's answer, the bot's, or support's."""

    when: datetime
    who: str  # customer / bot / support
    text: str
    question_id: str | None
    actor: str | None
    score: int | None
    answer_id: int | None  # a text answer: its label is in StoredItem.labels


@dataclass(frozen=True, slots=True)
class StoredItem:
    """Everything stored about one review item, read in one transaction."""

    item: ReviewItem
    customer: Customer
    conversation: Conversation
    touchpoint: str | None
    answers: list[Answer]
    labels: dict[int, ShownLabel]
    messages: list[StoredMessage]
    events: list[ReviewEvent]
    overdue: bool


def _bot_messages(
    session: Session, *, customer: Customer, conversation: Conversation
) -> list[OutboxMessage]:
    """What the bot sent the customer during this survey (up to their next survey)."""
    started = conversation.started_at
    following = session.execute(
        select(func.min(Conversation.started_at)).where(
            col(Conversation.customer_id) == conversation.customer_id,
            col(Conversation.started_at) > started,
        )
    ).scalar()
    stmt = select(OutboxMessage).where(
        col(OutboxMessage.lane) == lane_of(customer.channel, customer.external_id),
        col(OutboxMessage.kind) == "message",
        col(OutboxMessage.purpose) != "review_reply",
        col(OutboxMessage.created_at) >= started,
    )
    if following is not None:
        stmt = stmt.where(col(OutboxMessage.created_at) < following)
    return list(session.execute(stmt.order_by(col(OutboxMessage.id))).scalars())


def item_details(
    session: Session, *, review_id: int, now: datetime, target: timedelta
) -> StoredItem | None:
    """The item with its conversation in order, labels and history; None when unknown or its
    customer was erased."""
    item = session.get(ReviewItem, review_id)
    if item is None:
        return None
    customer = session.get(Customer, item.customer_id)
    conversation = session.get(Conversation, item.conversation_id)
    assert customer is not None and conversation is not None  # foreign keys
    if customer.external_id.startswith("erased:"):
        return None
    answers = list(
        session.execute(
            select(Answer)
            .where(col(Answer.conversation_id) == item.conversation_id)
            .order_by(col(Answer.id))
        ).scalars()
    )
    labels = shown_labels(
        session,
        answer_ids=[a.id for a in answers if a.question_type == TEXT_TYPE and a.id is not None],
    )
    events = list(
        session.execute(
            select(ReviewEvent)
            .where(col(ReviewEvent.review_item_id) == review_id)
            .order_by(col(ReviewEvent.id))
        ).scalars()
    )
    messages: list[StoredMessage] = []
    for sent in _bot_messages(session, customer=customer, conversation=conversation):
        created = as_utc(sent.created_at)
        assert created is not None
        messages.append(
            StoredMessage(
                created, "bot", str(sent.body.get("text") or ""), sent.question_id, None, None, None
            )
        )
    for answer in answers:
        answered = as_utc(answer.answered_at)
        assert answered is not None
        is_text = answer.question_type == TEXT_TYPE
        messages.append(
            StoredMessage(
                answered,
                "customer",
                answer.raw_text or answer.value_text or "",
                answer.question_id,
                None,
                answer.value_int if answer.question_type in SCORE_TYPES else None,
                answer.id if is_text else None,
            )
        )
    for event in events:
        if event.action == "replied":
            when = as_utc(event.created_at)
            assert when is not None
            messages.append(
                StoredMessage(when, "support", event.note or "", None, event.actor, None, None)
            )
    messages.sort(key=lambda m: m.when)  # stable: bot question before the answer at one time
    return StoredItem(
        item=item,
        customer=customer,
        conversation=conversation,
        touchpoint=_touchpoints(session, [conversation.id or -1]).get(conversation.id or -1),
        answers=answers,
        labels=labels,
        messages=messages,
        events=events,
        overdue=_is_overdue(item, now, target),
    )


# -- response times -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredTimes:
    """Seconds to first acknowledgement and to first reply of the items created in a
    window, each list sorted."""

    acknowledged: list[float]
    replied: list[float]


def _seconds_between(session: Session, start: Any, end: Any) -> Any:
    """`end - start` in seconds, computed by the database (no datetimes to parse per row)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def response_times(session: Session, *, since: datetime) -> StoredTimes:
    """The response times of the items created since `since` (erased customers' items
    count: their timestamps are not personal data)."""
    created = col(ReviewItem.created_at)
    stmt = select(
        _seconds_between(session, created, col(ReviewItem.first_ack_at)),
        _seconds_between(session, created, col(ReviewItem.first_reply_at)),
    ).where(
        created >= since,
        or_(col(ReviewItem.first_ack_at).is_not(None), col(ReviewItem.first_reply_at).is_not(None)),
    )
    rows = session.connection().execute(stmt).all()
    # Whole milliseconds: julianday() is a float of days, some microseconds off.
    acknowledged = sorted(round(max(0.0, float(a)), 3) for a, _r in rows if a is not None)
    replied = sorted(round(max(0.0, float(r)), 3) for _a, r in rows if r is not None)
    return StoredTimes(acknowledged, replied)


def percentile(seconds: Sequence[float], share: float) -> timedelta | None:
    """The nearest-rank percentile of sorted `seconds` (share 0.5 = median); None if empty."""
    if not seconds:
        return None
    rank = max(1, math.ceil(share * len(seconds)))
    return timedelta(seconds=seconds[rank - 1])


def is_erased(session: Session, *, customer_id: int) -> bool:
    """Whether this customer's data was erased (their review items are no longer shown)."""
    customer = session.get(Customer, customer_id)
    return customer is None or customer.external_id.startswith("erased:")


def current_assignees(session: Session) -> list[str]:
    """Every actor some review item is assigned to now, sorted."""
    stmt = select(col(ReviewItem.assignee)).where(col(ReviewItem.assignee).is_not(None)).distinct()
    return sorted(str(a) for a in session.execute(stmt).scalars())
