"""`GET /desk/queue`: the review queue, filtered, counted and paginated, with response times."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from bot.desk_users import list_users
from web.desk.auth import SignedIn
from web.desk.context import desk_of
from web.desk.errors import DeskRefusal
from web.desk.filters import ORDERS, SENTIMENTS, STATUSES, chosen_filters, queue_filter, queue_link
from web.desk.pages import render

router = APIRouter()

RESPONSE_WINDOWS = (7, 30)  # days of the response-time figures


@router.get("/queue")
async def queue(request: Request, account: SignedIn) -> Response:
    """One page of the queue under the filters of the query string."""
    desk = desk_of(request)
    chosen = chosen_filters(request.query_params)
    filt = queue_filter(chosen, me=account.actor, per_page=desk.settings.page_size)
    now = desk.clock()
    try:
        page = await desk.work.queue(filt, now=now)
    except ValueError as exc:  # what the filters above let through, the queue still refuses
        raise DeskRefusal(400, f"The queue cannot be filtered so: {exc}.") from None
    times = [await desk.work.response_times(days=days, now=now) for days in RESPONSE_WINDOWS]
    users = await asyncio.to_thread(list_users, desk.db)
    assignees = sorted(
        {*page.facets.get("assignees", []), *(u.actor for u in users if not u.disabled)}
    )
    status_counts = page.counts.get("status", {})
    unresolved = status_counts.get("open", 0) + status_counts.get("acknowledged", 0)
    tabs = [
        ("unresolved", unresolved),
        *((s, status_counts.get(s, 0)) for s in ("open", "acknowledged", "resolved")),
        ("all", sum(status_counts.values())),
    ]
    return render(
        request,
        "queue.html",
        account=account,
        nav="queue",
        page=page,
        chosen=chosen,
        tabs=tabs,
        times=times,
        assignees=assignees,
        statuses=STATUSES,
        sentiments=SENTIMENTS,
        orders=ORDERS,
        link=lambda **changes: queue_link(chosen, **changes),
        target_hours=desk.settings.response_target_hours,
    )
