"""Block Kit for cxbot's Slack messages: survey questions, answered questions, alerts, modals.

Pure functions from neutral data (`bot.messages`) to Slack's JSON; no I/O. Block and action ids
are what `adapters.slack` listens for, so they are defined here next to the blocks using them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any, TypedDict

from bot.messages import (
    ChoiceStyle,
    OutgoingMessage,
    ReviewCard,
    ReviewStep,
    ReviewText,
    SupportAction,
    SupportForm,
)

ANSWER_ACTION = "cxbot_answer"  # + "_<n>": one survey button
ACK_ACTION = "cxbot_review_ack"
RESOLVE_ACTION = "cxbot_review_resolve"
REPLY_ACTION = "cxbot_review_reply"
CORRECT_ACTION = "cxbot_review_label"
RESOLVE_VIEW = "cxbot_resolve"
REPLY_VIEW = "cxbot_reply"
CORRECT_VIEW = "cxbot_label"
NOTE_BLOCK, NOTE_INPUT = "note", "note"
REPLY_BLOCK, REPLY_INPUT = "reply", "text"
TEXT_BLOCK, TEXT_SELECT = "answer", "answer"  # which text answer (when there are several)
LABEL_BLOCK, LABEL_SELECT = "label", "label"
# What each alert button and form asks of the support desk, and where a form's text is typed
# (for Correct label: the label's select, under which the form's errors show).
ALERT_ACTIONS = {
    ACK_ACTION: SupportAction.ACKNOWLEDGE,
    RESOLVE_ACTION: SupportAction.RESOLVE,
    REPLY_ACTION: SupportAction.REPLY,
    CORRECT_ACTION: SupportAction.CORRECT_LABEL,
}
FORM_VIEWS = {
    RESOLVE_VIEW: SupportAction.RESOLVE,
    REPLY_VIEW: SupportAction.REPLY,
    CORRECT_VIEW: SupportAction.CORRECT_LABEL,
}
FORM_INPUTS = {
    SupportAction.RESOLVE: (NOTE_BLOCK, NOTE_INPUT),
    SupportAction.REPLY: (REPLY_BLOCK, REPLY_INPUT),
    SupportAction.CORRECT_LABEL: (LABEL_BLOCK, LABEL_SELECT),
}
MAX_OPTION = 75  # Slack's limit for a select option's text and description
MAX_OPTIONS = 100  # ... and for a static_select's options
MAX_FORM_ERROR = 150  # Slack shows about this much of an error under a modal's input

MAX_SECTION = 3000  # Slack's limit for a section's text
MAX_BUTTON = 75  # ... a button's label
MAX_FALLBACK = 4000  # the notification text; Slack allows more, nobody reads more
NOTE_PREVIEW = 500  # a note or reply quoted in an alert's history; the item keeps it all
HISTORY_NOTE_LIMITS = (NOTE_PREVIEW, 200, 60, 0)  # ... shorter while the history does not fit
SCALE_ROW = 7  # a scale longer than this goes on two rows (NPS 0–5, 6–10)
CSAT_FACES = {1: "😠", 2: "🙁", 3: "😐", 4: "🙂", 5: "😍"}
ACTION_WORDS = {
    "acknowledged": "Acknowledged",
    "resolved": "Resolved",
    "replied": "Replied",
    "assigned": "Assigned",
    "reopened": "Reopened",
    "label_corrected": "Label corrected",
}
Block = dict[str, Any]


class SlackMessage(TypedDict):
    """`chat.postMessage` / `chat.update` arguments besides channel (and ts)."""

    text: str
    blocks: list[Block]


def _plain(text: str, limit: int = MAX_SECTION) -> dict[str, Any]:
    return {"type": "plain_text", "text": text[:limit] or " ", "emoji": True}


def escape(text: str) -> str:
    """Text safe inside mrkdwn: Slack's three control characters escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _section(text: str) -> Block:
    return {"type": "section", "text": _plain(text)}


def _mrkdwn(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:MAX_SECTION]}}


def _button_label(message: OutgoingMessage, label: str) -> str:
    if message.question_type == "csat" and label.isdigit() and int(label) in CSAT_FACES:
        return f"{label} {CSAT_FACES[int(label)]}"
    return label


def render_question(message: OutgoingMessage) -> SlackMessage:
    """The message as a section plus button rows (pure).

    Scales: up to 7 buttons on one row, longer ones on two (NPS 0–5 and 6–10). Options: one
    actions block (Slack wraps long rows). A typed answer works as well as a button.
    """
    blocks: list[Block] = [_section(message.text)]
    buttons = [
        {
            "type": "button",
            "action_id": f"{ANSWER_ACTION}_{i}",
            "text": _plain(_button_label(message, c.label), MAX_BUTTON),
            "value": c.payload,
        }
        for i, c in enumerate(message.choices[:50])
    ]
    if buttons:
        if message.choice_style == ChoiceStyle.SCALE and len(buttons) > SCALE_ROW:
            size = math.ceil(len(buttons) / 2)
            rows = [buttons[:size], buttons[size:]]
        else:
            rows = [buttons[i : i + 25] for i in range(0, len(buttons), 25)]
        for n, row in enumerate(rows):
            blocks.append({"type": "actions", "block_id": f"cxbot_q_{n}", "elements": row})
    return {"text": message.text[:MAX_FALLBACK], "blocks": blocks}


