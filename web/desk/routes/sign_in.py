"""Sign in and out: `GET/POST /desk/login`, `POST /desk/logout`, and `/desk/` itself.

The sign-in form's fields are `email`, `password` and `csrf_token` (a contract: acceptance
checks fill them). A wrong e-mail or password and a disabled user each get the form again with
a clear message and 401; too many failures from one address or for one e-mail get 429 until the
window has passed (`[desk] login_attempts` per `login_window_minutes`).
"""

from __future__ import annotations

import asyncio
import math
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bot.desk_users import MAX_EMAIL, DeskAccount, SignInRefused, authenticate, end_sessions
from web.desk.auth import CheckedForm, SignedIn, current_account
from web.desk.context import base_path, desk_of
from web.desk.forms import secret, text
from web.desk.pages import render
from web.desk.session import end_session, flash, start_session

router = APIRouter()


def safe_next(request: Request, target: str | None) -> str:
    """Where to go after sign-in: `target` when it is a page of this desk, else the queue.

    Only a path under the desk is followed, so a link cannot send someone elsewhere after
    signing in (no scheme, no host, no `//`, no backslash).
    """
    base = base_path(request)
    if (
        target
        and target.startswith(base + "/")
        and not target.startswith("//")
        and "\\" not in target
        and len(target) <= 2000
        and target.split("?", 1)[0] not in (f"{base}/login", f"{base}/logout")
    ):
        return target
    return f"{base}/queue"


def _form(
    request: Request,
    *,
    email: str = "",
    next_page: str = "",
    error: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    return render(
        request,
        "login.html",
        account=None,
        status=status,
        headers=headers,
        email=email,
        next_page=next_page,
        error=error,
    )


@router.get("/")
async def home(request: Request, _account: SignedIn) -> Response:
    """The desk's front door: the queue."""
    return RedirectResponse(f"{base_path(request)}/queue", status_code=303)


@router.get("/login")
async def login_form(
    request: Request, next_page: Annotated[str, Query(alias="next", max_length=2000)] = ""
) -> Response:
    """The sign-in form (someone already signed in goes straight on)."""
    if await current_account(request) is not None:
        return RedirectResponse(safe_next(request, next_page), status_code=303)
    kept = next_page if safe_next(request, next_page) == next_page else ""
    return _form(request, next_page=kept)


@router.post("/login")
async def login(request: Request, form: CheckedForm) -> Response:
    """Check e-mail and password; start a session and go on, or show the form again."""
    desk = desk_of(request)
    email = text(form, "email", label="E-mail", max_length=MAX_EMAIL, required=False)
    password = secret(form, "password", label="Password")
    raw_next = form.get("next")
    next_page = raw_next if isinstance(raw_next, str) else ""
    if not email or not password:
        return _form(
            request,
            email=email,
            next_page=next_page,
            error="Enter your e-mail and your password.",
            status=400,
        )
    address = email.lower()
    client = request.client.host if request.client is not None else "unknown"
    keys = [f"ip:{client}", f"email:{address}"]
    wait = desk.limiter.blocked(keys)
    if wait is not None:
        minutes = max(1, math.ceil(wait / 60))
        return _form(
            request,
            email=email,
            next_page=next_page,
            error=f"Too many failed sign-ins; try again in {minutes} minute"
            f"{'s' if minutes != 1 else ''}.",
            status=429,
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    result = await asyncio.to_thread(authenticate, desk.db, email=address, password=password)
    if not isinstance(result, DeskAccount):
        desk.limiter.failed(keys)
        message = (
            "This account is disabled; ask an admin to enable it."
            if result == SignInRefused.DISABLED
            else "Wrong e-mail or password."
        )
        return _form(request, email=email, next_page=next_page, error=message, status=401)
    # The account's count starts again; the address's stays (see LoginLimiter.succeeded).
    desk.limiter.succeeded([f"email:{address}"])
    start_session(request, result, now=desk.clock())
    return RedirectResponse(safe_next(request, next_page), status_code=303)


@router.post("/logout")
async def logout(request: Request, account: SignedIn, _form: CheckedForm) -> Response:
    """End the session — every copy of it: the account's sessions are all ended — and show the
    sign-in form."""
    await asyncio.to_thread(end_sessions, desk_of(request).db, user_id=account.id)
    end_session(request)
    flash(request, "You are signed out.")
    return RedirectResponse(f"{base_path(request)}/login", status_code=303)
