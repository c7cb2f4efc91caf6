"""Invitations from other systems (the REST API, `cxbot invite`): checked, decided, stored.

`Invitations.create_sync` runs in ONE transaction: the repeat check on (source, interaction
id), the customer (with the time zone the request gave), the fatigue rules
(`bot.invitations.rules`), the invitation row and — when it is due now and no rule says no —
the survey itself, opened through the engine, which writes its first messages to the outbox in
the same transaction. So an invitation answered "sent" has its messages queued, and one that
failed half-way left nothing. Later sends are the scheduler's (`bot.invitations.scheduler`),
which re-checks the rules at send time through `send_scheduled_in`.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from bot.config import Settings
from bot.engine import Engine
from bot.errors import CxbotError
from bot.flow_catalog import FlowCatalog
from bot.invitations.rules import Reason, rules_for, send_time, withheld
from bot.invitations.suppression import CHANNELS, user_id_problem
from bot.invitations.touchpoints import touchpoint_flow, touchpoint_names
from bot.messages import IncomingMessage, MessageKind
from bot.quiet_hours import zone_named
from bot.turn_outbox import uses_outbox
from storage import invitation_rows as rows_q
from storage.conversations import active_conversation
from storage.customers import upsert_customer
from storage.database import Database, Session, transaction
from storage.invitation_rows import NewInvitation, StoredInvitation
from storage.invitations import invitation_facts, lock_customer, set_time_zone
from storage.tables import InvitationStatus

MAX_CONTEXT_KEYS = 50
MAX_CONTEXT_KEY = 64
MAX_CONTEXT_VALUE = 256
MAX_SEND_AFTER = timedelta(days=365)
# A send_after a little in the past is a clock difference between machines, not a mistake.
CLOCK_SKEW = timedelta(seconds=60)
_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f]+")

ContextValue = str | int | float | bool
Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class InvitationRequest:
    """What a caller asks for: survey this customer after this interaction."""

    channel: str
    user_id: str
    touchpoint: str | None
    interaction_id: str
    flow_id: str | None = None
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    send_after: datetime | None = None  # timezone-aware; None: now
    time_zone: str | None = None  # the customer's IANA zone


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a request: the field (as the API names it) and why."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class InvalidInvitation(CxbotError):
    """The request cannot be accepted as it is; nothing was stored."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


class InteractionConflict(CxbotError):
    """The interaction id was already used by this source for another customer or touchpoint."""


@dataclass(frozen=True, slots=True)
class Created:
    """What became of a request: the invitation's id and status (`created` False: a repeat of
    the same interaction, answered from the stored row)."""

    id: int
    status: str
    reason: str | None
    detail: str | None
    flow_id: str
    send_at: datetime
    created: bool
    conversation_id: int | None = None
    known: bool = True  # the customer wrote to the bot (or was invited) before this request
    messages: int = 0  # how many messages the opened survey queued

    @property
    def queued(self) -> bool:
        """Whether messages were written to the outbox by this request."""
        return self.created and self.status == InvitationStatus.SENT


@dataclass(frozen=True, slots=True)
class ConversationState:
    """The survey an invitation opened, as it stands now."""

    id: int
    state: str
    flow_id: str
    flow_version: int
    current_question: str | None
    started_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class InvitationState:
    """An invitation and the survey it opened (if any)."""

    invitation: StoredInvitation
    conversation: ConversationState | None


