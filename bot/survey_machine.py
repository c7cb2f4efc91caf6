"""The survey conversation as one table: (state, input) → the action the engine performs.

Every turn of `bot.engine.Engine` is classified (`classify`) into the customer's *state* at the
start of the turn and the *input* the turn brings; `TABLE` names the action for that pair and,
for the reader, the states it can lead to. The engine performs the action and nothing else, so
this table is the whole conversation logic; what an action does in detail (parsing, branching,
flags) lives in the engine and the modules it calls. The model is python-telegram-bot's
`ConversationHandler`: START and BEGIN are its entry points, ASKING and UNDELIVERED the states
while a survey is open, and NO_SURVEY, FINISHED, EXPIRED and OPTED_OUT are where a survey has
ENDed (`ConversationHandler.END`): from there only START or BEGIN opens one again.

States (what the engine reads at the start of a turn; the first that applies):

- UNDELIVERED: a survey is open, but the bot's last message did not reach the customer
  (`conversation.undelivered_at` is set). The mark is cleared at the start of the turn,
  whatever the input: the customer hears from the bot again.
- ASKING: a survey is open at its current question.
- CONFIRMING: a survey is open and a score read from a sentence awaits the customer's yes
  ("Did you mean 2 out of 10?", `conversation.pending_score`).
- OPTED_OUT: no survey is open and the customer said stop (`customer.opted_out_at`).
- FINISHED: no survey is open and the customer's latest survey was completed (thanks said).
- EXPIRED: no survey is open and the customer's latest survey closed unfinished: the reminder
  worker (`bot.reminders`) expired it `[reminders] expire_after_hours` after it started.
- NO_SURVEY: no survey is open (never surveyed, or the latest one was stopped or replaced).

Inputs:

- START: the customer asks for a survey: a START message (deep link, /start) or the typed word
  ("start", "/start", "empezar").
- BEGIN: the bot opens a survey on its own (`Engine.begin`: an invitation, the console).
- STOP, HELP, SKIP: the typed built-in words (`bot.parsing.detect_command`; "?" is HELP).
- ANSWER: any other typed text, empty text included.
- BUTTON: a pressed button (its payload names the question and the value).
- UNSUPPORTED: anything else (a photo, a sticker, a voice note).

Actions:

- start: open the flow asked for at its first question (after its intro). The open survey is
  resumed instead ("welcome back", its current question) when it is the same flow and no new
  context came; another open survey is abandoned. Opts an opted-out customer back in.
- begin: as start, for a survey the customer did not ask for; it never opts anyone back in.
- opt_out: remember that the customer opted out, end the open survey (opted_out), say so.
- answer: parse the text or button for the current question: stored, then the next question or
  the thanks; not understood, a hint (and the question again after repeated misses, or for a
  button of an earlier question). Empty text skips an optional question.
- confirm: a "Did you mean N out of M?" awaits an answer: Yes (its button, or typed "yes")
  stores N as the answer; No (its button, or typed "no") asks the question again; anything
  else is read as a new answer to the question (as `answer`).
- skip: an optional question is stored as skipped, then the next question or the thanks; a
  required one is asked again ("this question needs an answer").
- resend: "my last message didn't reach you", then the current question again. Nothing is
  stored: the message cannot answer a question the customer never saw.
- help_and_ask / help_and_no_survey / help_and_still_opted_out: the help text, then the current
  question again / "no survey open" / "you have unsubscribed". Help is never stored.
- unsupported_and_ask / unsupported: "text and buttons only" (then the current question again).
- late_comment: typed text is kept as a `_late_comment` answer of the finished survey (keyword
  flags apply) and acknowledged; a message without text (a button) hears "no survey open".
- late_reply: "this survey has closed — thanks, we kept your note": the typed text, or the
  label of a button pressed on the expired survey's keyboard, is kept as a `_late_comment` of
  the expired survey (a late comment, never an answer; keyword flags apply); a message with
  neither hears "no survey open".
- no_survey: "no survey open; send start".
- still_opted_out: "you have unsubscribed; send start to give feedback again".

The table (`render_table()` writes it; a test keeps this copy in step):

| state | input | action | then |
|---|---|---|---|
| NO_SURVEY | START | start | ASKING |
| NO_SURVEY | BEGIN | begin | ASKING |
| NO_SURVEY | STOP | opt_out | OPTED_OUT |
| NO_SURVEY | HELP | help_and_no_survey | NO_SURVEY |
| NO_SURVEY | SKIP | no_survey | NO_SURVEY |
| NO_SURVEY | ANSWER | no_survey | NO_SURVEY |
| NO_SURVEY | BUTTON | no_survey | NO_SURVEY |
| NO_SURVEY | UNSUPPORTED | unsupported | NO_SURVEY |
| FINISHED | START | start | ASKING |
| FINISHED | BEGIN | begin | ASKING |
| FINISHED | STOP | opt_out | OPTED_OUT |
| FINISHED | HELP | help_and_no_survey | FINISHED |
| FINISHED | SKIP | no_survey | FINISHED |
| FINISHED | ANSWER | late_comment | FINISHED |
| FINISHED | BUTTON | late_comment | FINISHED |
| FINISHED | UNSUPPORTED | unsupported | FINISHED |
| EXPIRED | START | start | ASKING |
| EXPIRED | BEGIN | begin | ASKING |
| EXPIRED | STOP | opt_out | OPTED_OUT |
| EXPIRED | HELP | help_and_no_survey | EXPIRED |
| EXPIRED | SKIP | no_survey | EXPIRED |
| EXPIRED | ANSWER | late_reply | EXPIRED |
| EXPIRED | BUTTON | late_reply | EXPIRED |
| EXPIRED | UNSUPPORTED | unsupported | EXPIRED |
| OPTED_OUT | START | start | ASKING |
| OPTED_OUT | BEGIN | still_opted_out | OPTED_OUT |
| OPTED_OUT | STOP | opt_out | OPTED_OUT |
| OPTED_OUT | HELP | help_and_still_opted_out | OPTED_OUT |
| OPTED_OUT | SKIP | still_opted_out | OPTED_OUT |
| OPTED_OUT | ANSWER | still_opted_out | OPTED_OUT |
| OPTED_OUT | BUTTON | still_opted_out | OPTED_OUT |
| OPTED_OUT | UNSUPPORTED | unsupported | OPTED_OUT |
| ASKING | START | start | ASKING |
| ASKING | BEGIN | begin | ASKING |
| ASKING | STOP | opt_out | OPTED_OUT |
| ASKING | HELP | help_and_ask | ASKING |
| ASKING | SKIP | skip | ASKING or FINISHED |
| ASKING | ANSWER | answer | ASKING or FINISHED |
| ASKING | BUTTON | answer | ASKING or FINISHED |
| ASKING | UNSUPPORTED | unsupported_and_ask | ASKING |
| CONFIRMING | START | start | ASKING |
| CONFIRMING | BEGIN | begin | ASKING |
| CONFIRMING | STOP | opt_out | OPTED_OUT |
| CONFIRMING | HELP | help_and_ask | CONFIRMING |
| CONFIRMING | SKIP | skip | CONFIRMING or ASKING or FINISHED |
| CONFIRMING | ANSWER | confirm | CONFIRMING or ASKING or FINISHED |
| CONFIRMING | BUTTON | confirm | CONFIRMING or ASKING or FINISHED |
| CONFIRMING | UNSUPPORTED | unsupported_and_ask | CONFIRMING |
| UNDELIVERED | START | start | ASKING |
| UNDELIVERED | BEGIN | begin | ASKING |
| UNDELIVERED | STOP | opt_out | OPTED_OUT |
| UNDELIVERED | HELP | help_and_ask | ASKING |
| UNDELIVERED | SKIP | resend | ASKING |
| UNDELIVERED | ANSWER | resend | ASKING |
| UNDELIVERED | BUTTON | answer | ASKING or FINISHED |
| UNDELIVERED | UNSUPPORTED | unsupported_and_ask | ASKING |

A button in UNDELIVERED is an answer: the customer pressed it on a question they did see (a
button of an earlier question gets the current one again). An open survey becomes EXPIRED
without a turn: the reminder worker closes it when its time is up. This module is pure: it
reads no storage and sends nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import assert_never

from bot.messages import MessageKind
from bot.parsing import Command, detect_command


class State(StrEnum):
    """Where the customer stands when a turn starts (see the module docstring)."""

    NO_SURVEY = "no_survey"
    FINISHED = "finished"
    EXPIRED = "expired"
    OPTED_OUT = "opted_out"
    ASKING = "asking"
    CONFIRMING = "confirming"
    UNDELIVERED = "undelivered"


class Input(StrEnum):
    """What a turn brings: the customer's message, or a survey the bot begins."""

    START = "start"
    BEGIN = "begin"
    STOP = "stop"
    HELP = "help"
    SKIP = "skip"
    ANSWER = "answer"
    BUTTON = "button"
    UNSUPPORTED = "unsupported"


