"""The survey table, row by row: a real engine is brought into each state, sent each input, and
what it said and stored is checked against `EXPECTED`, which reads like the table itself."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest
from sqlmodel import col, select

from adapters.console import MemoryChannel
from bot import survey_machine
from bot.app import App
from bot.messages import MessageKind, OutgoingMessage
from bot.survey_machine import TABLE, Action, Input, Row, State
from bot.texts import bot_text
from storage import conversations as conv_q
from storage import customers as cust_q
from storage import reminders as remind_q
from storage.database import transaction
from storage.tables import Answer, Conversation, ConversationState

USER = "ann"
INTRO = "Hi there! We'd love your feedback on your recent request. It takes about a minute."
ASK_NPS = "? nps"  # the bot asked this question (see `said`)
ASK_LIKED_MOST = "? liked_most"
NPS_9 = ("nps", 9, None, False)


def text(key: str) -> str:
    """One of the bot's own texts, in English."""
    return bot_text(key, "en")


@dataclass(frozen=True)
class Outcome:
    """What one row does: the action, what the bot said, the customer's conversations after
    the turn (states, oldest first), the answers the turn stored and whether they opted out."""

    action: Action
    said: list[str]
    conversations: list[str]
    stored: tuple[tuple[str, int | None, str | None, bool], ...] = ()
    opted_out: bool = False