def context_text(value: ContextValue) -> str:
    """A context value as the survey sees it: text (booleans as true/false, numbers as JSON)."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


class Invitations:
    """Creates invitations and sends scheduled ones; shared by the API, the CLI and serve."""

    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        engine: Engine,
        catalog: FlowCatalog,
        channels: Collection[str],
        clock: Clock = _now,
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self._engine = engine
        self._catalog = catalog
        # The channels this server can deliver on: an invitation to another one would wait in
        # the outbox for ever, so it is refused up front.
        self.channels = tuple(c for c in CHANNELS if c in set(channels))
        self.clock = clock
        self._on_queued = on_queued

    def on_queued(self, listener: Callable[[], None]) -> None:
        """Call `listener` (in the event loop) after messages were queued for delivery."""
        self._on_queued = listener

    def notify_queued(self) -> None:
        """Messages were queued: wake whoever delivers them."""
        if self._on_queued is not None:
            self._on_queued()

    # -- checking ---------------------------------------------------------------------------

    def flow_for(self, request: InvitationRequest) -> str:
        """The flow the invitation runs: its own, else its touchpoint's, else the default."""
        return (
            request.flow_id
            or touchpoint_flow(self.settings, request.touchpoint)
            or self.settings.flows.default
        )

    def problems(self, request: InvitationRequest, *, now: datetime | None = None) -> list[Problem]:
        """Everything wrong with the request (empty: it can be accepted). Stores nothing."""
        now = now or self.clock()
        found: list[Problem] = []
        found += self._channel_problems(request)
        if request.touchpoint is not None:
            names = touchpoint_names(self.settings)
            if request.touchpoint not in names:
                found.append(
                    Problem(
                        "touchpoint",
                        f"unknown touchpoint {request.touchpoint!r}; known: {', '.join(names)} "
                        "(declare more in [touchpoints.NAME])",
                    )
                )
        interaction = request.interaction_id
        if not interaction or len(interaction) > 128 or not _PRINTABLE.fullmatch(interaction):
            found.append(
                Problem("interaction_id", "must be 1-128 characters without control characters")
            )
        flow = self.flow_for(request)
        if flow not in self._catalog:
            where = "flow_id" if request.flow_id else "touchpoint"
            found.append(
                Problem(
                    where,
                    f"unknown flow {flow!r}; known flows: {', '.join(sorted(self._catalog.ids()))}",
                )
            )
        found += _context_problems(request.context)
        found += _time_problems(request, now)
        return found

    def _channel_problems(self, request: InvitationRequest) -> list[Problem]:
        if request.channel not in CHANNELS:
            return [
                Problem("channel", f"unknown channel {request.channel!r}; use telegram or slack")
            ]
        found = []
        if request.channel not in self.channels:
            served = ", ".join(self.channels) or "none"
            found.append(
                Problem(
                    "channel",
                    f"{request.channel} is not configured on this server (configured: {served})",
                )
            )
        problem = user_id_problem(request.channel, request.user_id)
        if problem is not None:
            found.append(Problem("user_id", problem))
        return found

    def check(self, request: InvitationRequest, *, now: datetime | None = None) -> None:
        """Raise InvalidInvitation listing every problem of the request."""
        problems = self.problems(request, now=now)
        if problems:
            raise InvalidInvitation(problems)

    # -- creating ---------------------------------------------------------------------------

    async def create(self, request: InvitationRequest, *, source: str) -> Created:
        """`create_sync` in a worker thread; wakes delivery when messages were queued."""
        created = await asyncio.to_thread(self.create_sync, request, source=source)
        if created.queued:
            self.notify_queued()
        return created

    async def create_many(
        self, requests: Sequence[InvitationRequest], *, source: str
    ) -> list[Created]:
        """Check every request first (InvalidInvitation names the rows, nothing stored), then
        create each in its own transaction, in order."""
        now = self.clock()
        problems = [
            Problem(f"invitations[{i}].{p.field}", p.message)
            for i, request in enumerate(requests)
            for p in self.problems(request, now=now)
        ]
        if problems:
            raise InvalidInvitation(problems)

        def create_all() -> list[Created]:
            return [self.create_sync(r, source=source, checked=True) for r in requests]

        results = await asyncio.to_thread(create_all)
        if any(r.queued for r in results):
            self.notify_queued()
        return results

    def create_sync(
        self, request: InvitationRequest, *, source: str, checked: bool = False
    ) -> Created:
        """Check, decide and store the invitation in one transaction (see the module's doc).

        Raises InvalidInvitation (nothing stored) and InteractionConflict (the interaction id
        was used for another customer or touchpoint).
        """
        now = self.clock()
        if not checked:
            self.check(request, now=now)
        with transaction(self.db) as session:
            return self.create_in(session, request, source=source, now=now)

    def create_in(
        self, session: Session, request: InvitationRequest, *, source: str, now: datetime
    ) -> Created:
        """`create_sync` inside the caller's transaction (a checked request)."""
        existing = rows_q.invitation_by_interaction(
            session, source=source, interaction_id=request.interaction_id
        )
        if existing is not None:
            return _repeat(existing, request)
        flow_id = self.flow_for(request)
        facts = invitation_facts(
            session, channel=request.channel, external_id=request.user_id, flow_id=flow_id
        )
        customer = upsert_customer(session, channel=request.channel, external_id=request.user_id)
        assert customer.id is not None
        lock_customer(session, customer_id=customer.id)
        if request.time_zone:
            set_time_zone(session, customer=customer, time_zone=request.time_zone)
        rules = rules_for(self.settings, request.touchpoint)
        zone = zone_named(customer.time_zone, default=self.settings.invitations.default_time_zone)
        requested = max(request.send_after or now, now)
        new = NewInvitation(
            source=source,
            interaction_id=request.interaction_id,
            customer_id=customer.id,
            channel=request.channel,
            user_id=request.user_id,
            touchpoint=request.touchpoint,
            flow_id=flow_id,
            context=dict(request.context),
            requested_at=requested,
            send_at=requested,
        )
        no = withheld(facts, rules, flow_id=flow_id, interaction_id=request.interaction_id, now=now)
        when = send_time(requested, rules=rules, zone=zone)
        if no is not None:
            new = replace(new, status=InvitationStatus.WITHHELD, reason=no.reason, detail=no.detail)
        elif when.moved:
            new = replace(new, send_at=when.at, reason=Reason.QUIET_HOURS, detail=when.detail)
        invitation_id = rows_q.insert_invitation(session, new=new, now=now)
        if invitation_id is None:
            # The same interaction, inserted by a request that committed meanwhile.
            stored = rows_q.invitation_by_interaction(
                session, source=source, interaction_id=request.interaction_id
            )
            assert stored is not None
            return _repeat(stored, request)
        conversation_id, messages = None, 0
        status = new.status
        if status == InvitationStatus.SCHEDULED and new.send_at <= now:
            conversation_id, messages = self._open_survey(session, new)
            rows_q.mark_sent(
                session, invitation_id=invitation_id, conversation_id=conversation_id, now=now
            )
            status = InvitationStatus.SENT
        return Created(
            id=invitation_id,
            status=status,
            reason=new.reason if status != InvitationStatus.SENT else None,
            detail=new.detail if status != InvitationStatus.SENT else None,
            flow_id=flow_id,
            send_at=new.send_at,
            created=True,
            conversation_id=conversation_id,
            known=facts.known,
            messages=messages,
        )

    def _open_survey(
        self, session: Session, invitation: NewInvitation | StoredInvitation
    ) -> tuple[int, int]:
        """Open the survey through the engine, in the caller's transaction: its first messages
        go to the outbox with it. The conversation's id and how many messages it queued."""
        if not uses_outbox(invitation.channel):
            raise CxbotError(f"channel {invitation.channel!r} cannot take invitations")
        msg = IncomingMessage(
            channel=invitation.channel,
            user_id=invitation.user_id,
            kind=MessageKind.START,
            flow_id=invitation.flow_id,
            context={k: context_text(v) for k, v in invitation.context.items()},
        )
        # A start stores no text, so there is no sentiment worker to wake after the commit.
        turn = self._engine.turn_in(session, msg, proactive=True)
        conversation = active_conversation(session, customer_id=invitation.customer_id)
        if conversation is None or conversation.id is None:
            raise CxbotError("the engine opened no survey")  # the rules checked opt-out first
        return conversation.id, len(turn.replies)

    # -- scheduled sends --------------------------------------------------------------------

    def send_scheduled_in(self, session: Session, row: StoredInvitation, *, now: datetime) -> str:
        """A claimed, due invitation: re-check the rules and send it, withhold it, or move it
        out of quiet hours — in the caller's transaction. The resulting status."""
        if row.flow_id not in self._catalog:
            rows_q.mark_withheld(
                session,
                invitation_id=row.id,
                reason=Reason.UNKNOWN_FLOW,
                detail=f"flow {row.flow_id!r} is no longer configured",
                now=now,
            )
            return InvitationStatus.WITHHELD
        lock_customer(session, customer_id=row.customer_id)
        facts = invitation_facts(
            session, channel=row.channel, external_id=row.user_id, flow_id=row.flow_id
        )
        rules = rules_for(self.settings, row.touchpoint)
        no = withheld(facts, rules, flow_id=row.flow_id, interaction_id=row.interaction_id, now=now)
        if no is not None:
            rows_q.mark_withheld(
                session, invitation_id=row.id, reason=no.reason, detail=no.detail, now=now
            )
            return InvitationStatus.WITHHELD
        zone = zone_named(facts.time_zone, default=self.settings.invitations.default_time_zone)
        when = send_time(now, rules=rules, zone=zone)
        if when.moved:
            rows_q.reschedule(
                session,
                invitation_id=row.id,
                send_at=when.at,
                reason=Reason.QUIET_HOURS,
                detail=when.detail,
            )
            return InvitationStatus.SCHEDULED
        conversation_id, _ = self._open_survey(session, row)
        rows_q.mark_sent(session, invitation_id=row.id, conversation_id=conversation_id, now=now)
        return InvitationStatus.SENT

    # -- reading ----------------------------------------------------------------------------

    def state_sync(self, invitation_id: int) -> InvitationState | None:
        """The invitation and its survey as they stand; None when there is no such id."""
        with transaction(self.db) as session:
            row = rows_q.get_invitation(session, invitation_id=invitation_id)
            if row is None:
                return None
            conversation = None
            if row.conversation_id is not None:
                found = rows_q.conversation_summary(session, conversation_id=row.conversation_id)
                if found is not None:
                    conversation = ConversationState(**found)
            return InvitationState(invitation=row, conversation=conversation)

    async def state(self, invitation_id: int) -> InvitationState | None:
        """`state_sync` in a worker thread."""
        return await asyncio.to_thread(self.state_sync, invitation_id)


