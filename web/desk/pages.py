"""Rendering: the Jinja2 environment (autoescape on, always), its filters, and `render`.

Every value from the database — customer text above all — reaches HTML only through Jinja2's
autoescaping; no template marks anything `safe`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from bot.desk_users import DeskAccount
from web.desk.context import base_path, desk_of
from web.desk.session import csrf_token, flash, take_flashes

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def when(value: datetime | None) -> str:
    """A moment as people read it: "2026-11-30 14:05 UTC" (stored times are UTC)."""
    if value is None:
        return "—"
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def duration(value: timedelta | None) -> str:
    """A response time: "42 min", "3 h 05 min", "2 d 4 h"; "—" when there is none."""
    if value is None:
        return "—"
    minutes = int(value.total_seconds() // 60)
    if minutes < 60:
        return f"{max(minutes, 0)} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def who(actor: str | None) -> str:
    """An actor string as people read it: "desk:ana@example.com" → "ana@example.com",
    "slack:U012ABC" → "Slack U012ABC"."""
    if not actor:
        return "nobody"
    prefix, sep, rest = actor.partition(":")
    if not sep:
        return actor
    if prefix == "desk":
        return rest
    return f"{prefix.capitalize()} {rest}"


def percent(value: float | None) -> str:
    """A confidence: 0.834 → "83%"."""
    return "—" if value is None else f"{value:.0%}"


def label_of(code: str) -> str:
    """A code (reason, status) as words: "nps_detractor" → "nps detractor"."""
    return code.replace("_", " ")


def build_templates() -> Jinja2Templates:
    """The desk's templates, autoescaped, failing loudly on an undefined name."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, duration=duration, who=who, percent=percent, words=label_of)
    env.globals["query"] = urlencode
    return Jinja2Templates(env=env)


def render(
    request: Request,
    template: str,
    *,
    account: DeskAccount | None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **values: Any,
) -> Response:
    """The page `template` with the layout's values: account, base path, CSRF token, flashes."""
    context = {
        "account": account,
        "base": base_path(request),
        "csrf": csrf_token(request),
        "flashes": take_flashes(request),
        "nav": "",
        **values,
    }
    return desk_of(request).templates.TemplateResponse(
        request, template, context, status_code=status, headers=headers
    )


def back_to(request: Request, path: str, message: str, *, kind: str = "ok") -> Response:
    """303 to a desk page (path under the desk, e.g. "/items/4"), with a message shown there."""
    flash(request, message, kind=kind)
    return RedirectResponse(base_path(request) + path, status_code=303)
