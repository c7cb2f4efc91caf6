"""Read-only queries behind the invitation sections of `cxbot report`: scores by touchpoint and
the funnel invited → delivered → started → completed.

A survey's touchpoint is that of the invitation that opened it (`invitation.conversation_id`);
surveys a customer started without an invitation (a /start, a deep link, `cxbot chat`) have none
and are outside both sections.

"Delivered" is read from data that outlives the outbox's clean-up (finished outbox rows are
deleted after three days, `bot.housekeeping`): a sent invitation's survey is delivered unless
the delivery worker gave it up (`conversation.undelivered_at`, cleared when the customer later
got the question) or its messages still wait in the outbox; a survey the customer answered was
delivered whatever else is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, exists, func, literal, or_
from sqlalchemy import select as core_select
from sqlmodel import Session

from storage.reports import SCORE_TYPES, ScoreRow
from storage.tables import (
    Answer,
    Conversation,
    ConversationState,
    Invitation,
    InvitationStatus,
    OutboxMessage,
)

_INVITATION = Invitation.__table__  # type: ignore[attr-defined]  # Core: plain rows
_CONVERSATION = Conversation.__table__  # type: ignore[attr-defined]
_ANSWER = Answer.__table__  # type: ignore[attr-defined]
_OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class TouchpointScore:
    """One score answer of a survey opened by an invitation, with that invitation's touchpoint
    (None: an invitation without one, e.g. `cxbot invite` without `--touchpoint`)."""

    touchpoint: str | None
    score: ScoreRow


def touchpoint_score_answers(
    session: Session, *, flow_id: str | None = None, channel: str | None = None
) -> list[TouchpointScore]:
    """Every scored answer (as `storage.reports.score_answers` picks them) of a survey that an
    invitation opened, with the invitation's touchpoint."""
    # Two invitations may name one survey (the second resumed it): the first one opened it.
    opener = (
        core_select(
            _INVITATION.c.conversation_id,
            func.min(_INVITATION.c.id).label("invitation_id"),
        )
        .where(_INVITATION.c.conversation_id.is_not(None))
        .group_by(_INVITATION.c.conversation_id)
        .subquery("opener")
    )
    stmt = (
        core_select(
            _INVITATION.c.touchpoint,
            _ANSWER.c.flow_id,
            _ANSWER.c.channel,
            _ANSWER.c.question_type,
            _ANSWER.c.value_int,
            _ANSWER.c.scale_min,
            _ANSWER.c.scale_max,
        )
        .select_from(_ANSWER)
        .join(opener, opener.c.conversation_id == _ANSWER.c.conversation_id)
        .join(_INVITATION, _INVITATION.c.id == opener.c.invitation_id)
        .where(
            _ANSWER.c.question_type.in_(SCORE_TYPES),
            _ANSWER.c.skipped.is_(False),
            _ANSWER.c.value_int.is_not(None),
            _ANSWER.c.late.is_(False),  # a late comment is feedback, not an answer
        )
    )
    if flow_id is not None:
        stmt = stmt.where(_ANSWER.c.flow_id == flow_id)
    if channel is not None:
        stmt = stmt.where(_ANSWER.c.channel == channel)
    return [
        TouchpointScore(
            touchpoint=row.touchpoint,
            score=ScoreRow(
                flow_id=row.flow_id,
                channel=row.channel,
                question_type=row.question_type,
                value=int(row.value_int),
                scale_min=row.scale_min,
                scale_max=row.scale_max,
            ),
        )
        for row in session.execute(stmt)
    ]


@dataclass(frozen=True, slots=True)
class FunnelRow:
    """How many invitations share a touchpoint, flow, channel, status and reason, and how many
    of them got as far as each step of the funnel."""

    touchpoint: str | None
    flow_id: str
    channel: str
    status: str
    reason: str | None
    invited: int
    delivered: int
    started: int
    completed: int


def _started() -> Any:
    """The invitation's survey has an answer (a skip counts; a late comment does not)."""
    return exists(
        core_select(literal(1))
        .select_from(_ANSWER)
        .where(
            _ANSWER.c.conversation_id == _INVITATION.c.conversation_id,
            _ANSWER.c.late.is_(False),
        )
    )


def _still_queued() -> Any:
    """Survey messages of the invitation's survey not yet sent nor given up: rows of the
    customer's lane queued since the survey started and before their next survey started."""
    later = _CONVERSATION.alias("later")
    replaced = exists(
        core_select(literal(1))
        .select_from(later)
        .where(
            later.c.customer_id == _CONVERSATION.c.customer_id,
            later.c.id > _CONVERSATION.c.id,
            later.c.started_at <= _OUTBOX.c.created_at,
        )
        .correlate(_CONVERSATION, _OUTBOX)
    )
    lane = _INVITATION.c.channel + literal(":") + _INVITATION.c.user_id
    return exists(
        core_select(literal(1))
        .select_from(_OUTBOX)
        .where(
            _OUTBOX.c.lane == lane,
            _OUTBOX.c.sent_at.is_(None),
            _OUTBOX.c.failed_at.is_(None),
            _OUTBOX.c.purpose == "survey",
            _OUTBOX.c.created_at >= _CONVERSATION.c.started_at,
            ~replaced,  # queued for a later survey of theirs
        )
    )


def funnel_counts(
    session: Session,
    *,
    flow_id: str | None = None,
    channel: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[FunnelRow]:
    """Invitations counted by touchpoint, flow, channel, status and reason, with how many were
    delivered, started and completed (each step includes the next: a completed survey was
    started, a started one delivered); optionally for one flow or channel, and for invitations
    created in [since, until)."""
    sent = and_(
        _INVITATION.c.status == InvitationStatus.SENT,
        _CONVERSATION.c.id.is_not(None),
    )
    completed = and_(sent, _CONVERSATION.c.state == ConversationState.COMPLETED)
    started = or_(completed, and_(sent, _started()))
    delivered = or_(
        started,
        and_(sent, _CONVERSATION.c.undelivered_at.is_(None), ~_still_queued()),
    )

    def tally(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    keys = (
        _INVITATION.c.touchpoint,
        _INVITATION.c.flow_id,
        _INVITATION.c.channel,
        _INVITATION.c.status,
        _INVITATION.c.reason,
    )
    stmt = (
        core_select(
            *keys,
            func.count().label("invited"),
            tally(delivered).label("delivered"),
            tally(started).label("started"),
            tally(completed).label("completed"),
        )
        .select_from(_INVITATION)
        .outerjoin(_CONVERSATION, _CONVERSATION.c.id == _INVITATION.c.conversation_id)
        .group_by(*keys)
    )
    if flow_id is not None:
        stmt = stmt.where(_INVITATION.c.flow_id == flow_id)
    if channel is not None:
        stmt = stmt.where(_INVITATION.c.channel == channel)
    if since is not None:
        stmt = stmt.where(_INVITATION.c.created_at >= since)
    if until is not None:
        stmt = stmt.where(_INVITATION.c.created_at < until)
    return [
        FunnelRow(
            touchpoint=row.touchpoint,
            flow_id=row.flow_id,
            channel=row.channel,
            status=row.status,
            reason=row.reason,
            invited=int(row.invited),
            delivered=int(row.delivered),
            started=int(row.started),
            completed=int(row.completed),
        )
        for row in session.execute(stmt)
    ]