class Action(StrEnum):
    """What the engine does in a turn; one `Engine` method each (see the module docstring)."""

    START = "start"
    BEGIN = "begin"
    OPT_OUT = "opt_out"
    ANSWER = "answer"
    CONFIRM = "confirm"
    SKIP = "skip"
    RESEND = "resend"
    HELP_AND_ASK = "help_and_ask"
    HELP_AND_NO_SURVEY = "help_and_no_survey"
    HELP_AND_STILL_OPTED_OUT = "help_and_still_opted_out"
    UNSUPPORTED_AND_ASK = "unsupported_and_ask"
    UNSUPPORTED = "unsupported"
    LATE_COMMENT = "late_comment"
    LATE_REPLY = "late_reply"
    NO_SURVEY = "no_survey"
    STILL_OPTED_OUT = "still_opted_out"


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table: in `state`, on `input`, perform `action`; `then` documents the
    states the turn can leave the customer in (which one depends on the answer or the flow)."""

    state: State
    input: Input
    action: Action
    then: tuple[State, ...]


# Where a confirmation leads: asked again (still pending when a required question is skipped),
# the answer stored and the next question asked, or the survey finished.
_CONFIRM_THEN = (State.CONFIRMING, State.ASKING, State.FINISHED)

TABLE: tuple[Row, ...] = (
    # No survey open: only START and BEGIN open one; text is not an answer.
    Row(State.NO_SURVEY, Input.START, Action.START, (State.ASKING,)),
    Row(State.NO_SURVEY, Input.BEGIN, Action.BEGIN, (State.ASKING,)),
    Row(State.NO_SURVEY, Input.STOP, Action.OPT_OUT, (State.OPTED_OUT,)),
    Row(State.NO_SURVEY, Input.HELP, Action.HELP_AND_NO_SURVEY, (State.NO_SURVEY,)),
    Row(State.NO_SURVEY, Input.SKIP, Action.NO_SURVEY, (State.NO_SURVEY,)),
    Row(State.NO_SURVEY, Input.ANSWER, Action.NO_SURVEY, (State.NO_SURVEY,)),
    Row(State.NO_SURVEY, Input.BUTTON, Action.NO_SURVEY, (State.NO_SURVEY,)),
    Row(State.NO_SURVEY, Input.UNSUPPORTED, Action.UNSUPPORTED, (State.NO_SURVEY,)),
    # After the thanks: text is still feedback, kept with the finished survey.
    Row(State.FINISHED, Input.START, Action.START, (State.ASKING,)),
    Row(State.FINISHED, Input.BEGIN, Action.BEGIN, (State.ASKING,)),
    Row(State.FINISHED, Input.STOP, Action.OPT_OUT, (State.OPTED_OUT,)),
    Row(State.FINISHED, Input.HELP, Action.HELP_AND_NO_SURVEY, (State.FINISHED,)),
    Row(State.FINISHED, Input.SKIP, Action.NO_SURVEY, (State.FINISHED,)),
    Row(State.FINISHED, Input.ANSWER, Action.LATE_COMMENT, (State.FINISHED,)),
    Row(State.FINISHED, Input.BUTTON, Action.LATE_COMMENT, (State.FINISHED,)),
    Row(State.FINISHED, Input.UNSUPPORTED, Action.UNSUPPORTED, (State.FINISHED,)),
    # Closed unfinished (expired): a reply is kept as a late comment, with "this survey has closed".
    Row(State.EXPIRED, Input.START, Action.START, (State.ASKING,)),
    Row(State.EXPIRED, Input.BEGIN, Action.BEGIN, (State.ASKING,)),
    Row(State.EXPIRED, Input.STOP, Action.OPT_OUT, (State.OPTED_OUT,)),
    Row(State.EXPIRED, Input.HELP, Action.HELP_AND_NO_SURVEY, (State.EXPIRED,)),
    Row(State.EXPIRED, Input.SKIP, Action.NO_SURVEY, (State.EXPIRED,)),
    Row(State.EXPIRED, Input.ANSWER, Action.LATE_REPLY, (State.EXPIRED,)),
    Row(State.EXPIRED, Input.BUTTON, Action.LATE_REPLY, (State.EXPIRED,)),
    Row(State.EXPIRED, Input.UNSUPPORTED, Action.UNSUPPORTED, (State.EXPIRED,)),
    # Opted out: only the customer's own START opts them back in.
    Row(State.OPTED_OUT, Input.START, Action.START, (State.ASKING,)),
    Row(State.OPTED_OUT, Input.BEGIN, Action.STILL_OPTED_OUT, (State.OPTED_OUT,)),
    Row(State.OPTED_OUT, Input.STOP, Action.OPT_OUT, (State.OPTED_OUT,)),
    Row(State.OPTED_OUT, Input.HELP, Action.HELP_AND_STILL_OPTED_OUT, (State.OPTED_OUT,)),
    Row(State.OPTED_OUT, Input.SKIP, Action.STILL_OPTED_OUT, (State.OPTED_OUT,)),
    Row(State.OPTED_OUT, Input.ANSWER, Action.STILL_OPTED_OUT, (State.OPTED_OUT,)),
    Row(State.OPTED_OUT, Input.BUTTON, Action.STILL_OPTED_OUT, (State.OPTED_OUT,)),
    Row(State.OPTED_OUT, Input.UNSUPPORTED, Action.UNSUPPORTED, (State.OPTED_OUT,)),
    # A survey open at a question the customer saw.
    Row(State.ASKING, Input.START, Action.START, (State.ASKING,)),
    Row(State.ASKING, Input.BEGIN, Action.BEGIN, (State.ASKING,)),
    Row(State.ASKING, Input.STOP, Action.OPT_OUT, (State.OPTED_OUT,)),
    Row(State.ASKING, Input.HELP, Action.HELP_AND_ASK, (State.ASKING,)),
    Row(State.ASKING, Input.SKIP, Action.SKIP, (State.ASKING, State.FINISHED)),
    Row(State.ASKING, Input.ANSWER, Action.ANSWER, (State.ASKING, State.FINISHED)),
    Row(State.ASKING, Input.BUTTON, Action.ANSWER, (State.ASKING, State.FINISHED)),
    Row(State.ASKING, Input.UNSUPPORTED, Action.UNSUPPORTED_AND_ASK, (State.ASKING,)),
    # A score read from a sentence awaits a yes: stored on yes, asked again on no.
    Row(State.CONFIRMING, Input.START, Action.START, (State.ASKING,)),
    Row(State.CONFIRMING, Input.BEGIN, Action.BEGIN, (State.ASKING,)),
    Row(State.CONFIRMING, Input.STOP, Action.OPT_OUT, (State.OPTED_OUT,)),
    Row(State.CONFIRMING, Input.HELP, Action.HELP_AND_ASK, (State.CONFIRMING,)),
    Row(State.CONFIRMING, Input.SKIP, Action.SKIP, _CONFIRM_THEN),
    Row(State.CONFIRMING, Input.ANSWER, Action.CONFIRM, _CONFIRM_THEN),
    Row(State.CONFIRMING, Input.BUTTON, Action.CONFIRM, _CONFIRM_THEN),
    Row(State.CONFIRMING, Input.UNSUPPORTED, Action.UNSUPPORTED_AND_ASK, (State.CONFIRMING,)),
    # A survey open at a question that never reached the customer: typed text cannot answer it.
    Row(State.UNDELIVERED, Input.START, Action.START, (State.ASKING,)),
    Row(State.UNDELIVERED, Input.BEGIN, Action.BEGIN, (State.ASKING,)),
    Row(State.UNDELIVERED, Input.STOP, Action.OPT_OUT, (State.OPTED_OUT,)),
    Row(State.UNDELIVERED, Input.HELP, Action.HELP_AND_ASK, (State.ASKING,)),
    Row(State.UNDELIVERED, Input.SKIP, Action.RESEND, (State.ASKING,)),
    Row(State.UNDELIVERED, Input.ANSWER, Action.RESEND, (State.ASKING,)),
    Row(State.UNDELIVERED, Input.BUTTON, Action.ANSWER, (State.ASKING, State.FINISHED)),
    Row(State.UNDELIVERED, Input.UNSUPPORTED, Action.UNSUPPORTED_AND_ASK, (State.ASKING,)),
)


def check_complete(rows: Iterable[Row]) -> dict[tuple[State, Input], Row]:
    """The rows by (state, input); ValueError unless every pair has exactly one row."""
    by_pair: dict[tuple[State, Input], Row] = {}
    twice: list[tuple[State, Input]] = []
    for row in rows:
        pair = (row.state, row.input)
        if pair in by_pair:
            twice.append(pair)
        by_pair[pair] = row
    missing = [(s, i) for s in State for i in Input if (s, i) not in by_pair]
    if missing or twice:
        raise ValueError(f"survey table: missing rows {missing}, repeated rows {twice}")
    return by_pair


# Checked on import: a table with a hole or a repeated row cannot be used at all.
LOOKUP: Mapping[tuple[State, Input], Row] = check_complete(TABLE)


def row_for(state: State, received: Input) -> Row:
    """The table's row for this state and input."""
    return LOOKUP[(state, received)]


