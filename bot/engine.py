"""The dialogue engine: one survey conversation per (channel, customer), as a state machine.

Each incoming message is one *turn*: the customer, their conversation, the parsed answer, any
review flag and the move to the next question are read and written in ONE database transaction,
so a crash loses nothing and a restart resumes at the question the customer was on.

States and transitions are ONE table, `bot.survey_machine.TABLE` (rendered in that module's
docstring): `_dispatch` classifies each turn into (state, input), looks up the action and runs
it. Stored, a conversation goes ACTIVE at question q → … → COMPLETED (thanks), or OPTED_OUT (the
customer said stop), or ABANDONED (a new survey replaced it), or EXPIRED (closed unfinished by
the reminder worker, `bot.reminders`; turns schedule its reminders and expiry). The key of a
conversation is (channel, customer's platform id).

Concurrency: platform updates reach `turn_in` through the inbox (`bot.inbox`), which hands one
customer's updates over one at a time, in order, whichever process claims them. `handle` and
`begin` (console, invitations) take a per-customer asyncio lock in the process, and every turn
locks the customer's active conversation row (PostgreSQL), so two turns of one customer never
interleave. Database work runs in worker threads so that it never blocks the event loop.

Replies are not sent here: on Telegram and Slack the turn writes them to the outbox in its own
transaction (`bot.turn_outbox`), and the delivery worker (`bot.delivery`) sends them. A message
the platform refuses for good marks the survey undelivered; a customer who writes next gets the
current question again instead of having their message taken as the answer to a question they
never saw.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from bot import flow_logic, survey_machine
from bot.config import Settings
from bot.flags import keyword_flags, score_flags
from bot.flow_catalog import FlowCatalog
from bot.flow_loader import load_flow_source
from bot.flow_model import SCORE_TYPES, AnswerValue, Flow, LocalizedText, Question, QuestionType
from bot.keyed_locks import KeyedLocks
from bot.log_format import bind_log_fields, log_scope
from bot.messages import Choice, ChoiceStyle, IncomingMessage, MessageKind, OutgoingMessage
from bot.parsing import (
    Confirm,
    Invalid,
    InvalidReason,
    Parsed,
    ParseResult,
    decode_payload,
    encode_payload,
    parse_answer,
    parse_payload,
    parse_yes_no,
)
from bot.reminder_policy import ReminderPolicy
from bot.sentiment_branch import ModelSource, branch_sentiment
from bot.storable_text import storable, storable_or_none
from bot.survey_machine import Action
from bot.texts import bot_text
from bot.turn_outbox import UNKNOWN, closed_press, pressed_question, uses_outbox, write_turn
from bot.webhook_events import WebhookEvents
from storage import conversations as conv_q
from storage import customers as cust_q
from storage import flow_versions as flow_q
from storage import reminders as remind_q
from storage.database import Database as DbEngine
from storage.database import Session, transaction
from storage.inbound import record_inbound_event
from storage.outbox import lane_of
from storage.reviews import flag_for_review
from storage.tables import Answer, Conversation, ConversationState, Customer, utcnow
from storage.turn_state import HeldWrites, TurnState, read_turn_state, write_turn_rows

log = logging.getLogger(__name__)

LATE_COMMENT_QUESTION = "_late_comment"
MAX_CONTEXT_KEY = 64
MAX_CONTEXT_VALUE = 256


@dataclass
class _Turn:
    """What one turn knows while it runs (inside its transaction)."""

    session: Session
    customer: Customer
    msg: IncomingMessage
    replies: list[OutgoingMessage] = field(default_factory=list)
    stored_text: bool = False  # a free-text answer awaits its sentiment label
    # Writes held back to go with the turn's outbox rows (outbox channels only).
    held: HeldWrites | None = None

    @property
    def held_progress(self) -> dict[int, dict[str, Any]] | None:
        """Where `storage.conversations.save_progress` holds the survey's progress, if held."""
        return self.held.progress if self.held is not None else None

    def say(self, text: str, **kw: Any) -> None:
        self.replies.append(
            OutgoingMessage(channel=self.msg.channel, user_id=self.msg.user_id, text=text, **kw)
        )

    def mark_answered(self, first: int, question_id: str) -> None:
        """Tag the first reply from index `first` on as following an accepted answer."""
        if first < len(self.replies):
            self.replies[first] = replace(self.replies[first], answered=question_id)


