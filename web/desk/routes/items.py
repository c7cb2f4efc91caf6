"""`/desk/items/{id}`: one flagged reply, and what support does with it.

Each action is a POST carrying the item's `version` as the page showed it: if the item changed
since (someone else acted, or the same form was sent twice) the action is refused with 409 and
the page shown again as it is now; nothing is stored. A reply to a customer who blocked the bot
or was erased is a 409 too, and so is a reply on a channel this cxbot does not serve. Success is
a 303 back to the item with a message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from bot.desk_users import DeskAccount, list_users
from bot.errors import (
    CustomerUnreachableError,
    DeliveryError,
    LabelCorrectionError,
    ReviewConflictError,
    ReviewNotFoundError,
)
from web.desk.auth import CheckedForm, SignedIn
from web.desk.context import desk_of
from web.desk.errors import DeskRefusal
from web.desk.forms import choice, row_id, text
from web.desk.pages import back_to, render

router = APIRouter()

LABELS = ("negative", "neutral", "positive")
MAX_REPLY = 4000  # Telegram's limit is 4096 characters; Slack's is far above
MAX_NOTE = 2000
MAX_VERSION = 100


def _review_id(item_id: str) -> int:
    review_id = row_id(item_id)
    if review_id is None:
        raise DeskRefusal(404, f"There is no review item {item_id!r}.", back="/queue")
    return review_id


def _missing(review_id: int) -> DeskRefusal:
    return DeskRefusal(
        404, f"Review item #{review_id} does not exist (or its customer was erased).", back="/queue"
    )


async def _item_page(
    request: Request,
    account: DeskAccount,
    review_id: int,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    desk = desk_of(request)
    item = await desk.work.item(review_id, now=desk.clock())
    if item is None:
        raise _missing(review_id)
    users = await asyncio.to_thread(list_users, desk.db)
    return render(
        request,
        "item.html",
        account=account,
        nav="queue",
        item=item,
        people=[u.actor for u in users if not u.disabled],
        labels=LABELS,
        error=error,
        status=status,
        max_reply=MAX_REPLY,
        max_note=MAX_NOTE,
    )


@router.get("/items/{item_id}")
async def item_page(request: Request, account: SignedIn, item_id: str) -> Response:
    """The item: conversation, scores, labels, reasons, history and the actions."""
    return await _item_page(request, account, _review_id(item_id))


async def _act(
    request: Request,
    account: DeskAccount,
    review_id: int,
    call: Callable[[], Awaitable[None]],
    done: str,
) -> Response:
    """Run one action; 303 back with `done`, or the page again with why nothing changed."""
    try:
        await call()
    except ReviewNotFoundError:
        raise _missing(review_id) from None
    except (ReviewConflictError, CustomerUnreachableError, DeliveryError) as exc:
        return await _item_page(
            request, account, review_id, error=f"Nothing was changed: {exc}", status=409
        )
    except (LabelCorrectionError, ValueError) as exc:
        return await _item_page(
            request, account, review_id, error=f"Nothing was changed: {exc}", status=400
        )
    return back_to(request, f"/items/{review_id}", done)


def _version(form: FormData, back: str) -> str:
    return text(form, "version", label="The page's version", max_length=MAX_VERSION, back=back)


@router.post("/items/{item_id}/acknowledge")
async def acknowledge(
    request: Request, account: SignedIn, form: CheckedForm, item_id: str
) -> Response:
    """Open → acknowledged."""
    review_id = _review_id(item_id)
    version = _version(form, f"/items/{review_id}")
    work = desk_of(request).work
    return await _act(
        request,
        account,
        review_id,
        lambda: work.acknowledge(review_id, actor=account.actor, version=version),
        f"Review item #{review_id} acknowledged.",
    )


@router.post("/items/{item_id}/assign")
async def assign(request: Request, account: SignedIn, form: CheckedForm, item_id: str) -> Response:
    """Assign to me, to another desk user, or to nobody ("")."""
    review_id = _review_id(item_id)
    back = f"/items/{review_id}"
    version = _version(form, back)
    desk = desk_of(request)
    chosen = text(form, "assignee", label="Assignee", max_length=300, required=False, back=back)
    assignee: str | None
    if chosen == "me":
        assignee = account.actor
    elif not chosen:
        assignee = None
    else:
        users = await asyncio.to_thread(list_users, desk.db)
        if chosen not in {u.actor for u in users if not u.disabled}:
            raise DeskRefusal(
                400, f"{chosen!r} is not an enabled desk user; pick one from the list.", back=back
            )
        assignee = chosen
    done = (
        f"Review item #{review_id} assigned to {_name(assignee)}."
        if assignee is not None
        else f"Review item #{review_id} is assigned to nobody now."
    )
    return await _act(
        request,
        account,
        review_id,
        lambda: desk.work.assign(
            review_id, actor=account.actor, assignee=assignee, version=version
        ),
        done,
    )


def _name(actor: str) -> str:
    return actor.removeprefix("desk:")


@router.post("/items/{item_id}/resolve")
async def resolve(request: Request, account: SignedIn, form: CheckedForm, item_id: str) -> Response:
    """Resolve with a note."""
    review_id = _review_id(item_id)
    back = f"/items/{review_id}"
    version = _version(form, back)
    note = text(form, "note", label="The resolution note", max_length=MAX_NOTE, back=back)
    work = desk_of(request).work
    return await _act(
        request,
        account,
        review_id,
        lambda: work.resolve(review_id, actor=account.actor, note=note, version=version),
        f"Review item #{review_id} resolved.",
    )


@router.post("/items/{item_id}/reply")
async def reply(request: Request, account: SignedIn, form: CheckedForm, item_id: str) -> Response:
    """Queue a reply to the customer on their channel (the delivery worker sends it)."""
    review_id = _review_id(item_id)
    back = f"/items/{review_id}"
    version = _version(form, back)
    message = text(form, "text", label="The reply", max_length=MAX_REPLY, back=back)
    work = desk_of(request).work
    return await _act(
        request,
        account,
        review_id,
        lambda: work.reply(review_id, actor=account.actor, text=message, version=version),
        f"Reply to the customer of #{review_id} queued; it is sent on their channel.",
    )


@router.post("/items/{item_id}/reopen")
async def reopen(request: Request, account: SignedIn, form: CheckedForm, item_id: str) -> Response:
    """Resolved (or acknowledged) → open again."""
    review_id = _review_id(item_id)
    version = _version(form, f"/items/{review_id}")
    work = desk_of(request).work
    return await _act(
        request,
        account,
        review_id,
        lambda: work.reopen(review_id, actor=account.actor, version=version),
        f"Review item #{review_id} reopened.",
    )


@router.post("/items/{item_id}/label")
async def correct_label(
    request: Request, account: SignedIn, form: CheckedForm, item_id: str
) -> Response:
    """Correct the sentiment label of one of the item's text answers."""
    review_id = _review_id(item_id)
    back = f"/items/{review_id}"
    raw_answer = text(form, "answer_id", label="The answer", max_length=12, back=back)
    answer_id = row_id(raw_answer)
    if answer_id is None:
        raise DeskRefusal(400, f"The answer {raw_answer!r} is not an answer id.", back=back)
    label = choice(form, "label", label="The label", allowed=LABELS, back=back)
    work = desk_of(request).work
    return await _act(
        request,
        account,
        review_id,
        lambda: work.correct_label(
            answer_id, actor=account.actor, label=label, review_id=review_id
        ),
        f"Label corrected to {label}; the correction is kept for training.",
    )