def classify_state(
    *,
    survey_open: bool,
    undelivered: bool,
    opted_out: bool,
    last_completed: bool,
    last_expired: bool = False,
    pending: bool = False,
) -> State:
    """The customer's state from what the engine read: an open survey (and whether its last
    message was undelivered, whether a score awaits confirmation), the opt-out, whether the
    latest survey was completed or expired."""
    if survey_open:
        if undelivered:
            return State.UNDELIVERED
        return State.CONFIRMING if pending else State.ASKING
    if opted_out:
        return State.OPTED_OUT
    if last_expired:
        return State.EXPIRED
    return State.FINISHED if last_completed else State.NO_SURVEY


_COMMAND_INPUTS: Mapping[Command, Input] = {
    Command.START: Input.START,
    Command.STOP: Input.STOP,
    Command.HELP: Input.HELP,
    Command.SKIP: Input.SKIP,
}


def classify_input(kind: MessageKind, text: str, *, proactive: bool = False) -> Input:
    """The input a message is: `text` as the engine keeps it (cut to the length limit);
    `proactive` for a survey the bot begins on its own (`Engine.begin`)."""
    match kind:
        case MessageKind.START:
            return Input.BEGIN if proactive else Input.START
        case MessageKind.UNSUPPORTED:
            return Input.UNSUPPORTED
        case MessageKind.BUTTON:
            return Input.BUTTON
        case MessageKind.TEXT:
            command = detect_command(text)
            return Input.ANSWER if command is None else _COMMAND_INPUTS[command]
        case _:
            assert_never(kind)


def classify(
    kind: MessageKind,
    text: str,
    *,
    proactive: bool,
    survey_open: bool,
    undelivered: bool,
    opted_out: bool,
    last_completed: bool,
    last_expired: bool = False,
    pending: bool = False,
) -> tuple[State, Input]:
    """A turn as the table sees it: (`classify_state`, `classify_input`)."""
    state = classify_state(
        survey_open=survey_open,
        undelivered=undelivered,
        opted_out=opted_out,
        last_completed=last_completed,
        last_expired=last_expired,
        pending=pending,
    )
    return state, classify_input(kind, text, proactive=proactive)


def render_table(rows: Iterable[Row] = TABLE) -> str:
    """The table as markdown: one line per (state, input), in the table's order."""
    lines = ["| state | input | action | then |", "|---|---|---|---|"]
    for row in rows:
        then = " or ".join(s.name for s in row.then)
        lines.append(f"| {row.state.name} | {row.input.name} | {row.action.value} | {then} |")
    return "\n".join(lines)
