"""Slack in HTTP mode: `serve` on a real port, requests signed as Slack signs them.

The real Bolt AsyncApp and AsyncWebClient talk to the loopback fake Web API; assertions are on
the request bodies the fake recorded and on stored rows. An event is recorded in the inbox before
Slack gets its answer, then processed and delivered in the background: `served.event` waits for
that (`settle`) unless a test looks at the moment of the answer itself.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.inbox import InboxWorker
from storage import inbox as inbox_q
from tests.fakes.serving import fail_first_call
from tests.fakes.slack_api import FakeSlackAPI, button_press, dm_event
from tests.fakes.slack_setup import (
    ALERTS,
    Served,
    ann_profile,
    answers,
    buttons,
    delivery_failures,
    inbox_rows,
    review_items,
    serving,
    settled,
    slack_settings,
    wait_until,
)

ANN = "U0ANN0001"
DM = "D0ANN0001"


@pytest.fixture
def fake() -> Iterator[FakeSlackAPI]:
    with FakeSlackAPI() as api:
        api.profiles[ANN] = ann_profile(ANN)
        yield api


@pytest.fixture
async def served(fake: FakeSlackAPI, tmp_path: Path) -> AsyncIterator[Served]:
    async with serving(slack_settings(fake, tmp_path)) as s:
        yield s


async def test_start_checks_the_token_and_reports_the_channel(
    fake: FakeSlackAPI, served: Served
) -> None:
    assert len(fake.requests("auth.test")) >= 1
    health = await served.http.get(f"{served.url}/healthz")
    assert health.json()["channels"] == ["slack (http)"]


async def test_a_full_survey_in_a_direct_message(fake: FakeSlackAPI, served: Served) -> None:
    response = await served.event(dm_event(ANN, "start"))
    assert response.status_code == 200
    # Recorded, then processed and delivered: the intro and the NPS question.
    intro, nps = fake.posted(DM)
    assert intro["text"].startswith("Hi Ann!")
    assert [len(row) for row in buttons(nps)] == [6, 5]  # NPS on two rows
    assert buttons(nps)[0][0] == ("0", "a:nps:0")

    assert (await served.interact(button_press(ANN, DM, nps, "a:nps:10"))).status_code == 200
    # The pressed question now shows the choice and has no buttons left.
    answered = fake.posted(DM)[1]
    assert buttons(answered) == []
    assert answered["text"].endswith("✓ 10")
    assert fake.last(DM)["text"] == "Great to hear! What did you like most?"

    await served.event(dm_event(ANN, "Quick & kind"))
    ces = fake.last(DM)
    assert [label for label, _ in buttons(ces)[0]] == ["1", "2", "3", "4", "5", "6", "7"]
    await served.event(dm_event(ANN, "6"))  # typed, not pressed: the buttons still close
    assert buttons(fake.posted(DM)[-2]) == []
    csat = fake.last(DM)
    assert buttons(csat)[0][4] == ("5 😍", "a:csat:5")
    await served.interact(button_press(ANN, DM, csat, "a:csat:5"))
    await served.event(dm_event(ANN, "no, that's all"))
    assert fake.last(DM)["text"] == "Thank you for your feedback, Ann!"

    assert answers(served.app, ANN) == [
        ("nps", 10, None),
        ("liked_most", None, "Quick & kind"),
        ("ces", 6, None),
        ("csat", 5, None),
        ("anything_else", None, "no, that's all"),
    ]
    assert review_items(served.app) == []
    (users_info,) = fake.requests("users.info")  # the profile is asked for once
    assert users_info.body["user"] == ANN


async def test_a_second_press_on_an_answered_question_is_refused(
    fake: FakeSlackAPI, served: Served
) -> None:
    await served.event(dm_event(ANN, "start"))
    nps = fake.last(DM)
    await served.interact(button_press(ANN, DM, nps, "a:nps:9"))
    # The delivery worker closed the question in place: the choice shows, the buttons are gone.
    closed = fake.posted(DM)[1]
    assert closed["ts"] == nps["ts"] and closed["text"].endswith("✓ 9")
    assert buttons(closed) == []
    await served.interact(button_press(ANN, DM, nps, "a:nps:2"))  # a stale client
    (notice,) = await fake.wait_for("chat.postEphemeral")
    assert notice.body == {"channel": DM, "user": ANN, "text": "Already answered: 9"}
    assert answers(served.app, ANN) == [("nps", 9, None)]
    assert fake.posted(DM)[1] == closed


async def test_retries_are_acknowledged_and_handled_once(
    fake: FakeSlackAPI, served: Served
) -> None:
    await served.event(dm_event(ANN, "start"))
    answer = dm_event(ANN, "7", event_id="Ev0RETRY01")
    first = await served.event(answer)
    retry = await served.event(
        answer, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    )
    assert (first.status_code, retry.status_code) == (200, 200)
    assert fake.texts(DM)[2:] == ["What would have made it a 10?"]
    assert answers(served.app, ANN) == [("nps", 7, None)]
    assert [r.event_key for r in inbox_rows(served.app)].count("Ev0RETRY01") == 1


async def test_an_event_is_recorded_before_slack_gets_its_answer(
    fake: FakeSlackAPI, served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def paused(self: InboxWorker, limit: int) -> int:
        return 0  # the worker finds nothing: whatever is stored was stored by the listener

    monkeypatch.setattr(InboxWorker, "_process", paused)
    start = dm_event(ANN, "start", event_id="Ev0FIRST01")
    assert (await served.event(start, settle=False)).status_code == 200
    (row,) = inbox_rows(served.app)
    assert (row.channel, row.event_key, row.lane) == ("slack", "Ev0FIRST01", f"slack:{ANN}")
    assert row.processed_at is None
    assert row.body["event"]["text"] == "start"
    assert row.body["cxbot_profile"] == {"first_name": "Ann", "last_name": "Lee", "locale": "en-US"}
    assert fake.requests("chat.postMessage") == []  # nothing handled yet

    monkeypatch.undo()  # the worker takes it up at its next look
    await settled(served.app)
    assert fake.posted(DM)[0]["text"].startswith("Hi Ann!")
    monkeypatch.setattr(InboxWorker, "_process", paused)
    press = button_press(ANN, DM, fake.last(DM), "a:nps:6")
    assert (await served.interact(press, settle=False)).status_code == 200
    stamp = press["actions"][0]["action_ts"]
    assert [(r.event_key, r.processed_at) for r in inbox_rows(served.app)][1:] == [
        (f"action:{ANN}:{stamp}", None)
    ]
    monkeypatch.undo()
    await settled(served.app)
    assert answers(served.app, ANN) == [("nps", 6, None)]


async def test_forged_signatures_and_stale_timestamps_are_rejected(
    fake: FakeSlackAPI, served: Served
) -> None:
    start = dm_event(ANN, "start")
    forged = await served.event(start, secret="not-the-signing-secret")
    stale = await served.event(start, timestamp=int(time.time()) - 6 * 60)
    assert (forged.status_code, stale.status_code) == (401, 401)
    unsigned = await served.http.post(f"{served.url}/slack/events", json=start)
    assert unsigned.status_code == 401
    assert fake.requests("chat.postMessage") == []
    # The same event, signed now, is handled: the refusals recorded nothing.
    assert (await served.event(start)).status_code == 200
    assert len(fake.posted(DM)) == 2


async def test_a_detractor_is_alerted_in_the_support_channel(
    fake: FakeSlackAPI, served: Served
) -> None:
    await served.event(dm_event(ANN, "start"))
    await served.interact(button_press(ANN, DM, fake.last(DM), "a:nps:3"))
    await served.event(dm_event(ANN, "Nobody answered, I want a refund"))
    await wait_until(lambda: "refund" in str(fake.posted(ALERTS)), what="the alert")
    assert len(fake.requests("chat.postMessage", channel=ALERTS)) == 1  # then updated in place
    alert = fake.last(ALERTS)
    text = str(alert["blocks"])
    assert "Flagged reply #1 · open" in text
    assert "Ann Lee (U0ANN0001)" in text and "*Channel*\\nslack" in text
    assert "NPS 3 of 10" in text
    assert "Nobody answered, I want a refund" in text
    assert "NPS 3 (detractor)" in text and "mentions 'refund'" in text
    assert [label for label, _ in buttons(alert)[0]] == [
        "Acknowledge",
        "Resolve",
        "Reply to customer",
        "Correct label",  # the text "Nobody answered, I want a refund" may be relabelled
    ]
    assert [i.status for i in review_items(served.app)] == ["open"]
    assert delivery_failures(served.app) == []


async def test_the_url_verification_challenge_is_answered(served: Served) -> None:
    body = {
        "token": "legacy",
        "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
        "type": "url_verification",
    }
    response = await served.event(body)
    assert response.status_code == 200
    assert response.json() == {"challenge": body["challenge"]}


async def test_an_event_that_could_not_be_recorded_is_refused_and_recorded_on_retry(
    fake: FakeSlackAPI, served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_first_call(monkeypatch, inbox_q, "record_updates_now")
    start = dm_event(ANN, "start", event_id="Ev0FLAKY01")
    assert (await served.event(start)).status_code == 500  # Slack will send it again
    assert inbox_rows(served.app) == [] and fake.requests("chat.postMessage") == []
    retry = await served.event(start, headers={"X-Slack-Retry-Num": "1"})
    assert retry.status_code == 200
    assert len(fake.posted(DM)) == 2


async def test_an_event_whose_processing_failed_is_processed_again(
    fake: FakeSlackAPI, served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot import engine

    fail_first_call(monkeypatch, engine.conv_q, "start_conversation")
    start = dm_event(ANN, "start", event_id="Ev0FLAKY02")
    assert (await served.event(start)).status_code == 200  # recorded: Slack need not retry
    assert len(fake.posted(DM)) == 2  # the inbox worker tried again a second later
    (row,) = inbox_rows(served.app)
    assert row.attempts == 1 and row.processed_at is not None  # one failed attempt, then done


async def test_a_reply_slack_refuses_is_kept_and_comes_back_when_the_customer_writes(
    fake: FakeSlackAPI, served: Served
) -> None:
    await served.event(dm_event(ANN, "start"))
    fake.fail("chat.postMessage", "channel_not_found", channel=DM)
    answer = dm_event(ANN, "9", event_id="Ev0LOST0001")
    assert (await served.event(answer)).status_code == 200
    assert (await served.event(answer, headers={"X-Slack-Retry-Num": "1"})).status_code == 200
    assert delivery_failures(served.app) == [
        ("survey", ANN, f"chat.postMessage to {DM}: channel_not_found")
    ]
    lost = fake.requests("chat.postMessage", channel=DM)[-1]
    assert lost.body["text"] == "Great to hear! What did you like most?"

    await served.event(dm_event(ANN, "hello? anyone there?"))
    assert fake.texts(DM)[-2:] == [
        "Sorry, my last message didn't reach you. Here it is again:",
        "Great to hear! What did you like most?",
    ]
    assert answers(served.app, ANN) == [("nps", 9, None)]  # not an answer to an unseen question
    await served.event(dm_event(ANN, "Quick & kind"))
    assert answers(served.app, ANN) == [("nps", 9, None), ("liked_most", None, "Quick & kind")]


async def test_a_rate_limit_holds_the_customers_messages_back_until_slack_allows(
    fake: FakeSlackAPI, served: Served
) -> None:
    await served.event(dm_event(ANN, "start"))
    # Waited out in line once, then by the outbox (the customer's later messages wait too).
    fake.fail("chat.postMessage", "ratelimited", status=429, retry_after=0.5, times=2, channel=DM)
    await served.event(dm_event(ANN, "9"))
    await wait_until(
        lambda: fake.texts(DM)[-1] == "Great to hear! What did you like most?",
        what="the next question",
    )
    assert [c.status for c in fake.requests("chat.postMessage", channel=DM)][-3:] == [429, 429, 200]
    assert delivery_failures(served.app) == []
