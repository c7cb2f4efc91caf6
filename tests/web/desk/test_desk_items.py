"""One review item's page and its actions: what each stores, and the refusals (404, 409, 400,
403) that store nothing."""

from __future__ import annotations

import re

import pytest
from sqlmodel import col, select

from bot.app import App
from bot.desk_users import DeskAccount
from bot.privacy import erase_customer
from storage.database import transaction
from storage.tables import Customer, LabelCorrection, OutboxMessage, ReviewEvent, ReviewItem
from tests.fakes.desk_seed import MODEL_ID, MODEL_VERSION, flag, text_answer_id
from tests.web.desk.conftest import ADMIN, SUPPORT, Desk

XSS = "<img src=x onerror=alert(1)>"
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"


def item_row(app: App, review_id: int) -> ReviewItem:
    with transaction(app.db) as s:
        item = s.get(ReviewItem, review_id)
        assert item is not None
        return item


def events(app: App) -> list[tuple[str, str, str | None]]:
    with transaction(app.db) as s:
        return [
            (e.action, e.actor, e.note)
            for e in s.exec(select(ReviewEvent).order_by(col(ReviewEvent.id)))
        ]


def replies(app: App) -> list[tuple[str, str, str, int | None]]:
    """(channel, recipient, text, review id) of every reply queued for a customer."""
    with transaction(app.db) as s:
        rows = s.exec(select(OutboxMessage).where(OutboxMessage.purpose == "review_reply"))
        return [(r.channel, r.recipient, r.body["text"], r.review_item_id) for r in rows]


def corrections(app: App) -> list[tuple[int, str, str, str | None, str]]:
    with transaction(app.db) as s:
        rows = s.exec(select(LabelCorrection).order_by(col(LabelCorrection.id)))
        return [(c.answer_id, c.old_label, c.new_label, c.model_label, c.actor) for c in rows]