EXPECTED: dict[tuple[State, Input], Outcome] = {
    # A customer never surveyed.
    (State.NO_SURVEY, Input.START): Outcome(Action.START, [INTRO, ASK_NPS], ["active"]),
    (State.NO_SURVEY, Input.BEGIN): Outcome(Action.BEGIN, [INTRO, ASK_NPS], ["active"]),
    (State.NO_SURVEY, Input.STOP): Outcome(Action.OPT_OUT, [text("opted_out")], [], opted_out=True),
    (State.NO_SURVEY, Input.HELP): Outcome(
        Action.HELP_AND_NO_SURVEY, [text("help"), text("no_survey")], []
    ),
    (State.NO_SURVEY, Input.SKIP): Outcome(Action.NO_SURVEY, [text("no_survey")], []),
    (State.NO_SURVEY, Input.ANSWER): Outcome(Action.NO_SURVEY, [text("no_survey")], []),
    (State.NO_SURVEY, Input.BUTTON): Outcome(Action.NO_SURVEY, [text("no_survey")], []),
    (State.NO_SURVEY, Input.UNSUPPORTED): Outcome(Action.UNSUPPORTED, [text("unsupported")], []),
    # The survey was answered to the end (thanks said).
    (State.FINISHED, Input.START): Outcome(Action.START, [INTRO, ASK_NPS], ["completed", "active"]),
    (State.FINISHED, Input.BEGIN): Outcome(Action.BEGIN, [INTRO, ASK_NPS], ["completed", "active"]),
    (State.FINISHED, Input.STOP): Outcome(
        Action.OPT_OUT, [text("opted_out")], ["completed"], opted_out=True
    ),
    (State.FINISHED, Input.HELP): Outcome(
        Action.HELP_AND_NO_SURVEY, [text("help"), text("no_survey")], ["completed"]
    ),
    (State.FINISHED, Input.SKIP): Outcome(Action.NO_SURVEY, [text("no_survey")], ["completed"]),
    (State.FINISHED, Input.ANSWER): Outcome(
        Action.LATE_COMMENT,
        [text("late_comment")],
        ["completed"],
        (("_late_comment", None, "9", False),),
    ),
    (State.FINISHED, Input.BUTTON): Outcome(
        Action.LATE_COMMENT, [text("no_survey")], ["completed"]
    ),
    (State.FINISHED, Input.UNSUPPORTED): Outcome(
        Action.UNSUPPORTED, [text("unsupported")], ["completed"]
    ),
    # The survey closed half-way (NPS answered): replies are late comments, not answers.
    (State.EXPIRED, Input.START): Outcome(Action.START, [INTRO, ASK_NPS], ["expired", "active"]),
    (State.EXPIRED, Input.BEGIN): Outcome(Action.BEGIN, [INTRO, ASK_NPS], ["expired", "active"]),
    (State.EXPIRED, Input.STOP): Outcome(
        Action.OPT_OUT, [text("opted_out")], ["expired"], opted_out=True
    ),
    (State.EXPIRED, Input.HELP): Outcome(
        Action.HELP_AND_NO_SURVEY, [text("help"), text("no_survey")], ["expired"]
    ),
    (State.EXPIRED, Input.SKIP): Outcome(Action.NO_SURVEY, [text("no_survey")], ["expired"]),
    (State.EXPIRED, Input.ANSWER): Outcome(
        Action.LATE_REPLY, [text("expired")], ["expired"], (("_late_comment", None, "9", False),)
    ),
    (State.EXPIRED, Input.BUTTON): Outcome(
        Action.LATE_REPLY, [text("expired")], ["expired"], (("_late_comment", None, "9", False),)
    ),
    (State.EXPIRED, Input.UNSUPPORTED): Outcome(
        Action.UNSUPPORTED, [text("unsupported")], ["expired"]
    ),
    # The customer said stop during a survey.
    (State.OPTED_OUT, Input.START): Outcome(
        Action.START, [INTRO, ASK_NPS], ["opted_out", "active"]
    ),
    (State.OPTED_OUT, Input.BEGIN): Outcome(
        Action.STILL_OPTED_OUT, [text("still_opted_out")], ["opted_out"], opted_out=True
    ),
    (State.OPTED_OUT, Input.STOP): Outcome(
        Action.OPT_OUT, [text("opted_out")], ["opted_out"], opted_out=True
    ),
    (State.OPTED_OUT, Input.HELP): Outcome(
        Action.HELP_AND_STILL_OPTED_OUT,
        [text("help"), text("still_opted_out")],
        ["opted_out"],
        opted_out=True,
    ),
    (State.OPTED_OUT, Input.SKIP): Outcome(
        Action.STILL_OPTED_OUT, [text("still_opted_out")], ["opted_out"], opted_out=True
    ),
    (State.OPTED_OUT, Input.ANSWER): Outcome(
        Action.STILL_OPTED_OUT, [text("still_opted_out")], ["opted_out"], opted_out=True
    ),
    (State.OPTED_OUT, Input.BUTTON): Outcome(
        Action.STILL_OPTED_OUT, [text("still_opted_out")], ["opted_out"], opted_out=True
    ),
    (State.OPTED_OUT, Input.UNSUPPORTED): Outcome(
        Action.UNSUPPORTED, [text("unsupported")], ["opted_out"], opted_out=True
    ),
    # The survey is open at its first question (NPS, required).
    (State.ASKING, Input.START): Outcome(Action.START, [text("resume"), ASK_NPS], ["active"]),
    (State.ASKING, Input.BEGIN): Outcome(Action.BEGIN, [text("resume"), ASK_NPS], ["active"]),
    (State.ASKING, Input.STOP): Outcome(
        Action.OPT_OUT, [text("opted_out")], ["opted_out"], opted_out=True
    ),
    (State.ASKING, Input.HELP): Outcome(Action.HELP_AND_ASK, [text("help"), ASK_NPS], ["active"]),
    (State.ASKING, Input.SKIP): Outcome(Action.SKIP, [text("hint_required"), ASK_NPS], ["active"]),
    (State.ASKING, Input.ANSWER): Outcome(Action.ANSWER, [ASK_LIKED_MOST], ["active"], (NPS_9,)),
    (State.ASKING, Input.BUTTON): Outcome(Action.ANSWER, [ASK_LIKED_MOST], ["active"], (NPS_9,)),
    (State.ASKING, Input.UNSUPPORTED): Outcome(
        Action.UNSUPPORTED_AND_ASK, [text("unsupported"), ASK_NPS], ["active"]
    ),
    # At NPS, "the courier was 9 hours late" awaits a yes ("Did you mean 9 out of 10?").
    (State.CONFIRMING, Input.START): Outcome(Action.START, [text("resume"), ASK_NPS], ["active"]),
    (State.CONFIRMING, Input.BEGIN): Outcome(Action.BEGIN, [text("resume"), ASK_NPS], ["active"]),
    (State.CONFIRMING, Input.STOP): Outcome(
        Action.OPT_OUT, [text("opted_out")], ["opted_out"], opted_out=True
    ),
    (State.CONFIRMING, Input.HELP): Outcome(
        Action.HELP_AND_ASK, [text("help"), ASK_NPS], ["active"]
    ),
    (State.CONFIRMING, Input.SKIP): Outcome(
        Action.SKIP, [text("hint_required"), ASK_NPS], ["active"]
    ),
    (State.CONFIRMING, Input.ANSWER): Outcome(  # "9" is a new answer, taken as typed
        Action.CONFIRM, [ASK_LIKED_MOST], ["active"], (NPS_9,)
    ),
    (State.CONFIRMING, Input.BUTTON): Outcome(
        Action.CONFIRM, [ASK_LIKED_MOST], ["active"], (NPS_9,)
    ),
    (State.CONFIRMING, Input.UNSUPPORTED): Outcome(
        Action.UNSUPPORTED_AND_ASK, [text("unsupported"), ASK_NPS], ["active"]
    ),
    # The survey is open at NPS, but that question never reached the customer.
    (State.UNDELIVERED, Input.START): Outcome(Action.START, [text("resume"), ASK_NPS], ["active"]),
    (State.UNDELIVERED, Input.BEGIN): Outcome(Action.BEGIN, [text("resume"), ASK_NPS], ["active"]),
    (State.UNDELIVERED, Input.STOP): Outcome(
        Action.OPT_OUT, [text("opted_out")], ["opted_out"], opted_out=True
    ),
    (State.UNDELIVERED, Input.HELP): Outcome(
        Action.HELP_AND_ASK, [text("help"), ASK_NPS], ["active"]
    ),
    (State.UNDELIVERED, Input.SKIP): Outcome(
        Action.RESEND, [text("undelivered"), ASK_NPS], ["active"]
    ),
    (State.UNDELIVERED, Input.ANSWER): Outcome(
        Action.RESEND, [text("undelivered"), ASK_NPS], ["active"]
    ),
    (State.UNDELIVERED, Input.BUTTON): Outcome(
        Action.ANSWER, [ASK_LIKED_MOST], ["active"], (NPS_9,)
    ),
    (State.UNDELIVERED, Input.UNSUPPORTED): Outcome(
        Action.UNSUPPORTED_AND_ASK, [text("unsupported"), ASK_NPS], ["active"]
    ),
}


