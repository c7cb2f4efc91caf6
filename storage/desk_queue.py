"""Queries behind the web desk: the review queue with its filters and counts, one item's whole
story, and response times.

The queue stays fast with many flagged items: the derived values that filters need (the
sentiment shown, a low-confidence label, the touchpoint) are correlated index lookups on the
item's own conversation, never scans of the answer or score tables. One statement finds the
page's ids; one statement counts every facet (a materialized CTE of the items under the filters
that are not facets, grouped once per facet); four more read the page's rows (items, answers,
model labels, corrections) for those ids only.

An item whose customer was erased is left out everywhere: its text is gone, and the desk shows
it as not found.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    text,
    true,
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
class StoredRow:
    """One queue line as stored (bot.desk_views.QueueRow has the same fields)."""

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

    rows: list[StoredRow]
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


def _low_confidence_expr(low_below: float) -> ColumnElement[bool]:
    """Some text of the item shows a model label below `low_below` that nobody corrected."""
    answer = aliased(Answer)
    corrected = exists().where(col(LabelCorrection.answer_id) == answer.id)
    return (
        exists()
        .where(
            _text_answers(answer),
            not_(corrected),
            _newest(SentimentScore, SentimentScore.confidence, answer) < low_below,
        )
        .correlate(ReviewItem)
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


def _reason_codes(session: Session, reasons: Any) -> Any:
    """A table of the codes in a JSON list of reasons (one row per reason), per dialect."""
    if session.get_bind().dialect.name == "postgresql":
        elements = func.json_array_elements(reasons).table_valued("value").render_derived()
        return elements, elements.c.value.op("->>")("code")
    elements = func.json_each(reasons).table_valued("value")
    return elements, func.json_extract(elements.c.value, "$.code")


def _has_reason(session: Session, reasons: Any, code: str) -> ColumnElement[bool]:
    elements, code_of = _reason_codes(session, reasons)
    return exists(select(literal(1)).select_from(elements).where(code_of == code))


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _status_match(status: ColumnElement[Any], wanted: str) -> ColumnElement[bool]:
    if wanted == UNRESOLVED:
        return col(status).in_([ReviewStatus.OPEN, ReviewStatus.ACKNOWLEDGED])
    return status == wanted


def _overdue_expr(query: QueueQuery) -> ColumnElement[bool]:
    return and_(
        col(ReviewItem.status) != ReviewStatus.RESOLVED,
        col(ReviewItem.first_ack_at).is_(None),
        col(ReviewItem.created_at) <= query.now - query.target,
    )


def _not_erased() -> ColumnElement[bool]:
    return not_(col(Customer.external_id).startswith("erased:"))


def _base_filters(query: QueueQuery) -> list[ColumnElement[bool]]:
    """The filters that are not counted facets: assignee, dates, low confidence, overdue."""
    where: list[ColumnElement[bool]] = [_not_erased()]
    if query.assignee == UNASSIGNED:
        where.append(col(ReviewItem.assignee).is_(None))
    elif query.assignee:
        where.append(col(ReviewItem.assignee) == query.assignee)
    if query.since is not None:
        where.append(col(ReviewItem.created_at) >= _day_start(query.since))
    if query.until is not None:
        where.append(col(ReviewItem.created_at) < _day_start(query.until + timedelta(days=1)))
    if query.low_confidence:
        where.append(_low_confidence_expr(query.low_below))
    if query.overdue:
        where.append(_overdue_expr(query))
    return where


def _facet_filters(
    session: Session, query: QueueQuery, columns: dict[str, Any], skip: str | None = None
) -> list[ColumnElement[bool]]:
    """The facet filters over `columns` (facet -> column), leaving out facet `skip`."""
    where: list[ColumnElement[bool]] = []
    if query.status and skip != "status":
        where.append(_status_match(columns["status"], query.status))
    if query.reason and skip != "reason":
        where.append(_has_reason(session, columns["reasons"], query.reason))
    for facet, wanted in (
        ("channel", query.channel),
        ("flow", query.flow),
        ("touchpoint", query.touchpoint),
        ("sentiment", query.sentiment),
    ):
        if wanted and skip != facet:
            where.append(columns[facet] == wanted)
    return where


def _items_from(stmt: Select[Any]) -> Select[Any]:
    return (
        stmt.select_from(ReviewItem)
        .join(Conversation, col(Conversation.id) == col(ReviewItem.conversation_id))
        .join(Customer, col(Customer.id) == col(ReviewItem.customer_id))
    )


# -- the queue ----------------------------------------------------------------------------------


def _page_ids(session: Session, query: QueueQuery) -> list[int]:
    columns: dict[str, Any] = {
        "status": col(ReviewItem.status),
        "reasons": col(ReviewItem.reasons),
        "channel": col(Conversation.channel),
        "flow": col(Conversation.flow_id),
        "touchpoint": _touchpoint_expr(),
        "sentiment": _sentiment_expr(),
    }
    stmt = _items_from(select(col(ReviewItem.id))).where(
        *_base_filters(query), *_facet_filters(session, query, columns)
    )
    if query.order == "oldest_open":
        first = case((col(ReviewItem.status) == ReviewStatus.OPEN, 0), else_=1)
        stmt = stmt.order_by(first, col(ReviewItem.created_at), col(ReviewItem.id))
    else:
        stmt = stmt.order_by(col(ReviewItem.created_at).desc(), col(ReviewItem.id).desc())
    stmt = stmt.limit(query.per_page).offset((query.page - 1) * query.per_page)
    return [int(i) for i in session.execute(stmt).scalars()]


# Facet -> the key of its values in StoredPage.facets (the filter selects' options).
_OFFERED = {
    "flow": "flows",
    "channel": "channels",
    "touchpoint": "touchpoints",
    "reason": "reasons",
}


def _counts_and_offers(
    session: Session, query: QueueQuery
) -> tuple[dict[str, dict[str, int]], dict[str, list[str]]]:
    """Each facet's counts under every other filter, and the values each facet's select
    offers (those of the items under the filters that are not facets), in one statement."""
    facts = (
        _items_from(
            select(
                col(ReviewItem.id).label("id"),
                col(ReviewItem.status).label("status"),
                col(ReviewItem.reasons).label("reasons"),
                col(Conversation.channel).label("channel"),
                col(Conversation.flow_id).label("flow"),
                _touchpoint_expr().label("touchpoint"),
                _sentiment_expr().label("sentiment"),
            )
        )
        .where(*_base_filters(query))
        .cte("facts")
        .prefix_with("MATERIALIZED")  # the derived values computed once, then grouped
    )
    columns = {name: facts.c[name] for name in ("status", "reasons", *FACETS[2:])}
    elements, code_of = _reason_codes(session, facts.c.reasons)
    branches: list[Select[Any]] = []
    for facet in FACETS:
        where = _facet_filters(session, query, columns, skip=facet)
        if facet == "reason":
            value: Any = cast(code_of, String)
            counted: Any = func.count(func.distinct(facts.c.id))
            source: Any = facts.join(elements, true())
        else:
            value = cast(facts.c[facet], String)
            counted = func.count()
            source = facts
        branches.append(
            select(literal(facet).label("facet"), value.label("value"), counted.label("n"))
            .select_from(source)
            .where(*where)
            .group_by(value)
        )
        if facet in _OFFERED:  # every value, whatever the other facets say
            branches.append(
                select(literal(_OFFERED[facet]), value, literal(0)).select_from(source).distinct()
            )
    counts: dict[str, dict[str, int]] = {facet: {} for facet in FACETS}
    offered: dict[str, list[str]] = {name: [] for name in _OFFERED.values()}
    for facet, value, n in session.execute(union_all(*branches)):
        if value is None:
            continue
        if facet in counts:
            counts[facet][str(value)] = int(n)
        else:
            offered[facet].append(str(value))
    offered = {name: sorted(values) for name, values in offered.items()}
    offered["assignees"] = current_assignees(session)
    return counts, offered


def queue_page(session: Session, query: QueueQuery) -> StoredPage:
    """One page of the queue under `query`, with the total and every facet's counts."""
    if session.get_bind().dialect.name == "postgresql":
        # The counts' estimated cost (set-returning JSON functions are guessed at 100 rows
        # each) crosses PostgreSQL's JIT threshold, and compiling took ~2 s for a query that
        # runs in tens of ms. For this transaction only.
        session.execute(text("SET LOCAL jit = off"))
    ids = _page_ids(session, query)
    counts, offered = _counts_and_offers(session, query)
    statuses = counts["status"]
    if query.status == UNRESOLVED:
        total = statuses.get(ReviewStatus.OPEN, 0) + statuses.get(ReviewStatus.ACKNOWLEDGED, 0)
    elif query.status:
        total = statuses.get(query.status, 0)
    else:
        total = sum(statuses.values())
    return StoredPage(
        rows=queue_rows(session, ids=ids, now=query.now, target=query.target, low=query.low_below),
        total=total,
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
    ranked = [s for s in labels if s.label in LABELS]
    return min(ranked, key=lambda s: LABELS.index(s.label or ""), default=None)


def queue_rows(
    session: Session, *, ids: Sequence[int], now: datetime, target: timedelta, low: float
) -> list[StoredRow]:
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
    rows: list[StoredRow] = []
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
            StoredRow(
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
    """Times to first acknowledgement and first reply of the items created in a window."""

    acknowledged: list[timedelta]
    replied: list[timedelta]


def _seconds_between(session: Session, start: Any, end: Any) -> Any:
    """`end - start` in seconds, computed by the database (no datetimes to parse per row)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def response_times(session: Session, *, since: datetime) -> StoredTimes:
    """The response times of the items created since `since`, each list sorted (erased
    customers' items count: their timestamps are not personal data)."""
    created = col(ReviewItem.created_at)
    stmt = select(
        _seconds_between(session, created, col(ReviewItem.first_ack_at)),
        _seconds_between(session, created, col(ReviewItem.first_reply_at)),
    ).where(
        created >= since,
        or_(col(ReviewItem.first_ack_at).is_not(None), col(ReviewItem.first_reply_at).is_not(None)),
    )
    acknowledged: list[float] = []
    replied: list[float] = []
    for ack, reply in session.execute(stmt):
        if ack is not None:
            acknowledged.append(max(0.0, float(ack)))
        if reply is not None:
            replied.append(max(0.0, float(reply)))
    # Whole milliseconds: julianday() is a float of days, a few microseconds off.
    return StoredTimes(
        [timedelta(milliseconds=round(v * 1000)) for v in sorted(acknowledged)],
        [timedelta(milliseconds=round(v * 1000)) for v in sorted(replied)],
    )


def percentile(values: Sequence[timedelta], share: float) -> timedelta | None:
    """The nearest-rank percentile of sorted `values` (share 0.5 = median); None when empty."""
    if not values:
        return None
    rank = max(1, math.ceil(share * len(values)))
    return values[rank - 1]


def is_erased(session: Session, *, customer_id: int) -> bool:
    """Whether this customer's data was erased (their review items are no longer shown)."""
    customer = session.get(Customer, customer_id)
    return customer is None or customer.external_id.startswith("erased:")


def current_assignees(session: Session) -> list[str]:
    """Every actor some review item is assigned to now, sorted."""
    stmt = select(col(ReviewItem.assignee)).where(col(ReviewItem.assignee).is_not(None)).distinct()
    return sorted(str(a) for a in session.execute(stmt).scalars())
