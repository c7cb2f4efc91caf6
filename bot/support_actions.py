"""What the support desk decides when an agent presses an alert's button or submits its form.

Neutral on both sides: the inputs are `SupportPress` / `SupportSubmission` (the agent's platform
user id, the review id, the text typed), the outcomes `SupportDone`, `SupportNotice` (tell the
presser), `SupportForm` (ask for a note or a reply first) and `SupportFormError` (keep the form
open), all in bot.messages. The platform adapter translates its requests into the inputs and
renders the outcomes; it decides nothing. Decided here:

- only the support team acts; others are told who can (presses), or refused (forms);
- a press on an item that is gone, or already in the state the button asks for (an out-of-date
  alert), changes nothing and says who made it so and when; a reply to a resolved item is still
  allowed;
- a form must name its item and must not be empty; a resolve that lost the race to another
  agent keeps its form open (so that the note can be copied) and names who resolved it; a
  reply to a customer whose channel is not served here, or who blocked the bot or was erased,
  keeps the form open with the reason (nothing is queued);
- Correct label opens a form of the item's text answers and the labels (a notice when the item
  has no text to correct); a label that is unknown or already shown, or an answer that is not
  the item's, keeps the form open with why; a correction is stored as the web desk stores it
  (who, when, old → new, the model's version) and the alert shows it.

The workflow itself (`Workflow`: the item's card, acknowledge, resolve, reply, correct_label) is
bot.reviews.ReviewDesk's, over the database; these functions only call it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

from bot.errors import (
    CustomerUnreachableError,
    DeliveryError,
    LabelCorrectionError,
    ReviewNotFoundError,
)
from bot.messages import (
    PressOutcome,
    ReviewCard,
    ReviewStep,
    SubmitOutcome,
    SupportAction,
    SupportDone,
    SupportForm,
    SupportFormError,
    SupportNotice,
    SupportPress,
    SupportSubmission,
    UserNames,
)
from storage.desk_queue import LABELS

log = logging.getLogger(__name__)

NOTICES = {
    "not_support": "Sorry, only the support team ({who}) can work on these alerts.",
    "support_only": "Support users only.",
    "reply_failed": "Could not send your reply to the customer: {error}",
    "empty": "Please write something first.",
    "gone": "That flagged reply no longer exists.",
    "already": "Flagged reply #{review_id} is already {status}{by}.",
    "already_resolved": "Already resolved{by}; your note was not saved.",
    "stale_form": "This form is out of date: close it and use the alert's buttons again.",
    "no_texts": "Flagged reply #{review_id} has no text answer whose label could be corrected.",
    "choose_text": "Please choose the answer whose label to correct.",
    "choose_label": "Please choose a label.",
    "not_corrected": "Label not corrected: {error}.",
    "not_its_text": "That answer is not a text of flagged reply #{review_id}.",
}
# The steps that give an item its status: who made it so, for "already resolved by …".
_STATUS_STEPS = {"acknowledged": ("acknowledged", "replied"), "resolved": ("resolved",)}


class Workflow(Protocol):
    """The review workflow the support actions run (`actor` is a platform user id)."""

    async def card(self, *, review_id: int) -> ReviewCard | None:
        """The item as an alert shows it (None when it does not exist)."""
        ...

    async def acknowledge(self, *, review_id: int, actor: str) -> bool:
        """Acknowledge an open item; False when it was not open. ReviewNotFoundError."""
        ...

    async def resolve(self, *, review_id: int, actor: str, note: str) -> bool:
        """Resolve with a note; False when it already was. ReviewNotFoundError."""
        ...

    async def reply(self, *, review_id: int, actor: str, text: str) -> None:
        """Queue a reply to the customer. DeliveryError (channel not served here),
        CustomerUnreachableError (blocked the bot, erased), ReviewNotFoundError."""
        ...

    async def correct_label(
        self, *, review_id: int, answer_id: int, actor: str, label: str
    ) -> None:
        """Store a person's sentiment label for a text answer of the item. LabelCorrectionError
        (unknown label, or the one shown), ReviewNotFoundError (no such item, or the answer is
        not a text of it); nothing is stored then."""
        ...


class PlainNames:
    """`UserNames` for a platform without mentions or a directory: user ids as they are."""

    def mention(self, user_id: str) -> str:
        return user_id

    async def plain_name(self, user_id: str) -> str:
        return user_id


@dataclass(frozen=True, slots=True)
class SupportTeam:
    """Who may act on alerts (platform user ids), and how the platform names people."""

    users: frozenset[str]
    names: UserNames = field(default_factory=PlainNames)


def status_step(card: ReviewCard) -> ReviewStep | None:
    """The latest step that gave the item its current status (None for an open item)."""
    actions = _STATUS_STEPS.get(card.status, ())
    return next((s for s in reversed(card.history) if s.action in actions), None)


def not_support(team: SupportTeam, actor: str) -> SupportNotice:
    """The notice for someone outside the support team: who can act instead."""
    log.warning("user %s pressed an alert button but is not a support user", actor)
    who = ", ".join(team.names.mention(u) for u in sorted(team.users))
    return SupportNotice(NOTICES["not_support"].format(who=who or "none"))


def out_of_date(team: SupportTeam, review_id: int, card: ReviewCard | None) -> SupportNotice:
    """The notice for a button that no longer applies: the item is gone, or who changed it."""
    if card is None:
        return SupportNotice(NOTICES["gone"])
    step = status_step(card)
    by = f" (by {team.names.mention(step.actor)} at {step.when})" if step is not None else ""
    return SupportNotice(NOTICES["already"].format(review_id=review_id, status=card.status, by=by))


async def acknowledge_pressed(
    work: Workflow, team: SupportTeam, press: SupportPress
) -> PressOutcome:
    """Acknowledge: done, or a notice when the item is not open (or gone)."""
    try:
        changed = await work.acknowledge(review_id=press.review_id, actor=press.actor)
    except ReviewNotFoundError:
        changed = False  # out_of_date finds no card and says so
    if changed:
        return SupportDone()
    return out_of_date(team, press.review_id, await work.card(review_id=press.review_id))


async def form_pressed(work: Workflow, team: SupportTeam, press: SupportPress) -> PressOutcome:
    """Resolve or Reply: the form to fill in, or a notice when it no longer applies.

    A reply to a resolved item is still allowed; resolving it again is not.
    """
    card = await work.card(review_id=press.review_id)
    if card is None or (press.action == SupportAction.RESOLVE and card.status == "resolved"):
        return out_of_date(team, press.review_id, card)
    return SupportForm(action=press.action, review_id=press.review_id, customer=card.customer)


async def correct_pressed(work: Workflow, team: SupportTeam, press: SupportPress) -> PressOutcome:
    """Correct label: the form of the item's correctable texts and the labels, or a notice.

    Allowed whatever the item's status: a label is training data, not part of the workflow.
    """
    card = await work.card(review_id=press.review_id)
    if card is None:
        return out_of_date(team, press.review_id, card)
    texts = tuple(t for t in card.texts if t.answer_id is not None)
    if not texts:
        return SupportNotice(NOTICES["no_texts"].format(review_id=press.review_id))
    return SupportForm(
        action=press.action,
        review_id=press.review_id,
        customer=card.customer,
        texts=texts,
        labels=LABELS,
    )


async def on_press(work: Workflow, team: SupportTeam, press: SupportPress) -> PressOutcome:
    """What an alert's button press comes to (see the module doc)."""
    if press.actor not in team.users:
        return not_support(team, press.actor)
    if press.action == SupportAction.ACKNOWLEDGE:
        return await acknowledge_pressed(work, team, press)
    if press.action == SupportAction.CORRECT_LABEL:
        return await correct_pressed(work, team, press)
    return await form_pressed(work, team, press)