# -- bringing a customer into a state ---------------------------------------------------------


async def survey_begun(app: App) -> MemoryChannel:
    """Ann's channel, with the default survey begun (she is at NPS)."""
    channel = MemoryChannel(app.engine.handle, user_id=USER)
    channel.receive(await app.engine.begin(channel="console", user_id=USER))
    return channel


async def into_no_survey(app: App) -> MemoryChannel:
    return MemoryChannel(app.engine.handle, user_id=USER)


async def into_finished(app: App) -> MemoryChannel:
    channel = await survey_begun(app)
    for typed in ("9", "", "6", "5", ""):  # NPS, liked most (skipped), CES, CSAT, anything else
        await channel.push(typed)
    return channel


async def into_expired(app: App) -> MemoryChannel:
    """Half-way (NPS answered), then closed by the reminder worker's expiry."""
    channel = await survey_begun(app)
    await channel.push("9")
    with transaction(app.db) as session:
        customer = cust_q.get_customer(session, channel="console", external_id=USER)
        assert customer is not None and customer.id is not None
        survey = conv_q.active_conversation(session, customer_id=customer.id)
        assert survey is not None
        remind_q.expire_conversation(session, conversation=survey, now=survey.started_at)
    return channel


async def into_opted_out(app: App) -> MemoryChannel:
    channel = await survey_begun(app)
    await channel.push("stop")
    return channel