def render_answered(text: str, label: str | None) -> SlackMessage:
    """A question message after it was answered: the question and the choice, no buttons."""
    blocks: list[Block] = [_section(text)]
    if label is not None:
        blocks.append({"type": "context", "elements": [_plain(f"✓ {label}", 150)]})
        return {"text": f"{text}\n✓ {label}"[:MAX_FALLBACK], "blocks": blocks}
    return {"text": text[:MAX_FALLBACK], "blocks": blocks}


def mention(user_id: str) -> str:
    """A Slack user as mrkdwn shows them: `<@U…>`. A web desk user (an e-mail: Slack ids have
    no "@") is shown as their e-mail, escaped."""
    if "@" in user_id:
        return escape(user_id)
    return f"<@{user_id}>"


def shorten(text: str, limit: int) -> str:
    """`text`, cut to at most `limit` characters with "…" when it is longer."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + "…"


def history_line(step: ReviewStep, note_limit: int = NOTE_PREVIEW) -> str:
    """One line of an alert's history, e.g. `Resolved by <@U1> at 2026-11-22 12:01 UTC: note`.

    The note is shortened to `note_limit` characters (the full text is stored with the item).
    """
    word = ACTION_WORDS.get(step.action, step.action.capitalize())
    line = f"{word} by {mention(step.actor)} at {step.when}"
    if step.note and note_limit > 0:
        line += f": {escape(shorten(step.note, note_limit))}"
    return line


def history_text(history: Sequence[ReviewStep]) -> str:
    """An alert's history, one line per step, within Slack's limit for one text.

    Cutting the joined text would hide the latest steps behind one long note, so notes are
    shortened instead, more as the history grows; a history too long even without notes
    shows its latest steps and how many earlier ones are left out.
    """
    for limit in HISTORY_NOTE_LIMITS:
        text = "\n".join(history_line(step, limit) for step in history)
        if len(text) <= MAX_SECTION:
            return text
    lines = [history_line(step, 0) for step in history]
    kept: list[str] = []
    size = 40  # room for the "earlier steps" line
    for line in reversed(lines):
        if size + len(line) + 1 > MAX_SECTION:
            break
        kept.append(line)
        size += len(line) + 1
    left_out = len(lines) - len(kept)
    return "\n".join([f"… {left_out} earlier steps not shown", *reversed(kept)])


def label_shown(answer: ReviewText) -> str:
    """A text answer's label as an alert shows it (mrkdwn): the model's ("negative 93%"),
    pending, or a person's correction, e.g. `negative → corrected to neutral by <@U1>`."""
    if answer.corrected_by is not None and answer.label is not None:
        corrected = f"corrected to {escape(answer.label)} by {mention(answer.corrected_by)}"
        if answer.corrected_from is not None:
            return f"{escape(answer.corrected_from)} → {corrected}"
        return corrected
    return escape(answer.sentiment or "sentiment pending")


def render_alert(card: ReviewCard) -> SlackMessage:
    """A flagged reply for the support channel, with the buttons its status still allows."""
    title = f"Flagged reply #{card.review_id} · {card.status}"
    blocks: list[Block] = [
        {"type": "header", "text": _plain(title, 150)},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Customer*\n{escape(card.customer)}"},
                {"type": "mrkdwn", "text": f"*Channel*\n{escape(card.channel)}"},
                {"type": "mrkdwn", "text": f"*Survey*\n{escape(card.flow_id)}"},
                {"type": "mrkdwn", "text": f"*Scores*\n{escape(', '.join(card.scores) or '—')}"},
            ],
        },
    ]
    for answer in card.texts:
        quoted = "\n".join(f"> {escape(line)}" for line in answer.text.splitlines() or [""])
        blocks.append(_mrkdwn(f"*{escape(answer.question_id)}* ({label_shown(answer)})\n{quoted}"))
    if card.reasons:
        reasons = "\n".join(f"• {escape(r)}" for r in card.reasons)
        blocks.append(_mrkdwn(f"*Why flagged*\n{reasons}"))
    if card.history:
        lines = history_text(card.history)
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": lines}]})
    buttons: list[Block] = []
    value = str(card.review_id)
    if card.status == "open":
        buttons.append(_action_button(ACK_ACTION, "Acknowledge", value))
    if card.status != "resolved":
        buttons.append(_action_button(RESOLVE_ACTION, "Resolve", value, style="primary"))
    if card.can_reply:
        buttons.append(_action_button(REPLY_ACTION, "Reply to customer", value))
    if any(t.answer_id is not None for t in card.texts):
        buttons.append(_action_button(CORRECT_ACTION, "Correct label", value))
    if buttons:
        blocks.append({"type": "actions", "block_id": "cxbot_review", "elements": buttons})
    summary = f"{title}: {card.customer} ({card.channel}) — {'; '.join(card.reasons)}"
    return {"text": summary[:MAX_FALLBACK], "blocks": blocks}