class Engine:
    """Runs survey conversations for every channel; adapters call `handle` and `begin`."""

    def __init__(
        self,
        *,
        db: DbEngine,
        catalog: FlowCatalog,
        settings: Settings,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db = db
        self._catalog = catalog
        self._settings = settings
        self._clock = clock  # when reminders and expiry are due (tests inject theirs)
        self._reminders = ReminderPolicy.from_settings(settings)
        self._locks: KeyedLocks[tuple[str, str]] = KeyedLocks()
        self._flows: dict[tuple[str, int], Flow] = {}
        self._text_listeners: list[Callable[[], None]] = []
        self._sentiment_model: ModelSource | None = None
        # Completions and flags are told to [[webhooks]] endpoints in the turn's transaction.
        self._webhooks = WebhookEvents(settings.webhooks)

    @property
    def settings(self) -> Settings:
        """The settings the engine runs with."""
        return self._settings

    def on_text_answer(self, listener: Callable[[], None]) -> None:
        """Call `listener` (in the event loop) after each turn that stored a free-text answer."""
        self._text_listeners.append(listener)

    async def handle(self, msg: IncomingMessage) -> list[OutgoingMessage]:
        """Process one customer message and return the bot's replies, in order."""
        async with self._locks.hold((msg.channel, msg.user_id)):
            return self.finish_turn(await asyncio.to_thread(self._run_turn, msg))

    async def begin(
        self,
        *,
        channel: str,
        user_id: str,
        flow_id: str | None = None,
        context: Mapping[str, str] | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        locale: str | None = None,
    ) -> list[OutgoingMessage]:
        """Open a survey the customer did not ask for (console start, invitation).

        Honours opt-outs: an opted-out customer only hears that they are unsubscribed. An
        unfinished survey of the same flow is resumed rather than restarted.
        """
        flow_id = flow_id or self._settings.flows.default
        if flow_id not in self._catalog and not await asyncio.to_thread(self._published, flow_id):
            self._catalog.get(flow_id)  # raises UnknownFlowError naming the known flows
        msg = IncomingMessage(
            channel=channel,
            user_id=user_id,
            kind=MessageKind.START,
            flow_id=flow_id,
            context=dict(context or {}),
            first_name=first_name,
            last_name=last_name,
            locale=locale,
        )
        async with self._locks.hold((channel, user_id)):
            return self.finish_turn(await asyncio.to_thread(self._run_turn, msg, True))

    def finish_turn(self, turn: _Turn) -> list[OutgoingMessage]:
        """After a turn committed: wake the sentiment worker if it stored text; its replies."""
        if turn.stored_text:
            self.notify_text_listeners()
        return turn.replies

    def notify_text_listeners(self) -> None:
        """A committed turn stored free text: wake whoever labels it."""
        for listener in self._text_listeners:
            listener()

    # -- one turn, in a worker thread ---------------------------------------------------------

    def _run_turn(self, msg: IncomingMessage, proactive: bool = False) -> _Turn:
        with transaction(self._db) as session:
            return self.turn_in(session, msg, proactive=proactive)

    def turn_in(self, session: Session, msg: IncomingMessage, *, proactive: bool = False) -> _Turn:
        """One turn inside the caller's transaction: the state change and, on channels with an
        outbox, the outbox rows of everything it sends (`bot.turn_outbox`).

        The inbox worker calls this in the transaction that claimed the update, so the update,
        the answer and the replies to send commit together or not at all.
        """
        msg = _storable(msg)  # the one place incoming text is made storable (bot.storable_text)
        outbox = uses_outbox(msg.channel)
        locale = msg.locale or self._settings.survey.default_locale
        # A survey in progress (nearly every turn): customer, survey and the chat's questions
        # in one statement. Otherwise each is read when needed.
        state = self._read_state(session, msg) if outbox and msg.event_id is None else None
        if state is not None:
            pressed = state.pressed
        else:
            pressed = pressed_question(session, msg) if outbox else None
        if outbox and closed_press(session, msg, pressed, locale):
            # A second tap on buttons already closed: a notice, and no turn.
            unsaved = Customer(channel=msg.channel, external_id=msg.user_id)
            return _Turn(session=session, customer=unsaved, msg=msg)
        sorry = msg.bad_link
        if (
            msg.kind == MessageKind.START
            and msg.flow_id is not None
            and msg.flow_id not in self._catalog
            and flow_q.latest_flow_version(session, flow_id=msg.flow_id) is None
        ):
            # A link naming a flow that no longer exists: apologise, run the default flow.
            log.warning("a link names unknown flow %r; starting the default flow", msg.flow_id)
            msg, sorry = replace(msg, flow_id=None), True
        with log_scope(channel=msg.channel):  # log lines of the turn carry its conversation
            turn = self._turn(session, msg, proactive, state)
        if sorry and turn.replies:
            turn.replies.insert(
                0,
                OutgoingMessage(
                    channel=msg.channel,
                    user_id=msg.user_id,
                    text=bot_text("bad_link", self._locale_of(turn)),
                ),
            )
        if outbox:
            live = state.live if state is not None else UNKNOWN
            write_turn(session, msg, turn.replies, pressed=pressed, live=live, held=turn.held)
        return turn

    @staticmethod
    def _read_state(session: Session, msg: IncomingMessage) -> TurnState | None:
        """`storage.turn_state.read_turn_state` for this message's customer and chat."""
        return read_turn_state(
            session,
            channel=msg.channel,
            external_id=msg.user_id,
            lane=lane_of(msg.channel, msg.user_id),
            platform_message_id=_pressed_id(msg),
        )

    def _turn(
        self, session: Session, msg: IncomingMessage, proactive: bool, state: TurnState | None
    ) -> _Turn:
        if state is not None:  # read with the survey: the profile is kept with the turn
            customer = state.customer
            cust_q.refresh_profile(
                customer, first_name=msg.first_name, last_name=msg.last_name, locale=msg.locale
            )
            if customer.unreachable_at is not None and not proactive:
                cust_q.set_unreachable(session, customer=customer, reason=None)
            turn = _Turn(session=session, customer=customer, msg=msg, held=HeldWrites())
            self._dispatch(turn, proactive, state.active)
            return turn
        if msg.event_id is not None and not record_inbound_event(
            session, channel=msg.channel, event_key=msg.event_id
        ):
            # Already handled: a webhook retry or a replay after restart.
            unsaved = Customer(channel=msg.channel, external_id=msg.user_id)
            return _Turn(session=session, customer=unsaved, msg=msg)
        customer = cust_q.upsert_customer(
            session,
            channel=msg.channel,
            external_id=msg.user_id,
            first_name=msg.first_name,
            last_name=msg.last_name,
            locale=msg.locale,
        )
        if customer.unreachable_at is not None and not proactive:
            cust_q.set_unreachable(session, customer=customer, reason=None)
        held = HeldWrites() if uses_outbox(msg.channel) else None
        turn = _Turn(session=session, customer=customer, msg=msg, held=held)
        self._dispatch(turn, proactive, UNREAD)
        return turn

    def _dispatch(
        self, turn: _Turn, proactive: bool, active: Conversation | _Unread | None
    ) -> None:
        """One turn as `bot.survey_machine.TABLE` says: classify it, look up its row, act.

        `active`: the open survey when the turn read it already (`UNREAD`: read it here)."""
        if isinstance(active, _Unread):
            active = conv_q.active_conversation(turn.session, customer_id=self._cid(turn))
        bind_log_fields(conversation_id=active.id if active is not None else None)
        latest = self._latest_ended(turn, active)
        text, truncated = self._clip(turn.msg.text or "")
        state, received = survey_machine.classify(
            turn.msg.kind,
            text,
            proactive=proactive,
            survey_open=active is not None,
            undelivered=active is not None and active.undelivered_at is not None,
            opted_out=turn.customer.opted_out_at is not None,
            last_completed=latest is not None and latest.state == ConversationState.COMPLETED,
            last_expired=latest is not None and latest.state == ConversationState.EXPIRED,
            pending=active is not None and active.pending_score is not None,
        )
        if active is not None and state == survey_machine.State.UNDELIVERED:
            # Whatever happens in this turn, the customer now hears from the bot again.
            conv_q.clear_undelivered(turn.session, conversation=active)
        action = survey_machine.row_for(state, received).action
        log.debug("turn: %s, %s → %s", state, received, action)
        self._actions(turn, active, latest, text, truncated)[action]()

    def _latest_ended(self, turn: _Turn, active: Conversation | None) -> Conversation | None:
        """The latest survey when none is open and the customer did not opt out (FINISHED and
        NO_SURVEY differ by it); None otherwise, without reading it."""
        if active is not None or turn.customer.opted_out_at is not None:
            return None
        return conv_q.latest_conversation(turn.session, customer_id=self._cid(turn))

    def _actions(
        self,
        turn: _Turn,
        active: Conversation | None,
        latest: Conversation | None,
        text: str,
        truncated: bool,
    ) -> dict[Action, Callable[[], None]]:
        """What each action of `bot.survey_machine.TABLE` does in this turn.

        `active` is the open survey, `latest` the customer's latest one when none is open;
        `text` the message text cut to the length limit (`truncated` says whether it was cut).
        """
        msg = turn.msg
        actions: dict[Action, Callable[[], None]] = {
            Action.START: lambda: self._start(turn, active, msg.flow_id, msg.context),
            Action.BEGIN: lambda: self._begin(turn, active),
            Action.OPT_OUT: lambda: self._opt_out(turn, active),
            Action.LATE_COMMENT: lambda: self._late_comment(turn, latest, text, truncated),
            Action.LATE_REPLY: lambda: self._late_reply(turn, latest, text, truncated),
            Action.NO_SURVEY: lambda: self._say(turn, "no_survey"),
            Action.HELP_AND_NO_SURVEY: lambda: self._say(turn, "help", "no_survey"),
            Action.STILL_OPTED_OUT: lambda: self._say(turn, "still_opted_out"),
            Action.HELP_AND_STILL_OPTED_OUT: lambda: self._say(turn, "help", "still_opted_out"),
            Action.UNSUPPORTED: lambda: self._say(turn, "unsupported"),
        }
        if active is not None:  # the actions of an open survey
            survey = active
            actions |= {
                Action.ANSWER: lambda: self._answer(turn, survey, text, truncated, skip=False),
                Action.SKIP: lambda: self._answer(turn, survey, text, truncated, skip=True),
                Action.CONFIRM: lambda: self._confirm(turn, survey, text, truncated),
                # The question never reached them: this message cannot be its answer.
                Action.RESEND: lambda: self._say_and_ask(turn, survey, "undelivered"),
                Action.HELP_AND_ASK: lambda: self._say_and_ask(turn, survey, "help"),
                Action.UNSUPPORTED_AND_ASK: lambda: self._say_and_ask(turn, survey, "unsupported"),
            }
        return actions

    def _begin(self, turn: _Turn, active: Conversation | None) -> None:
        """A survey the customer did not ask for: as `_start`, but never to an opted-out one."""
        if turn.customer.opted_out_at is not None:
            # Not in the table (stop closes the open survey), but an invitation must not opt in.
            self._say(turn, "still_opted_out")
            return
        self._start(turn, active, turn.msg.flow_id, turn.msg.context)

    def _say(self, turn: _Turn, *keys: str) -> None:
        """The bot's own texts `keys`, in the customer's language (no survey is open)."""
        for key in keys:
            turn.say(bot_text(key, self._locale_of(turn)))

    def _say_and_ask(self, turn: _Turn, conversation: Conversation, *keys: str) -> None:
        """The bot's own texts `keys` in the survey's language, then its current question."""
        for key in keys:
            turn.say(bot_text(key, conversation.locale))
        self._ask_current(turn, conversation)

    # -- starting and stopping ----------------------------------------------------------------

    def _start(
        self,
        turn: _Turn,
        active: Conversation | None,
        flow_id: str | None,
        context: Mapping[str, str],
    ) -> None:
        flow, live_version = self._live_flow(turn.session, flow_id or self._settings.flows.default)
        if turn.customer.opted_out_at is not None:
            # Only reached when the customer asked for a survey themselves: that opts them in.
            cust_q.set_opted_out(turn.session, customer=turn.customer, opted_out=False)
        if active is not None:
            if active.flow_id == flow.id and not context:
                if active.pending_score is not None:  # the question is asked anew: forget it
                    conv_q.save_progress(
                        turn.session,
                        hold=turn.held_progress,
                        conversation=active,
                        current_question=active.current_question,
                        invalid_attempts=active.invalid_attempts,
                    )
                turn.say(bot_text("resume", active.locale))
                self._ask_current(turn, active)
                return
            conv_q.end_conversation(
                turn.session, conversation=active, state=ConversationState.ABANDONED
            )
        locale = flow_logic.resolve_locale(
            flow, turn.msg.locale or turn.customer.locale or self._settings.survey.default_locale
        )
        channel = turn.msg.channel
        conversation = conv_q.start_conversation(
            turn.session,
            customer_id=self._cid(turn),
            channel=channel,
            flow_id=flow.id,
            flow_version=live_version,
            locale=locale,
            context=_clean_context(context),
            # Reminders and expiry are for surveys the delivery worker sends.
            expires_at=self._reminders.expires_at(self._clock()) if uses_outbox(channel) else None,
        )
        if flow.intro is not None:
            turn.say(self._render(turn, conversation, flow, flow.intro))
        first = flow_logic.first_question(flow, {})
        self._move_to(turn, conversation, flow, first)

    def _opt_out(self, turn: _Turn, conversation: Conversation | None) -> None:
        cust_q.set_opted_out(turn.session, customer=turn.customer, opted_out=True)
        if conversation is not None:
            conv_q.end_conversation(
                turn.session, conversation=conversation, state=ConversationState.OPTED_OUT
            )
        turn.say(bot_text("opted_out", self._locale_of(turn, conversation)))

    def _late_comment(
        self, turn: _Turn, latest: Conversation | None, text: str, truncated: bool
    ) -> None:
        """Text after the thanks (`latest` is the completed survey); nothing typed: no survey."""
        if latest is None or not text:
            self._say(turn, "no_survey")
            return
        # Something said after the thanks is still feedback: keep it with the finished survey.
        self._keep_late(turn, latest, raw=text, note=text, truncated=truncated)
        self._late_ack(turn, latest, "late_comment", truncated)

    def _late_reply(
        self, turn: _Turn, latest: Conversation | None, text: str, truncated: bool
    ) -> None:
        """A reply to a survey that expired (`latest`): typed text or the label of a pressed
        button is kept as a late comment, never as an answer; "this survey has closed"."""
        msg = turn.msg
        note = _button_note(msg) if msg.kind == MessageKind.BUTTON else text
        if latest is None or not note:
            self._say(turn, "no_survey")
            return
        raw = msg.payload if msg.kind == MessageKind.BUTTON and msg.payload else note
        self._keep_late(turn, latest, raw=raw, note=note, truncated=truncated)
        self._late_ack(turn, latest, "expired", truncated)

    def _keep_late(
        self, turn: _Turn, conversation: Conversation, *, raw: str, note: str, truncated: bool
    ) -> None:
        """Store a late comment on an ended survey (keyword flags apply), up to
        `[survey] max_late_comments` per survey: past that, thanked but not stored."""
        assert conversation.id is not None
        kept = conv_q.late_comment_count(turn.session, conversation_id=conversation.id)
        if kept >= self._settings.survey.max_late_comments:
            log.info("late comment not kept: survey %s has %d already", conversation.id, kept)
            return
        answer = conv_q.add_answer(
            turn.session,
            conversation=conversation,
            question_id=LATE_COMMENT_QUESTION,
            question_type=QuestionType.TEXT,
            raw_text=raw,
            value_text=note,
            truncated=truncated,
            late=True,
        )
        turn.stored_text = True
        reasons = keyword_flags(
            LATE_COMMENT_QUESTION, note, self._settings.flags.keywords, answer_id=answer.id
        )
        if reasons:
            item = flag_for_review(turn.session, conversation=conversation, reasons=reasons)
            self._webhooks.flagged(turn.session, review=item, reasons=reasons)

    def _late_ack(self, turn: _Turn, conversation: Conversation, key: str, truncated: bool) -> None:
        reply = bot_text(key, conversation.locale)
        if truncated:
            reply += " " + bot_text("truncated", conversation.locale, limit=self._limit)
        turn.say(reply)

    # -- answering ----------------------------------------------------------------------------

    def _answer(
        self, turn: _Turn, conversation: Conversation, text: str, truncated: bool, *, skip: bool
    ) -> None:
        flow = self._flow_of(turn.session, conversation)
        if (
            conversation.current_question is None
        ):  # defensive: an active conversation always has one
            self._finish(turn, conversation, flow)
            return
        question = flow.question(conversation.current_question)
        if skip or (turn.msg.kind == MessageKind.TEXT and not text.strip() and question.optional):
            if not question.optional:
                turn.say(bot_text("hint_required", conversation.locale))
                self._ask_current(turn, conversation, flow)
                return
            mark = len(turn.replies)
            self._store(turn, conversation, flow, question, raw=text, parsed=None, truncated=False)
            turn.mark_answered(mark, question.id)
            return

        result: ParseResult
        if turn.msg.kind == MessageKind.BUTTON:
            result = parse_payload(question, turn.msg.payload or "")
        else:
            result = parse_answer(question, text)
        if isinstance(result, Invalid):
            self._reask(turn, conversation, flow, question, result.reason)
            return
        if isinstance(result, Confirm):
            self._ask_confirmation(turn, conversation, question, result.value)
            return
        raw = turn.msg.payload if turn.msg.kind == MessageKind.BUTTON else text
        mark = len(turn.replies)
        self._store(
            turn, conversation, flow, question, raw=raw or "", parsed=result, truncated=truncated
        )
        turn.mark_answered(mark, question.id)

    def _confirm(self, turn: _Turn, conversation: Conversation, text: str, truncated: bool) -> None:
        """A reply to "Did you mean N out of M?": yes stores N, no asks the question again,
        anything else is a new answer to the question (which forgets N)."""
        pending = conversation.pending_score
        assert pending is not None and conversation.current_question is not None
        flow = self._flow_of(turn.session, conversation)
        question = flow.question(conversation.current_question)
        said: bool | None = None  # None: not a reply to the confirmation
        if turn.msg.kind == MessageKind.BUTTON:
            decoded = decode_payload(turn.msg.payload or "")
            if decoded is not None and decoded[0] == question.id:
                said = {"yes": True, "no": False}.get(decoded[1])
        else:
            said = parse_yes_no(text)
        if said is None:
            self._answer(turn, conversation, text, truncated, skip=False)
        elif said:
            mark = len(turn.replies)
            raw = str(pending) if turn.msg.kind == MessageKind.BUTTON else text
            self._store(
                turn, conversation, flow, question, raw=raw, parsed=Parsed(pending), truncated=False
            )
            turn.mark_answered(mark, question.id)
        else:
            self._save_asked(turn, conversation, question.id)
            turn.say(bot_text("confirm_declined", conversation.locale))
            turn.replies.append(self._question_message(turn, conversation, flow, question))

    def _ask_confirmation(
        self, turn: _Turn, conversation: Conversation, question: Question, value: int
    ) -> None:
        """A score read from a sentence: ask "Did you mean N out of M?" and keep N pending."""
        self._save_asked(
            turn,
            conversation,
            question.id,
            invalid_attempts=conversation.invalid_attempts,
            pending_score=value,
        )
        locale = conversation.locale
        _, high = question.bounds
        turn.replies.append(
            OutgoingMessage(
                channel=turn.msg.channel,
                user_id=turn.msg.user_id,
                text=bot_text("confirm_score", locale, value=value, max=high),
                # Yes and No name the question, so a press on an older keyboard is stale.
                choices=(
                    Choice(
                        label=bot_text("yes", locale), payload=encode_payload(question.id, "yes")
                    ),
                    Choice(label=bot_text("no", locale), payload=encode_payload(question.id, "no")),
                ),
                choice_style=ChoiceStyle.OPTIONS,
                question_id=question.id,
                question_type=QuestionType.YES_NO,
            )
        )

    def _store(
        self,
        turn: _Turn,
        conversation: Conversation,
        flow: Flow,
        question: Question,
        *,
        raw: str,
        parsed: Parsed | None,
        truncated: bool,
    ) -> None:
        value_int, value_text = _columns(question, parsed)
        scale = question.bounds if question.type in SCORE_TYPES else None
        turn.stored_text = turn.stored_text or bool(
            question.type == QuestionType.TEXT and value_text
        )
        row = conv_q.answer_row(
            conversation,
            question_id=question.id,
            question_type=question.type,
            raw_text=raw,
            value_int=value_int,
            value_text=value_text,
            scale=scale,
            skipped=parsed is None,
            truncated=truncated,
            late=False,
        )
        if turn.held is not None and not self._flags(question, value_int, value_text, None):
            # No flag points at it: the answer is written with the turn's outbox rows.
            turn.held.answers.append(row)
        else:
            self._write_held(turn)  # a flag's webhook event reads the survey's answers
            answer = conv_q.write_answer(turn.session, row)
            reasons = self._flags(question, value_int, value_text, answer.id)
            if reasons:
                item = flag_for_review(turn.session, conversation=conversation, reasons=reasons)
                self._webhooks.flagged(turn.session, review=item, reasons=reasons)
        if truncated:
            turn.say(bot_text("truncated", conversation.locale, limit=self._limit))
        given = _answer_value(question.type, parsed is None, value_int, value_text)
        answers = self._answer_values(turn, conversation, given={question.id: given})
        self._move_to(
            turn, conversation, flow, flow_logic.next_question(flow, question.id, answers)
        )

    def _flags(
        self,
        question: Question,
        value_int: int | None,
        value_text: str | None,
        answer_id: int | None,
    ) -> list[dict[str, Any]]:
        """The review reasons an answer raises (score rules, keywords), pointing at `answer_id`."""
        if value_int is not None and question.type in SCORE_TYPES:
            return score_flags(question, value_int, self._settings.flags, answer_id=answer_id)
        if question.type == QuestionType.TEXT and value_text:
            return keyword_flags(
                question.id, value_text, self._settings.flags.keywords, answer_id=answer_id
            )
        return []

    @staticmethod
    def _write_held(turn: _Turn) -> None:
        """Write what the turn held back now: something is about to read it."""
        if turn.held:
            write_turn_rows(turn.session, [], turn.held)

    def _reask(
        self,
        turn: _Turn,
        conversation: Conversation,
        flow: Flow,
        question: Question,
        reason: InvalidReason,
    ) -> None:
        # A button of an earlier question (old keyboard, or forged data) is not a miss at this
        # question: it gets the current question again without counting as an attempt.
        stale = reason == InvalidReason.STALE_BUTTON
        attempts = conversation.invalid_attempts + (0 if stale else 1)
        self._save_asked(turn, conversation, question.id, invalid_attempts=attempts)
        lo, hi = question.bounds if question.type in SCORE_TYPES else (0, 0)
        hint = bot_text(f"hint_{reason.value}", conversation.locale, min=lo, max=hi)
        if question.optional and reason != InvalidReason.STALE_BUTTON:
            hint += " " + bot_text("hint_skip", conversation.locale)
        if (
            reason == InvalidReason.STALE_BUTTON
            or attempts >= self._settings.survey.max_invalid_attempts
        ):
            # After repeated misses, show the whole question again with its choices.
            turn.say(hint)
            self._ask_current(turn, conversation, flow)
        else:
            turn.say(hint)

    def _move_to(
        self, turn: _Turn, conversation: Conversation, flow: Flow, question: Question | None
    ) -> None:
        if question is None:
            self._finish(turn, conversation, flow)
            return
        self._save_asked(turn, conversation, question.id)
        turn.replies.append(self._question_message(turn, conversation, flow, question))

    def _save_asked(
        self,
        turn: _Turn,
        conversation: Conversation,
        question_id: str,
        *,
        invalid_attempts: int = 0,
        pending_score: int | None = None,
    ) -> None:
        """Save that `question_id` is asked now (anew, again after a hint, or to confirm a
        score): the silence before its reminder starts now."""
        conv_q.save_progress(
            turn.session,
            hold=turn.held_progress,
            conversation=conversation,
            current_question=question_id,
            invalid_attempts=invalid_attempts,
            pending_score=pending_score,
            remind_at=self._remind_at(conversation),
        )

    def _finish(self, turn: _Turn, conversation: Conversation, flow: Flow) -> None:
        self._write_held(turn)  # the completion's webhook event reads the stored answers
        conv_q.end_conversation(
            turn.session, conversation=conversation, state=ConversationState.COMPLETED
        )
        self._webhooks.completed(turn.session, conversation=conversation)
        if flow.thanks is not None:
            turn.say(self._render(turn, conversation, flow, flow.thanks))
        else:
            turn.say(bot_text("thanks", conversation.locale))

    # -- rendering ----------------------------------------------------------------------------

    def _ask_current(
        self, turn: _Turn, conversation: Conversation, flow: Flow | None = None
    ) -> None:
        if conversation.current_question is None:
            return
        flow = flow or self._flow_of(turn.session, conversation)
        question = flow.question(conversation.current_question)
        turn.replies.append(self._question_message(turn, conversation, flow, question))
        self._plan_reminder(turn, conversation)

    def _question_message(
        self, turn: _Turn, conversation: Conversation, flow: Flow, question: Question
    ) -> OutgoingMessage:
        text = self._render(turn, conversation, flow, question.text)
        locale = conversation.locale
        choices: tuple[Choice, ...] = ()
        style = ChoiceStyle.SCALE
        if question.type in SCORE_TYPES:
            lo, hi = question.bounds
            choices = tuple(
                Choice(label=str(v), payload=encode_payload(question.id, v))
                for v in range(lo, hi + 1)
            )
            if question.labels is not None:
                ends = []
                if question.labels.min is not None:
                    ends.append(f"{lo} = {flow_logic.localize(flow, question.labels.min, locale)}")
                if question.labels.max is not None:
                    ends.append(f"{hi} = {flow_logic.localize(flow, question.labels.max, locale)}")
                text += "\n(" + ", ".join(ends) + ")"
        elif question.type == QuestionType.YES_NO:
            choices = (
                Choice(label=bot_text("yes", locale), payload=encode_payload(question.id, True)),
                Choice(label=bot_text("no", locale), payload=encode_payload(question.id, False)),
            )
        elif question.type == QuestionType.CHOICE:
            style = ChoiceStyle.OPTIONS
            choices = tuple(
                Choice(
                    label=flow_logic.localize(flow, option.label, locale),
                    payload=encode_payload(question.id, option.id),
                )
                for option in question.choices
            )
        return OutgoingMessage(
            channel=turn.msg.channel,
            user_id=turn.msg.user_id,
            text=text,
            choices=choices,
            choice_style=style,
            question_id=question.id,
            question_type=question.type,
        )

    def _render(
        self, turn: _Turn, conversation: Conversation, flow: Flow, text: LocalizedText
    ) -> str:
        c = turn.customer
        full = " ".join(part for part in (c.first_name, c.last_name) if part) or None
        return flow_logic.render_text(
            flow,
            text,
            locale=conversation.locale,
            customer={"first_name": c.first_name, "last_name": c.last_name, "name": full},
            context={k: str(v) for k, v in conversation.context.items()},
        )

    # -- reminders ----------------------------------------------------------------------------

    def _plan_reminder(self, turn: _Turn, conversation: Conversation) -> None:
        """The bot asks a question now without saving the survey's progress: the reminder
        is written with the turn's commit (`save_progress` takes `_remind_at` itself)."""
        if uses_outbox(conversation.channel):
            remind_at = self._remind_at(conversation)
            remind_q.set_reminder(turn.session, conversation=conversation, remind_at=remind_at)

    def _remind_at(self, conversation: Conversation) -> datetime | None:
        """When the next reminder is due if the bot asks a question now: after a silence
        (`bot.reminder_policy`). Console surveys are never reminded (nothing sends for them):
        their value stays."""
        if not uses_outbox(conversation.channel):
            return conversation.remind_at
        return self._reminders.after_question(
            self._clock(), sent=conversation.reminders_sent, expires_at=conversation.expires_at
        )

    def reminder_message(
        self, session: Session, *, conversation: Conversation, customer: Customer
    ) -> OutgoingMessage | None:
        """The survey's open question again, same text and buttons, led by "Reminder:" (what
        `bot.reminders` queues); None when the survey has no open question."""
        if conversation.current_question is None:
            return None
        msg = IncomingMessage(channel=conversation.channel, user_id=customer.external_id)
        turn = _Turn(session=session, customer=customer, msg=msg)
        flow = self._flow_of(session, conversation)
        question = flow.question(conversation.current_question)
        asked = self._question_message(turn, conversation, flow, question)
        return replace(asked, text=bot_text("reminder", conversation.locale, question=asked.text))

    # -- helpers ------------------------------------------------------------------------------

    @property
    def _limit(self) -> int:
        return self._settings.survey.max_text_length

    def _clip(self, text: str) -> tuple[str, bool]:
        """The text cut to the configured limit, and whether it was cut."""
        if len(text) <= self._limit:
            return text, False
        return text[: self._limit], True

    @staticmethod
    def _cid(turn: _Turn) -> int:
        return _id(turn.customer)

    def _locale_of(self, turn: _Turn, conversation: Conversation | None = None) -> str:
        if conversation is not None:
            return conversation.locale
        return turn.msg.locale or turn.customer.locale or self._settings.survey.default_locale

    def _published(self, flow_id: str) -> bool:
        """Whether a flow that no file defines was published (`cxbot flows publish`)."""
        with transaction(self._db) as session:
            return flow_q.latest_flow_version(session, flow_id=flow_id) is not None

    def _live_flow(self, session: Session, flow_id: str) -> tuple[Flow, int]:
        """The live (newest) version of a flow and its number: a flow file's changed content is
        published first; a version published from the command line or the desk stays live
        until the file changes (storage.flow_versions.live_file_flow_version)."""
        file_flow = self._catalog.find(flow_id)
        if file_flow is not None:
            stored = flow_q.live_file_flow_version(
                session, flow_id=flow_id, checksum=file_flow.checksum, source=file_flow.source
            )
        else:
            found = flow_q.latest_flow_version(session, flow_id=flow_id)
            if found is None:
                self._catalog.get(flow_id)  # raises UnknownFlowError naming the known flows
                raise AssertionError("unreachable")
            stored = found
        key = (flow_id, stored.version)
        flow = self._flows.get(key)
        if flow is None:
            if file_flow is not None and file_flow.checksum == stored.checksum:
                flow = file_flow
            else:
                flow = load_flow_source(stored.source, f"<stored {flow_id} v{stored.version}>")
            self._flows[key] = flow
        return flow, stored.version

    def _flow_of(self, session: Session, conversation: Conversation) -> Flow:
        """The flow exactly as it was when this conversation started (its stored version)."""
        key = (conversation.flow_id, conversation.flow_version)
        flow = self._flows.get(key)
        if flow is None:
            stored = flow_q.get_flow_version(
                session, flow_id=conversation.flow_id, version=conversation.flow_version
            )
            if stored is None:
                raise LookupError(f"flow version {key} is missing from the database")
            flow = load_flow_source(stored.source, f"<stored {key[0]} v{key[1]}>")
            self._flows[key] = flow
        return flow

    def use_sentiment_model(self, source: ModelSource) -> None:
        """Where sentiment conditions in flows get the loaded model (the sentiment worker's)."""
        self._sentiment_model = source

    def _answer_values(
        self, turn: _Turn, conversation: Conversation, *, given: dict[str, AnswerValue]
    ) -> Mapping[str, AnswerValue]:
        """The survey's answers as conditions see them; `given`: the answer this turn just
        gave (by question id), which a condition on it reads without a query."""
        assert conversation.id is not None
        conversation_id = conversation.id
        session = turn.session
        wait = self._settings.sentiment.branch_wait_seconds

        def read() -> list[Answer]:
            self._write_held(turn)  # the answer just given is among them
            return conv_q.conversation_answers(session, conversation_id=conversation_id)

        def sentiment(rows: list[Answer], question_id: str) -> str | None:
            return branch_sentiment(
                session, rows, question_id, model=self._sentiment_model, wait=wait
            )

        return _LazyAnswers(read, sentiment, given)


class _LazyAnswers(Mapping[str, AnswerValue]):
    """A conversation's answers, read from the database the first time a condition asks for
    one this turn did not give.

    Most steps of a flow have no condition, and most conditions ask about the answer just given
    (an NPS score choosing its follow-up): they never pay for the read — nor for writing the
    held answer first so that the read finds it. A key `<question>#sentiment`
    (flow_logic.sentiment_key) gives that text answer's sentiment label, decided only when a
    condition asks (bot.sentiment_branch)."""

    def __init__(
        self,
        read: Callable[[], list[Answer]],
        sentiment: Callable[[list[Answer], str], str | None],
        given: Mapping[str, AnswerValue] | None = None,
    ) -> None:
        self._read = read
        self._sentiment = sentiment
        self._given = dict(given or {})  # the latest answers of their questions: they win
        self._rows: list[Answer] | None = None
        self._values: dict[str, AnswerValue] | None = None

    def _loaded(self) -> dict[str, AnswerValue]:
        if self._values is None:
            self._rows = self._read()
            self._values = dict(_answer_items(self._rows))
        return self._values

    def __getitem__(self, key: str) -> AnswerValue:
        if self._values is None and key in self._given:
            return self._given[key]
        values = self._loaded()
        if key not in values and key.endswith(flow_logic.SENTIMENT_SUFFIX):
            question_id = key[: -len(flow_logic.SENTIMENT_SUFFIX)]
            values[key] = self._sentiment(self._rows or [], question_id)
        return values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())