async def _plain_name(team: SupportTeam, actor: str) -> str:
    """How a plain text names an actor: a web desk user by their e-mail (it has an "@", which
    no platform user id has), anyone else as the platform names them."""
    if "@" in actor:
        return actor
    return await team.names.plain_name(actor)


async def _resolved_by(work: Workflow, team: SupportTeam, review_id: int) -> str:
    """The form error for an item resolved meanwhile, naming who resolved it if known."""
    card = await work.card(review_id=review_id)
    step = status_step(card) if card is not None else None
    by = f" by {await _plain_name(team, step.actor)} at {step.when}" if step else ""
    return NOTICES["already_resolved"].format(by=by)


async def resolve_submitted(
    work: Workflow, team: SupportTeam, *, actor: str, review_id: int, note: str
) -> SubmitOutcome:
    """Resolve with the note typed: done, gone, or resolved meanwhile by someone else."""
    try:
        changed = await work.resolve(review_id=review_id, actor=actor, note=note)
    except ReviewNotFoundError:
        return SupportFormError(NOTICES["gone"])
    if not changed:
        # Another agent resolved it meanwhile: the form stays open so that the note can be
        # copied, rather than closing as if it had been saved.
        return SupportFormError(await _resolved_by(work, team, review_id))
    return SupportDone()