def _action_button(action_id: str, label: str, value: str, style: str | None = None) -> Block:
    button: Block = {
        "type": "button",
        "action_id": action_id,
        "text": _plain(label),
        "value": value,
    }
    if style is not None:
        button["style"] = style
    return button


def _modal(
    callback_id: str,
    title: str,
    submit: str,
    metadata: dict[str, Any],
    blocks: Sequence[Block],
) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": json.dumps(metadata),
        "title": _plain(title, 24),
        "submit": _plain(submit, 24),
        "close": _plain("Cancel", 24),
        "blocks": list(blocks),
    }


def _input(block_id: str, action_id: str, label: str, hint: str) -> Block:
    return {
        "type": "input",
        "block_id": block_id,
        "label": _plain(label, 2000),
        "hint": _plain(hint, 2000),
        "element": {
            "type": "plain_text_input",
            "action_id": action_id,
            "multiline": True,
            "max_length": 3000,
        },
    }


def resolve_modal(review_id: int, channel: str, ts: str) -> dict[str, Any]:
    """The modal asking for a resolution note."""
    return _modal(
        RESOLVE_VIEW,
        f"Resolve #{review_id}",
        "Resolve",
        {"review_id": review_id, "channel": channel, "ts": ts},
        [_input(NOTE_BLOCK, NOTE_INPUT, "Resolution note", "What was done; kept with the item.")],
    )


def reply_modal(review_id: int, channel: str, ts: str, customer: str) -> dict[str, Any]:
    """The modal whose text is sent to the customer on their own channel."""
    return _modal(
        REPLY_VIEW,
        f"Reply #{review_id}",
        "Send",
        {"review_id": review_id, "channel": channel, "ts": ts},
        [
            _input(
                REPLY_BLOCK,
                REPLY_INPUT,
                f"Message to {customer}"[:2000],
                "Sent to the customer where they answered the survey, and recorded.",
            )
        ],
    )


def _option(text: str, value: str, description: str | None = None) -> Block:
    option: Block = {"text": _plain(shorten(text, MAX_OPTION), MAX_OPTION), "value": value}
    if description:
        option["description"] = _plain(shorten(description, MAX_OPTION), MAX_OPTION)
    return option


def _select(block_id: str, action_id: str, label: str, options: Sequence[Block]) -> Block:
    return {
        "type": "input",
        "block_id": block_id,
        "label": _plain(label, 2000),
        "element": {
            "type": "static_select",
            "action_id": action_id,
            "placeholder": _plain("Choose…", 150),
            "options": list(options[:MAX_OPTIONS]),
        },
    }


def _now_labelled(answer: ReviewText) -> str:
    if answer.corrected_by is not None and answer.label is not None:
        return f"now {answer.label} (corrected)"
    return f"now {answer.sentiment or 'sentiment pending'}"


def correct_modal(form: SupportForm, channel: str, ts: str) -> dict[str, Any]:
    """The modal for correcting a sentiment label: which text (a select when the item has
    several; else the text is shown and its answer id kept in the metadata) and which label."""
    metadata: dict[str, Any] = {"review_id": form.review_id, "channel": channel, "ts": ts}
    blocks: list[Block] = []
    if len(form.texts) == 1:
        (only,) = form.texts
        metadata["answer_id"] = only.answer_id
        quoted = "\n".join(f"> {escape(line)}" for line in only.text.splitlines() or [""])
        head = f"*{escape(only.question_id)}* ({escape(_now_labelled(only))})"
        blocks.append(_mrkdwn(f"{head}\n{quoted}"))
    else:
        options = [
            _option(f"{t.question_id}: {t.text}", str(t.answer_id), _now_labelled(t))
            for t in form.texts
        ]
        blocks.append(_select(TEXT_BLOCK, TEXT_SELECT, "Answer", options))
    labels = [_option(label, label) for label in form.labels]
    blocks.append(_select(LABEL_BLOCK, LABEL_SELECT, "Correct label", labels))
    return _modal(CORRECT_VIEW, f"Label #{form.review_id}", "Correct", metadata, blocks)


def support_modal(form: SupportForm, channel: str, ts: str) -> dict[str, Any]:
    """The modal the support desk asked for, opened from the alert at `channel` / `ts`."""
    if form.action == SupportAction.REPLY:
        return reply_modal(form.review_id, channel, ts, form.customer)
    if form.action == SupportAction.CORRECT_LABEL:
        return correct_modal(form, channel, ts)
    return resolve_modal(form.review_id, channel, ts)