class _Unread:
    """The active conversation is not read yet."""


UNREAD = _Unread()


def _pressed_id(msg: IncomingMessage) -> str | None:
    """The platform's id of the message whose button was pressed, if this is such a press."""
    press = msg.press
    if msg.kind != MessageKind.BUTTON or press is None:
        return None
    return press.message_id


def _id(customer: Customer) -> int:
    assert customer.id is not None  # stored: upserted or read in this transaction
    return customer.id


def _answer_items(rows: list[Answer]) -> Iterator[tuple[str, AnswerValue]]:
    """(question id, value) as branching conditions see them; the latest answer wins."""
    for row in rows:
        yield (
            row.question_id,
            _answer_value(row.question_type, row.skipped, row.value_int, row.value_text),
        )


def _answer_value(
    question_type: str, skipped: bool, value_int: int | None, value_text: str | None
) -> AnswerValue:
    """An answer's value as branching conditions see it."""
    if skipped:
        return None
    if question_type == QuestionType.YES_NO:
        return bool(value_int)
    if value_int is not None:
        return value_int
    return value_text


def _storable(msg: IncomingMessage) -> IncomingMessage:
    """The message with every free-text field a customer controls made storable."""
    press = msg.press
    if press is not None:
        press = replace(
            press,
            message_text=storable_or_none(press.message_text),
            label=storable_or_none(press.label),
        )
    return replace(
        msg,
        text=storable_or_none(msg.text),
        payload=storable_or_none(msg.payload),
        first_name=storable_or_none(msg.first_name),
        last_name=storable_or_none(msg.last_name),
        locale=storable_or_none(msg.locale),
        context={storable(str(k)): storable(str(v)) for k, v in msg.context.items()},
        press=press,
    )


def _button_note(msg: IncomingMessage) -> str:
    """What a pressed button said: its label as the platform showed it, else its value."""
    if msg.press is not None and msg.press.label:
        return msg.press.label
    decoded = decode_payload(msg.payload or "")
    return decoded[1] if decoded is not None else ""


def _columns(question: Question, parsed: Parsed | None) -> tuple[int | None, str | None]:
    """How a parsed value is stored: scores and yes/no as integers, choices and text as text."""
    if parsed is None:
        return None, None
    value = parsed.value
    if question.type == QuestionType.YES_NO:
        return int(bool(value)), "yes" if value else "no"
    if isinstance(value, bool):
        return int(value), None
    if isinstance(value, int):
        return value, None
    return None, str(value)


def _clean_context(context: Mapping[str, str]) -> dict[str, str]:
    """Context as stored: string keys and values of bounded size."""
    return {
        str(k)[:MAX_CONTEXT_KEY]: str(v)[:MAX_CONTEXT_VALUE] for k, v in context.items() if str(k)
    }