def _repeat(stored: StoredInvitation, request: InvitationRequest) -> Created:
    """The answer to a repeat of an interaction: the stored row's, if it is the same one."""
    if (stored.channel, stored.user_id, stored.touchpoint) != (
        request.channel,
        request.user_id,
        request.touchpoint,
    ):
        raise InteractionConflict(
            f"interaction_id {stored.interaction_id!r} was already used for invitation "
            f"{stored.id} ({stored.channel} user {stored.user_id}, touchpoint "
            f"{stored.touchpoint}); use a new interaction id for another invitation"
        )
    return Created(
        id=stored.id,
        status=stored.status,
        reason=stored.reason,
        detail=stored.detail,
        flow_id=stored.flow_id,
        send_at=stored.send_at,
        created=False,
        conversation_id=stored.conversation_id,
    )


def _context_problems(context: Mapping[str, ContextValue]) -> list[Problem]:
    found = []
    if len(context) > MAX_CONTEXT_KEYS:
        found.append(Problem("context", f"at most {MAX_CONTEXT_KEYS} keys, got {len(context)}"))
    for key, value in context.items():
        if not key or len(key) > MAX_CONTEXT_KEY:
            found.append(Problem("context", f"key {key[:80]!r}: 1-{MAX_CONTEXT_KEY} characters"))
        elif not isinstance(value, str | int | float):
            found.append(Problem(f"context.{key}", "must be a string, number or boolean"))
        elif len(context_text(value)) > MAX_CONTEXT_VALUE:
            found.append(Problem(f"context.{key}", f"at most {MAX_CONTEXT_VALUE} characters"))
    return found


def _time_problems(request: InvitationRequest, now: datetime) -> list[Problem]:
    found = []
    after = request.send_after
    if after is not None:
        if after.tzinfo is None:
            found.append(Problem("send_after", "give a time zone offset (e.g. Z or +02:00)"))
        elif after < now - CLOCK_SKEW:
            found.append(
                Problem(
                    "send_after",
                    f"{after.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ} is in the past "
                    f"(now {now.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ})",
                )
            )
        elif after > now + MAX_SEND_AFTER:
            found.append(Problem("send_after", "at most a year (365 days) ahead"))
    if request.time_zone is not None:
        try:
            zone_named(request.time_zone)
        except CxbotError as exc:
            found.append(Problem("time_zone", str(exc)))
    return found
