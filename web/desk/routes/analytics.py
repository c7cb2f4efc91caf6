"""`/desk/analytics` (support and admins): NPS, CES and CSAT over time with margins of error,
breakdowns, score distributions, sentiment share, top terms, the invitation funnel and response
times (bot.analytics); and `/desk/analytics/export.csv`: the responses under the same filters
as CSV, streamed (bot.response_export).

The filters are query parameters, so a view is a link: `by` (day / week / month), `since` and
`until` (local days, both included), `tz` (IANA zone; default `[invitations]
default_time_zone`), `flow`, `channel`, `touchpoint`, `segment` (KEY=VALUE of the survey's
context) and `breakdown` (flow, channel, touchpoint or segment:KEY). Without `since` and
`until` the page shows the last 30 days, 12 weeks or 12 months. A filter that cannot be
answered (an impossible date, a start after the end, an unknown zone) is a 400 naming it.

Charts are drawn in the browser by Chart.js, served from /desk/static/vendor (no CDN); the
page passes them its figures as a JSON data block (data, never run) and every chart has the
same numbers as a table under it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from bot.analytics import Analytics, AnalyticsFilter, build_analytics, parse_filter
from bot.desk_users import DeskAccount
from bot.errors import AnalyticsFilterError
from bot.response_export import EmptyExportError, Export, csv_chunks, open_export
from bot.trends import Period, bucket_start, utc_range
from storage.database import Database
from storage.response_export import ResponseFilter
from web.desk.auth import SignedIn
from web.desk.context import desk_of
from web.desk.errors import DeskRefusal
from web.desk.pages import render

router = APIRouter()

PARAMS = ("by", "since", "until", "tz", "flow", "channel", "touchpoint", "segment", "breakdown")
MAX_VALUE = 200
SHOWN = {Period.DAY: 30, Period.WEEK: 12, Period.MONTH: 12}  # points shown without a range
METRICS = (
    # (key in a trend point, value field, title, unit)
    ("nps", "score", "NPS", "NPS points, −100 to 100"),
    ("ces", "mean", "CES", "mean effort, 1 to 7"),
    ("csat", "score", "CSAT", "% satisfied (4 or 5 of 5)"),
)


@dataclass(frozen=True, slots=True)
class Cell:
    """One figure of a table under a chart, formatted: "30.0 ±4.8", or the score alone when
    too few answered for a margin (`few`), or "–" with no answer."""

    text: str
    few: bool
    n: int


def cell(point: Any, field: str, digits: int) -> Cell:
    """The table cell of one trend point (an NpsPoint, CesPoint or CsatPoint)."""
    value = getattr(point, field)
    if value is None:
        return Cell("–", False, point.n)
    if point.moe is None:
        return Cell(f"{value:.{digits}f}", True, point.n)
    return Cell(f"{value:.{digits}f} ±{point.moe:.{digits}f}", False, point.n)


def tables(found: Analytics) -> dict[str, Any]:
    """The numbers under the trend and breakdown charts, formatted here once: a year by day is
    a few thousand cells, which a template would format far more slowly."""
    trend: dict[str, list[tuple[str, Cell]]] = {}
    breakdown: dict[str, list[tuple[str, list[Cell]]]] = {}
    for key, field, _, _ in METRICS:
        digits = 2 if key == "ces" else 1
        trend[key] = [
            (p.start.isoformat(), cell(getattr(p, key), field, digits)) for p in found.trend.series
        ]
        if found.breakdown is not None:
            columns = [s.trend.series for s in found.breakdown.series]
            starts = [p.start.isoformat() for p in columns[0]] if columns else []
            breakdown[key] = [
                (start, [cell(getattr(c[i], key), field, digits) for c in columns])
                for i, start in enumerate(starts)
            ]
    return {"trend": trend, "breakdown": breakdown}


def _params(request: Request) -> dict[str, str]:
    chosen = {name: request.query_params.get(name, "").strip() for name in PARAMS}
    for name, value in chosen.items():
        if len(value) > MAX_VALUE:
            raise DeskRefusal(
                400, f"Filter {name} is longer than {MAX_VALUE} characters.", back="/analytics"
            )
    return chosen


def _filter(request: Request, chosen: Mapping[str, str]) -> AnalyticsFilter:
    zone = desk_of(request).app_settings.invitations.default_time_zone
    try:
        return parse_filter(chosen, zone=zone)
    except AnalyticsFilterError as exc:
        raise DeskRefusal(
            400, f"The analytics cannot be filtered so: {exc}.", back="/analytics"
        ) from None


def default_range(filt: AnalyticsFilter, today: date) -> AnalyticsFilter:
    """`filt` with the last 30 days / 12 weeks / 12 months up to `today` when it gives no range."""
    if filt.since is not None or filt.until is not None:
        return filt
    count = SHOWN[filt.by]
    if filt.by == Period.DAY:
        since = today - timedelta(days=count - 1)
    elif filt.by == Period.WEEK:
        since = bucket_start(today, Period.WEEK) - timedelta(weeks=count - 1)
    else:
        months = today.year * 12 + today.month - 1 - (count - 1)
        since = date(months // 12, months % 12 + 1, 1)
    return replace(filt, since=since, until=today)


def _chosen_of(filt: AnalyticsFilter, chosen: Mapping[str, str]) -> dict[str, str]:
    """The form's values: what was asked, with the range and zone actually used."""
    return {
        **chosen,
        "by": filt.by.value,
        "since": filt.since.isoformat() if filt.since else "",
        "until": filt.until.isoformat() if filt.until else "",
        "tz": filt.zone,
    }