async def reply_submitted(
    work: Workflow, *, actor: str, review_id: int, text: str
) -> SubmitOutcome:
    """Queue the reply typed: done, gone, or why the customer cannot be written to from here."""
    try:
        await work.reply(review_id=review_id, actor=actor, text=text)
    except ReviewNotFoundError:
        return SupportFormError(NOTICES["gone"])
    except CustomerUnreachableError as exc:
        # They blocked the bot or were erased: nothing was queued, and the agent must know.
        return SupportFormError(NOTICES["reply_failed"].format(error=exc))
    except DeliveryError as exc:
        # The customer's channel is not served here. A platform failure comes later, from the
        # delivery worker (stored as a delivery failure of the review item).
        return SupportFormError(NOTICES["reply_failed"].format(error=exc))
    return SupportDone()


async def label_submitted(
    work: Workflow, *, actor: str, review_id: int, answer_id: int | None, label: str | None
) -> SubmitOutcome:
    """Store the label chosen for a text answer: done, or why the form stays open."""
    if answer_id is None:
        return SupportFormError(NOTICES["choose_text"])
    if not label:
        return SupportFormError(NOTICES["choose_label"])
    try:
        await work.correct_label(review_id=review_id, answer_id=answer_id, actor=actor, label=label)
    except LabelCorrectionError as exc:
        return SupportFormError(NOTICES["not_corrected"].format(error=exc))
    except ReviewNotFoundError:
        # Either the item is gone, or the form named an answer of another item.
        if await work.card(review_id=review_id) is None:
            return SupportFormError(NOTICES["gone"])
        return SupportFormError(NOTICES["not_its_text"].format(review_id=review_id))
    return SupportDone()


async def on_submit(work: Workflow, team: SupportTeam, form: SupportSubmission) -> SubmitOutcome:
    """What a submitted form comes to (see the module doc)."""
    if form.actor is None or form.actor not in team.users:
        return SupportFormError(NOTICES["support_only"])
    if form.review_id is None:
        log.warning("a %s form without a readable review id, from %s", form.action, form.actor)
        return SupportFormError(NOTICES["stale_form"])
    if form.action == SupportAction.CORRECT_LABEL:
        return await label_submitted(
            work,
            actor=form.actor,
            review_id=form.review_id,
            answer_id=form.answer_id,
            label=form.label,
        )
    if not form.text:
        return SupportFormError(NOTICES["empty"])
    if form.action == SupportAction.RESOLVE:
        return await resolve_submitted(
            work, team, actor=form.actor, review_id=form.review_id, note=form.text
        )
    if form.action == SupportAction.REPLY:
        return await reply_submitted(
            work, actor=form.actor, review_id=form.review_id, text=form.text
        )
    raise ValueError(f"no form submits {form.action}")
