"""The support desk's decisions on alert buttons and forms, without Slack or a database.

`Desk` below is an in-memory `Workflow`: items by id with a status and a history, as
bot.reviews keeps them; each test reads what the decision returned and what it changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import pytest

from bot.errors import DeliveryError, LabelCorrectionError, ReviewNotFoundError
from bot.messages import (
    ReviewCard,
    ReviewStep,
    ReviewText,
    SupportAction,
    SupportDone,
    SupportForm,
    SupportFormError,
    SupportNotice,
    SupportPress,
    SupportSubmission,
)
from bot.support_actions import (
    NOTICES,
    PlainNames,
    SupportTeam,
    on_press,
    on_submit,
    status_step,
)

AGENT, OTHER, STRANGER = "U0AGENT01", "U0AGENT02", "U0OTHER01"
AT = datetime(2026, 11, 22, 12, 1, tzinfo=UTC)


class Names:
    """Slack-like names: mentions in angle brackets, plain names from a directory."""

    def __init__(self, directory: dict[str, str]) -> None:
        self.directory = directory
        self.asked: list[str] = []

    def mention(self, user_id: str) -> str:
        return f"<@{user_id}>"

    async def plain_name(self, user_id: str) -> str:
        self.asked.append(user_id)
        return self.directory.get(user_id, user_id)


@dataclass
class Desk:
    """An in-memory workflow with the semantics of bot.reviews (actors as given)."""

    cards: dict[int, ReviewCard] = field(default_factory=dict)
    replies: list[tuple[int, str, str]] = field(default_factory=list)
    refuse_replies: str | None = None  # DeliveryError text: the channel is not served here
    # (answer id, actor, old label, new label) of each stored correction
    corrections: list[tuple[int, str, str, str]] = field(default_factory=list)

    def add(
        self,
        review_id: int = 1,
        status: str = "open",
        *steps: ReviewStep,
        texts: tuple[ReviewText, ...] = (),
    ) -> None:
        self.cards[review_id] = ReviewCard(
            review_id=review_id,
            status=status,
            customer="Ann (U0ANN0001)",
            channel="slack",
            flow_id="post_interaction",
            texts=texts,
            history=steps,
        )

    def _get(self, review_id: int) -> ReviewCard:
        if review_id not in self.cards:
            raise ReviewNotFoundError(f"review item #{review_id} does not exist")
        return self.cards[review_id]

    def _step(self, review_id: int, action: str, actor: str, note: str | None, status: str) -> None:
        card = self._get(review_id)
        step = ReviewStep(action, actor, AT, note)
        self.cards[review_id] = replace(card, status=status, history=(*card.history, step))

    async def card(self, *, review_id: int) -> ReviewCard | None:
        return self.cards.get(review_id)

    async def acknowledge(self, *, review_id: int, actor: str) -> bool:
        if self._get(review_id).status != "open":
            return False
        self._step(review_id, "acknowledged", actor, None, "acknowledged")
        return True

    async def resolve(self, *, review_id: int, actor: str, note: str) -> bool:
        if self._get(review_id).status == "resolved":
            return False
        self._step(review_id, "resolved", actor, note, "resolved")
        return True

    async def correct_label(
        self, *, review_id: int, answer_id: int, actor: str, label: str
    ) -> None:
        card = self._get(review_id)
        if label not in LABELS:
            raise LabelCorrectionError(f"unknown sentiment label {label!r}")
        found = [t for t in card.texts if t.answer_id == answer_id]
        if not found:
            raise ReviewNotFoundError(f"review item #{review_id} has no text answer #{answer_id}")
        (text,) = found
        if text.label == label:
            raise LabelCorrectionError(f"the text is labelled {label} already")
        fixed = replace(text, label=label, corrected_from=text.label, corrected_by=actor)
        texts = tuple(fixed if t is text else t for t in card.texts)
        self.cards[review_id] = replace(card, texts=texts)
        self._step(review_id, "label_corrected", actor, f"{text.label} → {label}", card.status)
        self.corrections.append((answer_id, actor, text.label or "unlabelled", label))

    async def reply(self, *, review_id: int, actor: str, text: str) -> None:
        card = self._get(review_id)
        if self.refuse_replies is not None:
            raise DeliveryError(self.refuse_replies)
        status = "acknowledged" if card.status == "open" else card.status
        self._step(review_id, "replied", actor, text, status)
        self.replies.append((review_id, actor, text))


@pytest.fixture
def desk() -> Desk:
    work = Desk()
    work.add(1)
    return work


@pytest.fixture
def names() -> Names:
    return Names({AGENT: "Alice Agent"})


@pytest.fixture
def team(names: Names) -> SupportTeam:
    return SupportTeam(frozenset({AGENT, OTHER}), names)


def press(action: SupportAction, actor: str = AGENT, review_id: int = 1) -> SupportPress:
    return SupportPress(action=action, actor=actor, review_id=review_id)


def form(
    action: SupportAction, text: str, actor: str | None = AGENT, review_id: int | None = 1
) -> SupportSubmission:
    return SupportSubmission(action=action, actor=actor, review_id=review_id, text=text)


ACK, RESOLVE, REPLY = SupportAction.ACKNOWLEDGE, SupportAction.RESOLVE, SupportAction.REPLY
CORRECT = SupportAction.CORRECT_LABEL
LABELS = ("negative", "neutral", "positive")
SLOW = ReviewText("why", "Too slow", "negative 91%", answer_id=31, label="negative")
NICE = ReviewText("liked", "Nice staff", None, answer_id=32)  # pending
GONE = ReviewText("old", "From an older alert", None)  # no answer id: cannot be corrected


def label_form(
    answer_id: int | None = 31,
    label: str | None = "neutral",
    actor: str | None = AGENT,
    review_id: int | None = 2,
) -> SupportSubmission:
    return SupportSubmission(
        action=CORRECT,
        actor=actor,
        review_id=review_id,
        text="",
        answer_id=answer_id,
        label=label,
    )


@pytest.fixture
def labelled(desk: Desk) -> Desk:
    """Item 1 without texts, item 2 with a labelled and a pending text (and one without id)."""
    desk.add(2, "resolved", texts=(SLOW, NICE, GONE))
    return desk


async def test_acknowledge_changes_an_open_item_and_says_nothing(
    desk: Desk, team: SupportTeam
) -> None:
    assert await on_press(desk, team, press(ACK)) == SupportDone()
    assert desk.cards[1].status == "acknowledged"
    assert [(s.action, s.actor) for s in desk.cards[1].history] == [("acknowledged", AGENT)]


@pytest.mark.parametrize("action", [ACK, RESOLVE, REPLY, CORRECT])
async def test_presses_from_outside_the_team_are_refused_naming_who_can(
    desk: Desk, team: SupportTeam, action: SupportAction
) -> None:
    outcome = await on_press(desk, team, press(action, actor=STRANGER))
    assert outcome == SupportNotice(
        f"Sorry, only the support team (<@{AGENT}>, <@{OTHER}>) can work on these alerts."
    )
    assert desk.cards[1].status == "open" and desk.cards[1].history == ()


async def test_a_team_of_nobody_says_so(desk: Desk) -> None:
    outcome = await on_press(desk, SupportTeam(frozenset()), press(ACK))
    assert outcome == SupportNotice(NOTICES["not_support"].format(who="none"))


async def test_resolve_and_reply_ask_for_their_text_first(desk: Desk, team: SupportTeam) -> None:
    assert await on_press(desk, team, press(RESOLVE)) == SupportForm(
        action=RESOLVE, review_id=1, customer="Ann (U0ANN0001)"
    )
    assert await on_press(desk, team, press(REPLY)) == SupportForm(
        action=REPLY, review_id=1, customer="Ann (U0ANN0001)"
    )
    assert desk.cards[1].history == ()  # nothing done before the form is sent


@pytest.mark.parametrize("action", [ACK, RESOLVE, REPLY, CORRECT])
async def test_a_press_on_an_item_that_is_gone_says_so(
    desk: Desk, team: SupportTeam, action: SupportAction
) -> None:
    outcome = await on_press(desk, team, press(action, review_id=999))
    assert outcome == SupportNotice("That flagged reply no longer exists.")


async def test_out_of_date_buttons_say_who_changed_the_item_and_when(
    desk: Desk, team: SupportTeam
) -> None:
    await desk.acknowledge(review_id=1, actor=OTHER)
    assert await on_press(desk, team, press(ACK)) == SupportNotice(
        f"Flagged reply #1 is already acknowledged (by <@{OTHER}> at 2026-11-22 12:01 UTC)."
    )
    await desk.resolve(review_id=1, actor=OTHER, note="Refunded")
    resolved = SupportNotice(
        f"Flagged reply #1 is already resolved (by <@{OTHER}> at 2026-11-22 12:01 UTC)."
    )
    assert await on_press(desk, team, press(ACK)) == resolved
    assert await on_press(desk, team, press(RESOLVE)) == resolved
    # Replying to the customer of a resolved item is still allowed.
    assert isinstance(await on_press(desk, team, press(REPLY)), SupportForm)


def test_the_status_step_is_the_latest_that_gave_the_status() -> None:
    steps = (
        ReviewStep("replied", OTHER, AT, "Hi"),
        ReviewStep("acknowledged", AGENT, AT),
        ReviewStep("resolved", OTHER, AT, "Done"),
        ReviewStep("replied", AGENT, AT, "Bye"),
    )
    card = ReviewCard(review_id=1, status="acknowledged", customer="", channel="", flow_id="")
    assert status_step(replace(card, history=steps[:2])) == steps[1]
    assert status_step(replace(card, history=steps[:1])) == steps[0]  # a reply acknowledges
    assert status_step(replace(card, status="resolved", history=steps)) == steps[2]
    assert status_step(replace(card, status="open", history=steps)) is None


async def test_resolve_stores_the_note_and_closes_the_form(desk: Desk, team: SupportTeam) -> None:
    assert await on_submit(desk, team, form(RESOLVE, "Refunded")) == SupportDone()
    assert desk.cards[1].status == "resolved"
    assert desk.cards[1].history[-1] == ReviewStep("resolved", AGENT, AT, "Refunded")


async def test_a_resolve_that_lost_the_race_keeps_its_form_and_names_the_winner(
    desk: Desk, team: SupportTeam, names: Names
) -> None:
    assert await on_submit(desk, team, form(RESOLVE, "Refunded")) == SupportDone()
    late = await on_submit(desk, team, form(RESOLVE, "Called", actor=OTHER))
    assert late == SupportFormError(
        "Already resolved by Alice Agent at 2026-11-22 12:01 UTC; your note was not saved."
    )
    assert names.asked == [AGENT]  # a plain name: a mention does not render in a form
    assert [s.note for s in desk.cards[1].history] == ["Refunded"]


async def test_a_reply_is_queued_and_closes_the_form(desk: Desk, team: SupportTeam) -> None:
    assert await on_submit(desk, team, form(REPLY, "Sorry, Ann")) == SupportDone()
    assert desk.replies == [(1, AGENT, "Sorry, Ann")]


async def test_a_reply_the_customer_cannot_get_from_here_keeps_the_form_with_why(
    desk: Desk, team: SupportTeam
) -> None:
    desk.refuse_replies = "the telegram channel is not configured in this cxbot"
    assert await on_submit(desk, team, form(REPLY, "Hello")) == SupportFormError(
        "Could not send your reply to the customer: "
        "the telegram channel is not configured in this cxbot"
    )
    assert desk.replies == [] and desk.cards[1].history == ()


@pytest.mark.parametrize(
    ("submitted", "error"),
    [
        (form(RESOLVE, "Done", actor=STRANGER), "Support users only."),
        (form(REPLY, "Hello", actor=None), "Support users only."),
        (form(RESOLVE, "Done", actor=STRANGER, review_id=None), "Support users only."),
        (form(RESOLVE, "Done", review_id=None), NOTICES["stale_form"]),
        (form(REPLY, "", review_id=None), NOTICES["stale_form"]),
        (form(RESOLVE, ""), "Please write something first."),
        (form(REPLY, ""), "Please write something first."),
        (form(RESOLVE, "Done", review_id=999), "That flagged reply no longer exists."),
        (form(REPLY, "Hello", review_id=999), "That flagged reply no longer exists."),
    ],
)
async def test_forms_that_cannot_be_acted_on_stay_open_and_change_nothing(
    desk: Desk, team: SupportTeam, submitted: SupportSubmission, error: str
) -> None:
    assert await on_submit(desk, team, submitted) == SupportFormError(error)
    assert desk.cards[1].status == "open" and desk.cards[1].history == ()
    assert desk.replies == []


async def test_an_acknowledge_form_is_not_a_thing(desk: Desk, team: SupportTeam) -> None:
    with pytest.raises(ValueError, match="no form submits"):
        await on_submit(desk, team, form(ACK, "x"))


async def test_without_a_directory_people_are_named_by_their_ids(desk: Desk) -> None:
    team = SupportTeam(frozenset({AGENT, OTHER}))
    assert isinstance(team.names, PlainNames)
    await desk.resolve(review_id=1, actor=OTHER, note="Refunded")
    assert await on_press(desk, team, press(RESOLVE)) == SupportNotice(
        f"Flagged reply #1 is already resolved (by {OTHER} at 2026-11-22 12:01 UTC)."
    )
    assert await on_submit(desk, team, form(RESOLVE, "Called")) == SupportFormError(
        f"Already resolved by {OTHER} at 2026-11-22 12:01 UTC; your note was not saved."
    )


# -- correcting a sentiment label -----------------------------------------------------------------


async def test_correct_label_asks_which_text_and_which_label(
    labelled: Desk, team: SupportTeam
) -> None:
    # Resolved or not: a label is training data, not part of the item's workflow.
    assert await on_press(labelled, team, press(CORRECT, review_id=2)) == SupportForm(
        action=CORRECT,
        review_id=2,
        customer="Ann (U0ANN0001)",
        texts=(SLOW, NICE),
        labels=LABELS,
    )
    assert labelled.corrections == [] and labelled.cards[2].history == ()


async def test_correct_label_on_an_item_without_texts_says_so(
    labelled: Desk, team: SupportTeam
) -> None:
    assert await on_press(labelled, team, press(CORRECT)) == SupportNotice(
        "Flagged reply #1 has no text answer whose label could be corrected."
    )


async def test_a_correction_is_stored_and_closes_the_form(
    labelled: Desk, team: SupportTeam
) -> None:
    assert await on_submit(labelled, team, label_form()) == SupportDone()
    assert await on_submit(labelled, team, label_form(32, "positive")) == SupportDone()
    assert labelled.corrections == [
        (31, AGENT, "negative", "neutral"),
        (32, AGENT, "unlabelled", "positive"),
    ]
    assert [t.label for t in labelled.cards[2].texts] == ["neutral", "positive", None]
    assert [s.action for s in labelled.cards[2].history] == ["label_corrected"] * 2


@pytest.mark.parametrize(
    ("submitted", "error"),
    [
        (label_form(actor=STRANGER), "Support users only."),
        (label_form(actor=None), "Support users only."),
        (label_form(review_id=None), NOTICES["stale_form"]),
        (label_form(answer_id=None), "Please choose the answer whose label to correct."),
        (label_form(label=None), "Please choose a label."),
        (
            label_form(label="angry"),
            "Label not corrected: unknown sentiment label 'angry'.",
        ),
        (
            label_form(label="negative"),
            "Label not corrected: the text is labelled negative already.",
        ),
        (label_form(answer_id=99), "That answer is not a text of flagged reply #2."),
        (label_form(review_id=1), "That answer is not a text of flagged reply #1."),
        (label_form(review_id=999), "That flagged reply no longer exists."),
    ],
)
async def test_label_forms_that_cannot_be_acted_on_stay_open_and_store_nothing(
    labelled: Desk, team: SupportTeam, submitted: SupportSubmission, error: str
) -> None:
    assert await on_submit(labelled, team, submitted) == SupportFormError(error)
    assert labelled.corrections == []
    assert labelled.cards[2].texts == (SLOW, NICE, GONE) and labelled.cards[2].history == ()