@router.get("/analytics")
async def analytics_page(request: Request, account: SignedIn) -> Response:
    """The figures and charts for the filters of the query string."""
    desk = desk_of(request)
    chosen = _params(request)
    now = desk.clock()
    filt = _filter(request, chosen)
    filt = default_range(filt, now.astimezone(ZoneInfo(filt.zone)).date())
    try:
        found = await asyncio.to_thread(build_analytics, desk.db, filt, now=now)
    except AnalyticsFilterError as exc:
        raise DeskRefusal(
            400, f"The analytics cannot be filtered so: {exc}.", back="/analytics"
        ) from None
    shown = _chosen_of(filt, chosen)
    # Rendered in a thread: a year by day is thousands of table cells (tens of milliseconds),
    # which would otherwise hold up every conversation served by this event loop.
    return await asyncio.to_thread(_page, request, account, found, shown)


def _page(
    request: Request, account: DeskAccount, found: Analytics, shown: dict[str, str]
) -> Response:
    return render(
        request,
        "analytics.html",
        account=account,
        nav="analytics",
        a=found,
        data=found.to_dict(),
        tables=tables(found),
        chosen=shown,
        periods=[p.value for p in Period],
        metrics=METRICS,
        export_link=urlencode({k: v for k, v in shown.items() if v}),
        has_scores=any(p.nps.n or p.ces.n or p.csat.n for p in found.trend.series),
    )


def _segment_matches(row: Mapping[str, Any], key: str, value: str) -> bool:
    context = row.get("context") or {}
    found = context.get(key) if isinstance(context, dict) else None
    if found is None:
        return False
    # As the analytics compare it: the value as text (a number 3 matches "3").
    return (found if isinstance(found, str) else json.dumps(found)) == value


def _close(rows: Iterator[Any]) -> None:
    """End a row iterator's read transaction now (a generator's `close`), not when collected."""
    close = getattr(rows, "close", None)
    if close is not None:
        close()


def _close_all(*iterators: Iterator[Any]) -> None:
    for rows in iterators:
        _close(rows)


def _open(db: Database, where: ResponseFilter, segment: tuple[str, str] | None) -> Export:
    """The export, with rows narrowed to one segment when asked; EmptyExportError when nothing
    matches (for a segment: after reading up to its first matching row)."""
    export = open_export(db, where)
    if segment is None:
        return export
    key, value = segment
    every = export.rows
    matching = (row for row in every if _segment_matches(row, key, value))
    first = next(matching, None)
    if first is None:
        _close(every)
        raise EmptyExportError("no survey responses match")

    def rows() -> Iterator[dict[str, Any]]:
        try:
            yield first
            yield from matching
        finally:
            _close(every)

    return Export(columns=export.columns, total=export.total, rows=rows())


@router.get("/analytics/export.csv")
async def export_csv(request: Request, account: SignedIn) -> Response:
    """The responses under the page's filters as CSV, streamed a few hundred rows at a time."""
    desk = desk_of(request)
    chosen = _params(request)
    filt = _filter(request, chosen)
    since, until = utc_range(filt.since, filt.until, filt.zone)
    where = ResponseFilter(
        since=since,
        until=until,
        flow_id=filt.flow,
        channel=filt.channel,
        touchpoint=filt.touchpoint,
    )
    back = "/analytics?" + urlencode({k: v for k, v in chosen.items() if v})
    # Every step of the export runs on one thread of its own, off the event loop: each chunk of
    # rows is read in a short transaction (bot.response_export), whose database lock (on
    # SQLite) must be released by the thread that took it.
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="desk-export")
    loop = asyncio.get_running_loop()
    try:
        export = await loop.run_in_executor(worker, _open, desk.db, where, filt.segment)
    except EmptyExportError:
        worker.shutdown(wait=False)
        raise DeskRefusal(
            404, "No survey responses match these filters: there is nothing to export.", back=back
        ) from None
    chunks = csv_chunks(export)

    async def stream() -> AsyncIterator[str]:
        try:
            while (piece := await loop.run_in_executor(worker, next, chunks, None)) is not None:
                yield piece
        finally:
            # Also when the download is cut short: the transaction ends now, on its thread
            # (queued there, not awaited: this may run while the request is being cancelled).
            worker.submit(_close_all, chunks, export.rows)
            worker.shutdown(wait=False)

    name = "responses"
    if filt.since or filt.until:
        name += f"-{filt.since or 'start'}-to-{filt.until or 'now'}"
    headers = {"content-disposition": f'attachment; filename="{name}.csv"'}
    if filt.segment is None:  # with a segment, rows are narrowed while they stream
        headers["x-total-responses"] = str(export.total)
    return StreamingResponse(stream(), media_type="text/csv; charset=utf-8", headers=headers)