async def into_confirming(app: App) -> MemoryChannel:
    channel = await survey_begun(app)
    await channel.push("the courier was 9 hours late")
    return channel


async def into_undelivered(app: App) -> MemoryChannel:
    channel = await survey_begun(app)
    with transaction(app.db) as session:
        customer = cust_q.get_customer(session, channel="console", external_id=USER)
        assert customer is not None and customer.id is not None
        survey = conv_q.active_conversation(session, customer_id=customer.id)
        assert survey is not None
        conv_q.mark_undelivered(session, conversation=survey, redeliver_at=None)
    return channel


SETUPS: dict[State, Callable[[App], Awaitable[MemoryChannel]]] = {
    State.NO_SURVEY: into_no_survey,
    State.FINISHED: into_finished,
    State.EXPIRED: into_expired,
    State.OPTED_OUT: into_opted_out,
    State.ASKING: survey_begun,
    State.CONFIRMING: into_confirming,
    State.UNDELIVERED: into_undelivered,
}


async def send(app: App, channel: MemoryChannel, received: Input) -> list[OutgoingMessage]:
    """One message of each input kind (ANSWER is "9", BUTTON the NPS button 9)."""
    match received:
        case Input.START:
            return await channel.push("", kind=MessageKind.START)
        case Input.BEGIN:
            return await app.engine.begin(channel="console", user_id=USER)
        case Input.BUTTON:
            return await channel.press("a:nps:9")
        case Input.UNSUPPORTED:
            return await channel.push("", kind=MessageKind.UNSUPPORTED)
        case Input.ANSWER:
            return await channel.push("9")
        case Input.STOP | Input.HELP | Input.SKIP:
            return await channel.push(received.value)


# -- reading what was stored -------------------------------------------------------------------


def said(replies: list[OutgoingMessage]) -> list[str]:
    """The bot's replies: a question as "? <id>", anything else as its text."""
    return [f"? {m.question_id}" if m.question_id else m.text for m in replies]


def state_now(app: App) -> State:
    """Ann's state as the engine would classify it at the start of her next turn."""
    with transaction(app.db) as session:
        customer = cust_q.get_customer(session, channel="console", external_id=USER)
        if customer is None or customer.id is None:
            return State.NO_SURVEY
        active = conv_q.active_conversation(session, customer_id=customer.id)
        latest = conv_q.latest_conversation(session, customer_id=customer.id)
        return survey_machine.classify_state(
            survey_open=active is not None,
            undelivered=active is not None and active.undelivered_at is not None,
            opted_out=customer.opted_out_at is not None,
            last_completed=latest is not None and latest.state == ConversationState.COMPLETED,
            last_expired=latest is not None and latest.state == ConversationState.EXPIRED,
            pending=active is not None and active.pending_score is not None,
        )


def conversations(app: App) -> list[str]:
    with transaction(app.db) as session:
        rows = session.exec(select(Conversation).order_by(col(Conversation.id)))
        return [str(c.state) for c in rows]


def stored(app: App) -> list[tuple[str, int | None, str | None, bool]]:
    with transaction(app.db) as session:
        rows = session.exec(select(Answer).order_by(col(Answer.id)))
        return [(a.question_id, a.value_int, a.value_text, a.skipped) for a in rows]


def opted_out(app: App) -> bool:
    with transaction(app.db) as session:
        customer = cust_q.get_customer(session, channel="console", external_id=USER)
        return customer is not None and customer.opted_out_at is not None


# -- the table, row by row ---------------------------------------------------------------------


