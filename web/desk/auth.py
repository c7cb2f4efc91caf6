"""Who is asking: the signed-in account, re-checked against the database on every request.

Routes declare what they need as parameters: `SignedIn` (any enabled user), `AdminOnly`
(role admin; support users get 403) and `CheckedForm` (the POSTed form, CSRF token checked).
Declare the account before the form: an unauthenticated POST is a 401, not a CSRF failure.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends
from starlette.datastructures import FormData
from starlette.requests import Request

from bot.desk_users import DeskAccount, session_account
from web.desk.context import desk_of
from web.desk.csrf import checked_form
from web.desk.errors import DeskRefusal, SignInNeeded
from web.desk.session import end_session, flash, session_user

_CHECKED = "desk_account_checked"
_ACCOUNT = "desk_account"


async def current_account(request: Request) -> DeskAccount | None:
    """The signed-in account, or None: nobody signed in, the session is older than
    `[desk] session_hours`, or the account was disabled, reset or removed since (then the
    session is ended, and the sign-in page says why)."""
    if getattr(request.state, _CHECKED, False):
        known: DeskAccount | None = getattr(request.state, _ACCOUNT)
        return known
    account = await _check(request)
    setattr(request.state, _CHECKED, True)
    setattr(request.state, _ACCOUNT, account)
    return account


async def _check(request: Request) -> DeskAccount | None:
    found = session_user(request)
    if found is None:
        return None
    user_id, epoch, since = found
    desk = desk_of(request)
    age = desk.clock().timestamp() - since
    if age > desk.settings.session_hours * 3600 or age < -300:  # expired, or from the future
        end_session(request)
        flash(request, "Your session has expired; sign in again.", kind="error")
        return None
    account = await asyncio.to_thread(session_account, desk.db, user_id=user_id, epoch=epoch)
    if account is None:
        end_session(request)
        flash(
            request,
            "Your session has ended (the account was disabled or its password was reset); "
            "sign in again.",
            kind="error",
        )
    return account


async def signed_in(request: Request) -> DeskAccount:
    """The signed-in account; SignInNeeded (redirect to sign-in, or 401) when there is none."""
    account = await current_account(request)
    if account is None:
        raise SignInNeeded()
    return account


SignedIn = Annotated[DeskAccount, Depends(signed_in)]


async def admin_account(account: SignedIn) -> DeskAccount:
    """The signed-in account if it is an admin; 403 for a support user."""
    if not account.is_admin:
        raise DeskRefusal(403, "This page is for admins only; ask an admin if you need it.")
    return account


AdminOnly = Annotated[DeskAccount, Depends(admin_account)]
CheckedForm = Annotated[FormData, Depends(checked_form)]
