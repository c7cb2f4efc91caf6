"""Full conversations through the in-memory channel: what the bot says and what gets stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import col, select

from adapters.console import MemoryChannel
from bot.app import App, build_app
from bot.config import Settings, load_settings
from bot.errors import UnknownFlowError
from bot.messages import ChoiceStyle, IncomingMessage, MessageKind
from storage.customers import set_unreachable
from storage.database import transaction
from storage.tables import Answer, Conversation, Customer, ReviewItem


async def open_survey(app: App, user: str = "ann", **kwargs: object) -> MemoryChannel:
    """A customer's channel with the survey opened (the bot's opening messages queued)."""
    channel = MemoryChannel(
        app.engine.handle,
        user_id=user,
        locale=kwargs.get("locale"),  # type: ignore[arg-type]
        first_name=kwargs.get("first_name"),  # type: ignore[arg-type]
    )
    channel.receive(await app.engine.begin(channel="console", user_id=user, **kwargs))  # type: ignore[arg-type]
    return channel


def answers(app: App, user: str = "ann") -> list[Answer]:
    with transaction(app.db) as s:
        cust = s.exec(select(Customer).where(Customer.external_id == user)).one()
        return list(
            s.exec(select(Answer).where(Answer.customer_id == cust.id).order_by(col(Answer.id)))
        )


def conversations(app: App, user: str = "ann") -> list[Conversation]:
    with transaction(app.db) as s:
        cust = s.exec(select(Customer).where(Customer.external_id == user)).one()
        stmt = select(Conversation).where(Conversation.customer_id == cust.id)
        return list(s.exec(stmt.order_by(col(Conversation.id))))


def reviews(app: App) -> list[ReviewItem]:
    with transaction(app.db) as s:
        return list(s.exec(select(ReviewItem).order_by(col(ReviewItem.id))))


def asked(channel: MemoryChannel) -> str | None:
    """The id of the question the bot asked last among the unread messages (reads them all)."""
    return next((m.question_id for m in reversed(channel.pop_all()) if m.question_id), None)


async def test_promoter_path_completes_and_stores_every_answer(app: App) -> None:
    ch = await open_survey(app, first_name="Ann")
    intro, nps_q = ch.pop_all()
    assert intro.text.startswith("Hi Ann! We'd love your feedback on your recent request.")
    assert nps_q.question_id == "nps"
    assert [c.label for c in nps_q.choices] == [str(i) for i in range(11)]
    assert nps_q.choices[9].payload == "a:nps:9"
    assert nps_q.choice_style == ChoiceStyle.SCALE

    await ch.push("9")
    assert ch.pop().text == "Great to hear! What did you like most?"
    await ch.push("Great support, thanks!")
    assert asked(ch) == "ces"
    await ch.push("6")
    assert asked(ch) == "csat"
    await ch.push("5")
    assert asked(ch) == "anything_else"
    await ch.push("")
    assert ch.pop_all()[-1].text == "Thank you for your feedback, Ann!"

    stored = answers(app)
    assert [(a.question_id, a.value_int, a.value_text, a.skipped) for a in stored] == [
        ("nps", 9, None, False),
        ("liked_most", None, "Great support, thanks!", False),
        ("ces", 6, None, False),
        ("csat", 5, None, False),
        ("anything_else", None, None, True),
    ]
    assert {(a.flow_id, a.flow_version) for a in stored} == {("post_interaction", 1)}
    assert stored[0].raw_text == "9" and stored[2].scale_min == 1 and stored[2].scale_max == 7
    assert [c.state for c in conversations(app)] == ["completed"]
    assert reviews(app) == []


async def test_detractor_path_asks_what_to_fix_and_flags_for_review(any_db_app: App) -> None:
    app = any_db_app  # SQLite and PostgreSQL
    ch = await open_survey(app)
    await ch.push("3")
    assert asked(ch) == "fix_first"
    await ch.push("Nobody answered my emails for a week")
    await ch.push("2")  # CES 2 of 7
    await ch.push("1")  # CSAT 1 of 5
    await ch.push("skip")
    assert [c.state for c in conversations(app)] == ["completed"]
    (item,) = reviews(app)
    assert item.status == "open"
    assert [r["code"] for r in item.reasons] == ["nps_detractor", "low_ces", "low_csat"]
    ids = {a.question_id: a.id for a in answers(app)}
    assert [r["answer_id"] for r in item.reasons] == [ids["nps"], ids["ces"], ids["csat"]]


async def test_passive_gets_its_own_follow_up(app: App) -> None:
    ch = await open_survey(app)
    await ch.push("7")
    assert asked(ch) == "make_it_ten"


@pytest.mark.parametrize(
    ("typed", "value"),
    [("8/10", 8), ("eight", 8), (" 9 !", 9), ("9️⃣", 9), ("🔟", 10), ("I'd say 8 out of 10", 8)],
)
async def test_nps_forms_people_type(app: App, typed: str, value: int) -> None:
    ch = await open_survey(app)
    await ch.push(typed)
    assert answers(app)[0].value_int == value
    assert answers(app)[0].raw_text == typed


@pytest.mark.parametrize(("typed", "value"), [("★★★★☆", 4), ("⭐⭐⭐⭐", 4), ("two", 2)])
async def test_csat_stars(app: App, typed: str, value: int) -> None:
    ch = await open_survey(app)
    for line in ["10", "", "7"]:
        await ch.push(line)
    assert asked(ch) == "csat"
    await ch.push(typed)
    assert answers(app)[-1].question_id == "csat"
    assert answers(app)[-1].value_int == value


async def test_buttons_answer_and_stale_or_forged_buttons_do_not(app: App) -> None:
    ch = await open_survey(app)
    await ch.press("a:nps:10")
    assert asked(ch) == "liked_most"
    await ch.push("")
    assert asked(ch) == "ces"
    await ch.press("a:nps:3")  # a double tap on the earlier question's keyboard
    hint, again = ch.pop_all()
    assert hint.text.startswith("That button belongs to an earlier question")
    assert again.question_id == "ces"
    await ch.press("a:ces:99")  # forged payload
    assert "from 1 to 7" in ch.pop_all()[0].text
    stored = answers(app)
    assert [(a.question_id, a.value_int, a.raw_text) for a in stored] == [
        ("nps", 10, "a:nps:10"),
        ("liked_most", None, ""),
    ]


async def test_forged_buttons_of_earlier_questions_do_not_count_as_misses(app: App) -> None:
    """Issue 12: a flood of old or forged payloads for earlier questions is not a miss at the
    current question (each gets the current question again; nothing is stored)."""
    ch = await open_survey(app)
    await ch.press("a:nps:10")
    await ch.push("")
    ch.pop_all()
    for forged in ("a:nps:0", "a:liked_most:x", "a:nope:1", "junk"):
        await ch.press(forged)
        hint, again = ch.pop_all()
        assert hint.text.startswith("That button belongs to an earlier question")
        assert again.question_id == "ces"
    assert conversations(app)[0].invalid_attempts == 0
    await ch.push("6")
    assert [(a.question_id, a.value_int) for a in answers(app)][-1] == ("ces", 6)


async def test_bad_answers_reask_with_hint_then_show_choices(app: App) -> None:
    ch = await open_survey(app)
    ch.pop_all()
    await ch.push("11")
    (hint,) = ch.pop_all()
    assert hint.text == "That's outside the scale: please pick a number from 0 to 10."
    await ch.push("banana")
    hint, question = ch.pop_all()
    assert hint.text == "Please answer with a number from 0 to 10."
    assert question.question_id == "nps" and len(question.choices) == 11
    await ch.push("7 or 8")
    assert "just one whole number" in ch.pop_all()[0].text
    assert answers(app) == []
    await ch.push("8")
    assert [a.value_int for a in answers(app)] == [8]
    assert conversations(app)[0].invalid_attempts == 0


async def test_skip_and_empty_lines(app: App) -> None:
    ch = await open_survey(app)
    ch.pop_all()
    await ch.push("skip")  # NPS is required
    hint, again = ch.pop_all()
    assert hint.text == "This question needs an answer to go on."
    assert again.question_id == "nps"
    await ch.push("")
    assert ch.pop_all()[0].text == "Please type an answer."
    await ch.push("4")
    assert asked(ch) == "fix_first"
    await ch.push("Skip")  # optional: skipped
    assert asked(ch) == "ces"
    assert [(a.question_id, a.skipped) for a in answers(app)] == [
        ("nps", False),
        ("fix_first", True),
    ]


async def test_help_explains_and_repeats_the_question(app: App) -> None:
    ch = await open_survey(app)
    ch.pop_all()
    await ch.push("help")
    help_text, question = ch.pop_all()
    assert "'stop'" in help_text.text
    assert question.question_id == "nps"


async def test_stop_opts_out_until_the_customer_starts_again(app: App) -> None:
    ch = await open_survey(app)
    await ch.push("5")
    await ch.push("unsubscribe")
    assert ch.pop_all()[-1].text.startswith("Done: you won't receive any more surveys")
    assert [c.state for c in conversations(app)] == ["opted_out"]
    with transaction(app.db) as s:
        assert s.exec(select(Customer)).one().opted_out_at is not None

    # An invitation (or a new console session) now only says they are unsubscribed.
    again = await app.engine.begin(channel="console", user_id="ann")
    assert [m.text for m in again] == [
        "You've unsubscribed from our surveys, so I won't ask you anything. "
        "Send 'start' if you'd like to give feedback again."
    ]
    await ch.push("9")
    assert ch.pop_all()[0].text.startswith("You've unsubscribed")
    assert len(conversations(app)) == 1

    await ch.push("start")  # the customer asks: opted back in
    assert asked(ch) == "nps"
    with transaction(app.db) as s:
        assert s.exec(select(Customer)).one().opted_out_at is None
    assert [c.state for c in conversations(app)] == ["opted_out", "active"]


async def test_restart_resumes_where_the_customer_was(settings: Settings) -> None:
    first = build_app(settings)
    ch = await open_survey(first)
    await ch.push("3")
    await ch.push("The wait")
    first.close()  # the process goes away between two messages

    second = build_app(settings)
    try:
        resumed = await second.engine.begin(channel="console", user_id="ann")
        assert resumed[0].text == "Welcome back! Let's pick up where we left off."
        assert resumed[-1].question_id == "ces"
        ch2 = MemoryChannel(second.engine.handle, user_id="ann")
        for line in ["4", "4", ""]:
            await ch2.push(line)
        assert [a.question_id for a in answers(second)] == [
            "nps",
            "fix_first",
            "ces",
            "csat",
            "anything_else",
        ]
        assert [c.state for c in conversations(second)] == ["completed"]
    finally:
        second.close()


async def test_two_customers_interleaved_keep_separate_state(app: App) -> None:
    ann = await open_survey(app, "ann")
    bob = await open_survey(app, "bob")
    await ann.push("10")
    await bob.push("2")
    assert asked(ann) == "liked_most"
    assert asked(bob) == "fix_first"
    await bob.push("slow")
    await ann.push("fast")
    assert asked(ann) == "ces" and asked(bob) == "ces"
    assert [a.value_text for a in answers(app, "ann") if a.question_id == "liked_most"] == ["fast"]
    assert [a.value_text for a in answers(app, "bob") if a.question_id == "fix_first"] == ["slow"]
    assert len(reviews(app)) == 1  # only bob's NPS 2


async def test_huge_text_is_truncated_stored_and_the_customer_told(app: App) -> None:
    ch = await open_survey(app)
    await ch.push("2")
    ch.pop_all()
    await ch.push("x" * 100_000)
    note, next_question = ch.pop_all()
    assert note.text == "(Your message was long, so we kept the first 2000 characters.)"
    assert next_question.question_id == "ces"
    stored = answers(app)[-1]
    assert stored.truncated and stored.value_text == "x" * 2000


async def test_messages_after_the_thanks_are_kept_as_late_comments(app: App) -> None:
    ch = await open_survey(app)
    for line in ["9", "", "7", "5", ""]:
        await ch.push(line)
    ch.pop_all()
    await ch.push("Oh, and the agent's name was Sam")
    assert ch.pop_all()[0].text == "Thanks, we've added this to your feedback."
    late = answers(app)[-1]
    assert (late.question_id, late.value_text) == (
        "_late_comment",
        "Oh, and the agent's name was Sam",
    )
    await ch.push("")
    assert ch.pop_all()[0].text.startswith("There's no survey open right now")


async def test_late_comments_are_capped_per_survey_but_all_are_thanked(app: App) -> None:
    """Issue 12: a customer flooding a finished survey does not fill the database."""
    ch = await open_survey(app)
    for line in ["9", "", "7", "5", ""]:
        await ch.push(line)
    ch.pop_all()
    for i in range(8):
        await ch.push(f"note {i}")
        assert ch.pop_all()[0].text == "Thanks, we've added this to your feedback."
    late = [a.value_text for a in answers(app) if a.late]
    assert late == [f"note {i}" for i in range(5)]  # [survey] max_late_comments = 5


async def test_help_and_skip_after_the_thanks_are_not_feedback(app: App) -> None:
    ch = await open_survey(app)
    for line in ["9", "", "7", "5", ""]:
        await ch.push(line)
    stored = len(answers(app))
    ch.pop_all()
    await ch.push("help")
    help_text, no_survey = ch.pop_all()
    assert help_text.text.startswith("I'm collecting your feedback.")
    assert no_survey.text.startswith("There's no survey open right now")
    await ch.push("skip")
    (reply,) = ch.pop_all()
    assert reply.text.startswith("There's no survey open right now")
    assert len(answers(app)) == stored


async def test_unsupported_messages_get_a_polite_reply(app: App) -> None:
    ch = await open_survey(app)
    ch.pop_all()
    await ch.push("", kind=MessageKind.UNSUPPORTED)
    sorry, question = ch.pop_all()
    assert sorry.text.startswith("Sorry, I can only read text")
    assert question.question_id == "nps"
    assert answers(app) == []


async def test_post_purchase_yes_no_branching_and_choices(app: App) -> None:
    ch = await open_survey(app, flow_id="post_purchase", context={"order_id": "order A-17"})
    intro = ch.pop_all()[0]
    assert "order A-17" in intro.text
    await ch.push("👎")
    assert asked(ch) == "what_went_wrong"
    await ch.push("Arrived two days late")
    question = ch.pop_all()[-1]
    assert question.choice_style == ChoiceStyle.OPTIONS
    assert question.choices[0].label == "Price"
    await ch.push("2")  # second option by its number
    assert [(a.question_id, a.value_text) for a in answers(app)][-1] == ("mattered_most", "quality")

    bob = await open_survey(app, "bob", flow_id="post_purchase")
    await bob.push("yes!")
    assert asked(bob) == "mattered_most"
    await bob.push("fast delivery")
    assert answers(app, "bob")[-1].value_text == "delivery"
    assert answers(app, "bob")[0].value_int == 1 and answers(app, "bob")[0].value_text == "yes"


async def test_customer_locale_picks_the_translation(app: App) -> None:
    ch = await open_survey(app, locale="es-MX", first_name="Lucía")
    intro, question = ch.pop_all()
    assert intro.text.startswith("¡Hola, Lucía!")
    assert question.text.startswith("¿Qué probabilidad hay")
    await ch.push("once")
    assert ch.pop_all()[0].text.startswith("Responde con un número")
    assert conversations(app)[0].locale == "es"


async def test_unknown_flow_is_refused_before_anything_is_stored(app: App) -> None:
    with pytest.raises(
        UnknownFlowError, match="unknown flow 'nope'; known flows: post_interaction"
    ):
        await app.engine.begin(channel="console", user_id="ann", flow_id="nope")
    with transaction(app.db) as s:
        assert s.exec(select(Customer)).all() == []


FLOW_V1 = """
id = "mini"
name = "Mini"
[[questions]]
id = "csat"
type = "csat"
text = "Version one: how satisfied?"
[[questions]]
id = "why"
type = "text"
text = "Version one: why?"
"""


async def test_a_conversation_finishes_under_the_flow_version_it_started_with(
    tmp_path: Path,
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "mini.toml").write_text(FLOW_V1)
    env = {"CXBOT_GENERAL__DATA_DIR": str(tmp_path / "data"), "CXBOT_FLOWS__DIRS": str(flows)}
    first = build_app(load_settings(None, environ=env))
    ch = await open_survey(first, flow_id="mini")
    await ch.push("4")
    first.close()

    (flows / "mini.toml").write_text(FLOW_V1.replace("Version one", "Version two"))
    second = build_app(load_settings(None, environ=env))
    try:
        resumed = await second.engine.begin(channel="console", user_id="ann", flow_id="mini")
        assert resumed[-1].text == "Version one: why?"
        ch2 = MemoryChannel(second.engine.handle, user_id="ann")
        await ch2.push("fine")
        fresh = await open_survey(second, "bob", flow_id="mini")
        assert fresh.pop_all()[-1].text == "Version two: how satisfied?"
        assert {a.flow_version for a in answers(second)} == {1}
        assert [c.flow_version for c in conversations(second, "bob")] == [2]
    finally:
        second.close()


async def test_a_redelivered_event_is_processed_once(app: App) -> None:
    await open_survey(app)
    msg = IncomingMessage(channel="console", user_id="ann", text="9", event_id="update-41")
    first = await app.engine.handle(msg)
    again = await app.engine.handle(msg)
    assert first[-1].question_id == "liked_most"
    assert again == []
    assert [a.value_int for a in answers(app)] == [9]


async def test_unreachable_customers_become_reachable_when_they_write(app: App) -> None:
    ch = await open_survey(app)
    with transaction(app.db) as s:  # as the delivery worker records a blocked bot
        stored = s.exec(select(Customer)).one()
        set_unreachable(s, customer=stored, reason="blocked the bot")
    with transaction(app.db) as s:
        cust = s.exec(select(Customer)).one()
        assert (cust.unreachable_reason, cust.unreachable_at is not None) == (
            "blocked the bot",
            True,
        )
    await ch.push("9")
    with transaction(app.db) as s:
        assert s.exec(select(Customer)).one().unreachable_at is None