@pytest.mark.parametrize("row", TABLE, ids=lambda row: f"{row.state.name}-{row.input.name}")
async def test_each_row_does_what_the_table_says(app: App, row: Row) -> None:
    expected = EXPECTED[row.state, row.input]
    assert row.action == expected.action

    channel = await SETUPS[row.state](app)
    assert state_now(app) == row.state
    before = stored(app)

    replies = await send(app, channel, row.input)

    assert said(replies) == expected.said
    assert stored(app) == before + list(expected.stored)
    assert conversations(app) == expected.conversations
    assert opted_out(app) == expected.opted_out
    assert state_now(app) in row.then  # UNDELIVERED included: the mark is cleared


def test_the_table_has_one_row_per_state_and_input() -> None:
    pairs = [(row.state, row.input) for row in TABLE]
    assert len(pairs) == len(set(pairs)) == len(State) * len(Input)
    assert set(pairs) == set(EXPECTED)
    assert {row.action for row in TABLE} == set(Action)  # no action the table never uses


def test_a_table_with_a_hole_or_a_repeated_row_is_refused() -> None:
    with pytest.raises(ValueError, match="missing rows"):
        survey_machine.check_complete(TABLE[1:])
    with pytest.raises(ValueError, match="repeated rows"):
        survey_machine.check_complete((*TABLE, TABLE[0]))


def test_the_module_docstring_shows_the_table_as_it_is() -> None:
    assert survey_machine.__doc__ is not None
    assert survey_machine.render_table() in survey_machine.__doc__


@pytest.mark.parametrize(
    ("kind", "typed", "proactive", "received"),
    [
        (MessageKind.START, "", False, Input.START),
        (MessageKind.START, "", True, Input.BEGIN),
        (MessageKind.TEXT, "/start", False, Input.START),
        (MessageKind.TEXT, "empezar", False, Input.START),
        (MessageKind.TEXT, "Stop!", False, Input.STOP),
        (MessageKind.TEXT, "?", False, Input.HELP),
        (MessageKind.TEXT, "saltar", False, Input.SKIP),
        (MessageKind.TEXT, "please don't stop improving", False, Input.ANSWER),
        (MessageKind.TEXT, "", False, Input.ANSWER),
        (MessageKind.BUTTON, "", False, Input.BUTTON),
        (MessageKind.UNSUPPORTED, "", False, Input.UNSUPPORTED),
    ],
)
def test_inputs(kind: MessageKind, typed: str, proactive: bool, received: Input) -> None:
    assert survey_machine.classify_input(kind, typed, proactive=proactive) == received


@pytest.mark.parametrize(
    ("survey_open", "undelivered", "opted_out", "last_completed", "last_expired", "state"),
    [
        (True, True, False, False, False, State.UNDELIVERED),
        (True, False, False, False, False, State.ASKING),
        (True, False, True, False, False, State.ASKING),  # an open survey comes first
        (False, False, True, True, False, State.OPTED_OUT),  # the opt-out before a late comment
        (False, False, True, False, True, State.OPTED_OUT),  # ... and before a late reply
        (False, False, False, False, True, State.EXPIRED),
        (False, False, False, True, False, State.FINISHED),
        (False, False, False, False, False, State.NO_SURVEY),
    ],
)
def test_states(
    survey_open: bool,
    undelivered: bool,
    opted_out: bool,
    last_completed: bool,
    last_expired: bool,
    state: State,
) -> None:
    found = survey_machine.classify_state(
        survey_open=survey_open,
        undelivered=undelivered,
        opted_out=opted_out,
        last_completed=last_completed,
        last_expired=last_expired,
    )
    assert found == state


def test_a_pending_score_is_confirming_unless_the_question_never_arrived() -> None:
    def state(*, undelivered: bool) -> State:
        return survey_machine.classify_state(
            survey_open=True,
            undelivered=undelivered,
            opted_out=False,
            last_completed=False,
            pending=True,
        )

    assert state(undelivered=False) == State.CONFIRMING
    assert state(undelivered=True) == State.UNDELIVERED