async def version(desk: Desk, review_id: int) -> str:
    page = await desk.client.get(f"/desk/items/{review_id}")
    assert page.status_code == 200, page.text
    found = re.search(r'name="version" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


async def act(desk: Desk, review_id: int, action: str, **fields: str) -> tuple[int, str]:
    """Send an action's form as the item page has it; (status, the page then shown)."""
    data = {"version": await version(desk, review_id), **fields}
    answer = await desk.post(
        f"/desk/items/{review_id}/{action}", data, page=f"/desk/items/{review_id}"
    )
    if answer.status_code == 303:
        assert answer.headers["location"] == f"/desk/items/{review_id}"
        shown = await desk.client.get(answer.headers["location"])
        return 303, shown.text
    return answer.status_code, answer.text


async def test_the_item_page_shows_conversation_scores_labels_reasons_and_history(
    as_support: Desk,
) -> None:
    review_id = await flag(as_support.app, "42", name="Bo", comment="rude agent")
    page = (await as_support.client.get(f"/desk/items/{review_id}")).text
    assert f"Review item #{review_id}" in page
    assert "Bo (42)" in page and "telegram" in page
    assert "How likely are you to recommend us" in page  # the bot's question ...
    assert 'class="msg from-customer"' in page and "rude agent" in page  # ... and the answers
    assert page.index("How likely") < page.index("rude agent")  # in order
    assert "NPS 2 (detractor)" in page
    assert "<span>NPS</span> <strong>2</strong>" in page
    assert '<span class="label negative">negative</span>' in page and "90%" in page
    assert f"model {MODEL_ID} · version {MODEL_VERSION}" in page
    assert "Nobody has acted on it yet." in page
    for action in ("acknowledge", "assign", "reply", "resolve", "label"):
        assert f'action="/desk/items/{review_id}/{action}"' in page
    assert f'action="/desk/items/{review_id}/reopen"' not in page  # it is open


@pytest.mark.parametrize("item_id", ["999", "0", "-1", "abc", "99999999999999999999", "²"])
async def test_an_item_that_does_not_exist_is_404(as_support: Desk, item_id: str) -> None:
    answer = await as_support.client.get(f"/desk/items/{item_id}")
    assert answer.status_code == 404
    assert "does not exist" in answer.text or "There is no review item" in answer.text


async def test_an_erased_customers_item_is_404_and_cannot_be_acted_on(as_support: Desk) -> None:
    review_id = await flag(as_support.app, "42")
    stale = await version(as_support, review_id)
    erase_customer(as_support.app.db, channel="telegram", user_id="42", by="test")
    assert (await as_support.client.get(f"/desk/items/{review_id}")).status_code == 404
    answer = await as_support.post(f"/desk/items/{review_id}/acknowledge", {"version": stale})
    assert answer.status_code == 404
    assert events(as_support.app) == []


async def test_acknowledge_stores_who_and_updates_the_alert(
    as_support: Desk, support: DeskAccount
) -> None:
    review_id = await flag(as_support.app, "42")
    status, page = await act(as_support, review_id, "acknowledge")
    assert status == 303
    assert f"Review item #{review_id} acknowledged." in page
    assert item_row(as_support.app, review_id).status == "acknowledged"
    assert item_row(as_support.app, review_id).first_ack_at is not None
    assert events(as_support.app) == [("acknowledged", f"desk:{SUPPORT}", None)]
    assert as_support.changed == [review_id]  # serve updates the Slack alert
    assert "acknowledged</strong> by bo@example.com" in page


async def test_a_double_submit_is_409_and_stores_nothing_more(as_support: Desk) -> None:
    review_id = await flag(as_support.app, "42")
    shown = await version(as_support, review_id)
    path = f"/desk/items/{review_id}/acknowledge"
    first = await as_support.post(path, {"version": shown})
    assert first.status_code == 303
    again = await as_support.post(path, {"version": shown})
    assert again.status_code == 409
    assert "Nothing was changed" in again.text and "changed since this page was shown" in again.text
    assert f"Review item #{review_id}" in again.text  # the page again, as it is now
    assert events(as_support.app) == [("acknowledged", f"desk:{SUPPORT}", None)]
    assert as_support.changed == [review_id]


async def test_an_action_that_no_longer_applies_is_409(as_support: Desk) -> None:
    review_id = await flag(as_support.app, "42")
    await act(as_support, review_id, "resolve", note="called them back")
    status, page = await act(as_support, review_id, "resolve", note="again")
    assert status == 409 and "resolved already" in page
    status, _ = await act(as_support, review_id, "reopen")
    assert status == 303
    status, page = await act(as_support, review_id, "reopen")
    assert status == 409 and "open already" in page
    assert [e[0] for e in events(as_support.app)] == ["resolved", "reopened"]


async def test_assign_to_me_to_someone_and_to_nobody(as_support: Desk, admin: DeskAccount) -> None:
    review_id = await flag(as_support.app, "42")
    status, page = await act(as_support, review_id, "assign", assignee="me")
    assert status == 303 and f"assigned to {SUPPORT}" in page
    assert item_row(as_support.app, review_id).assignee == f"desk:{SUPPORT}"
    await act(as_support, review_id, "assign", assignee=f"desk:{ADMIN}")
    assert item_row(as_support.app, review_id).assignee == f"desk:{ADMIN}"
    status, page = await act(as_support, review_id, "assign", assignee="")
    assert status == 303 and "assigned to nobody now" in page
    assert item_row(as_support.app, review_id).assignee is None
    assert [e[0] for e in events(as_support.app)] == ["assigned"] * 3


async def test_assign_to_someone_who_is_not_a_desk_user_is_400(as_support: Desk) -> None:
    review_id = await flag(as_support.app, "42")
    status, page = await act(as_support, review_id, "assign", assignee="desk:eve@example.com")
    assert status == 400
    assert "is not an enabled desk user" in page
    assert item_row(as_support.app, review_id).assignee is None
    assert events(as_support.app) == []


async def test_resolve_with_a_note_and_reopen(as_support: Desk) -> None:
    review_id = await flag(as_support.app, "42")
    status, page = await act(as_support, review_id, "resolve", note="refunded the order")
    assert status == 303 and "resolved." in page
    assert item_row(as_support.app, review_id).status == "resolved"
    assert f'action="/desk/items/{review_id}/reopen"' in page
    status, _ = await act(as_support, review_id, "reopen")
    assert status == 303
    assert item_row(as_support.app, review_id).status == "open"
    assert events(as_support.app) == [
        ("resolved", f"desk:{SUPPORT}", "refunded the order"),
        ("reopened", f"desk:{SUPPORT}", None),
    ]


@pytest.mark.parametrize(
    ("action", "fields", "message"),
    [
        ("resolve", {"note": "   "}, "The resolution note is empty"),
        ("reply", {"text": ""}, "The reply is empty"),
        ("reply", {"text": "x" * 4001}, "The reply is 4,001 characters long"),
        ("label", {"answer_id": "x", "label": "negative"}, "is not an answer id"),
        ("label", {"answer_id": "1", "label": "furious"}, "The label must be one of"),
    ],
)
async def test_a_bad_field_is_400_and_stores_nothing(
    as_support: Desk, action: str, fields: dict[str, str], message: str
) -> None:
    review_id = await flag(as_support.app, "42")
    status, page = await act(as_support, review_id, action, **fields)
    assert status == 400
    assert message in page
    assert events(as_support.app) == [] and replies(as_support.app) == []
    assert corrections(as_support.app) == []


async def test_a_form_without_the_version_is_400(as_support: Desk) -> None:
    review_id = await flag(as_support.app, "42")
    answer = await as_support.post(f"/desk/items/{review_id}/acknowledge", {})
    assert answer.status_code == 400
    assert "The page&#39;s version is empty" in answer.text
    assert events(as_support.app) == []


async def test_reply_is_queued_for_the_customer_on_their_channel_and_recorded(
    as_support: Desk,
) -> None:
    review_id = await flag(as_support.app, "42")
    status, page = await act(as_support, review_id, "reply", text="Sorry! We fixed it.")
    assert status == 303
    assert "queued; it is sent on their channel" in page
    assert replies(as_support.app) == [("telegram", "42", "Sorry! We fixed it.", review_id)]
    assert as_support.queued == [1]  # serve nudges the delivery worker
    assert item_row(as_support.app, review_id).status == "acknowledged"
    assert item_row(as_support.app, review_id).first_reply_at is not None
    assert events(as_support.app) == [("replied", f"desk:{SUPPORT}", "Sorry! We fixed it.")]
    assert 'class="msg from-support"' in page and "Sorry! We fixed it." in page


async def test_a_reply_to_a_customer_who_blocked_the_bot_is_409_and_stores_nothing(
    as_support: Desk,
) -> None:
    review_id = await flag(as_support.app, "42")
    shown = await version(as_support, review_id)
    with transaction(as_support.app.db) as s:
        customer = s.exec(select(Customer).where(Customer.external_id == "42")).one()
        customer.unreachable_at = customer.created_at
        customer.unreachable_reason = "Forbidden: bot was blocked by the user"
        s.add(customer)
    page = await as_support.client.get(f"/desk/items/{review_id}")
    assert "This customer cannot be reached" in page.text
    answer = await as_support.post(
        f"/desk/items/{review_id}/reply", {"version": shown, "text": "hello?"}
    )
    assert answer.status_code == 409
    assert "Nothing was changed" in answer.text and "blocked the bot" in answer.text
    assert replies(as_support.app) == [] and events(as_support.app) == []
    assert as_support.queued == []


async def test_a_reply_on_a_channel_not_served_here_is_409(as_support: Desk) -> None:
    review_id = await flag(as_support.app, "42")
    as_support.served.discard("telegram")
    status, page = await act(as_support, review_id, "reply", text="hello")
    assert status == 409
    assert "the telegram channel is not configured in this cxbot" in page
    assert replies(as_support.app) == [] and events(as_support.app) == []


async def test_correcting_a_label_keeps_the_models_and_stores_who_and_what(
    as_support: Desk,
) -> None:
    review_id = await flag(as_support.app, "42", comment="fine I guess", confidence=0.55)
    answer_id = text_answer_id(as_support.app, review_id)
    status, page = await act(
        as_support, review_id, "label", answer_id=str(answer_id), label="neutral"
    )
    assert status == 303
    assert "Label corrected to neutral" in page
    assert corrections(as_support.app) == [
        (answer_id, "negative", "neutral", "negative", f"desk:{SUPPORT}")
    ]
    assert "corrected by bo@example.com" in page and "(the model said negative)" in page
    assert events(as_support.app)[-1][0] == "label_corrected"
    assert as_support.changed == [review_id]
    status, page = await act(
        as_support, review_id, "label", answer_id=str(answer_id), label="neutral"
    )
    assert status == 400 and "labelled neutral already" in page
    assert len(corrections(as_support.app)) == 1


async def test_correcting_an_answer_of_another_item_is_404(as_support: Desk) -> None:
    mine = await flag(as_support.app, "42")
    other = await flag(as_support.app, "43")
    status, _ = await act(
        as_support,
        mine,
        "label",
        answer_id=str(text_answer_id(as_support.app, other)),
        label="positive",
    )
    assert status == 404
    assert corrections(as_support.app) == []


@pytest.mark.parametrize("action", ["acknowledge", "assign", "resolve", "reply", "reopen", "label"])
async def test_every_action_without_the_csrf_token_is_403_and_stores_nothing(
    as_support: Desk, action: str
) -> None:
    review_id = await flag(as_support.app, "42")
    data = {
        "version": await version(as_support, review_id),
        "note": "n",
        "text": "t",
        "assignee": "me",
        "answer_id": str(text_answer_id(as_support.app, review_id)),
        "label": "positive",
    }
    answer = await as_support.client.post(f"/desk/items/{review_id}/{action}", data=data)
    assert answer.status_code == 403
    wrong = await as_support.client.post(
        f"/desk/items/{review_id}/{action}", data={**data, "csrf_token": "forged"}
    )
    assert wrong.status_code == 403
    assert events(as_support.app) == [] and replies(as_support.app) == []
    assert corrections(as_support.app) == []
    assert item_row(as_support.app, review_id).status == "open"


async def test_customer_text_is_escaped_on_the_item_page(as_support: Desk) -> None:
    review_id = await flag(as_support.app, "42", name="<script>x</script>", comment=XSS)
    await act(as_support, review_id, "reply", text=XSS)
    await act(as_support, review_id, "resolve", note=XSS)
    page = (await as_support.client.get(f"/desk/items/{review_id}")).text
    assert XSS not in page and "<script>x</script>" not in page
    assert page.count(ESCAPED) >= 4  # the comment, its label block, the reply, the note
