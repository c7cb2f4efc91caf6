"""`/desk/users` (admins): who may sign in — list, add, disable, enable, reset a password.

The same operations as `cxbot users …` (bot.desk_users). Disabling a user or resetting their
password ends their sessions at once. Admins cannot disable themselves (someone must be left to
enable people again); resetting one's own password keeps one's own session.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from bot.desk_users import (
    MAX_EMAIL,
    MAX_PASSWORD,
    DeskAccount,
    add_user,
    list_users,
    reset_password,
    set_disabled,
)
from bot.errors import DeskUserError
from storage.tables import DeskRole
from web.desk.auth import AdminOnly, CheckedForm
from web.desk.context import desk_of
from web.desk.forms import choice, secret, text
from web.desk.pages import back_to, render
from web.desk.session import renew_epoch

router = APIRouter()

ROLES = tuple(r.value for r in DeskRole)


async def _page(
    request: Request, account: DeskAccount, *, error: str | None = None, status: int = 200
) -> Response:
    users = await asyncio.to_thread(list_users, desk_of(request).db)
    return render(
        request,
        "users.html",
        account=account,
        nav="users",
        users=users,
        roles=ROLES,
        error=error,
        status=status,
    )


@router.get("/users")
async def users_page(request: Request, account: AdminOnly) -> Response:
    """Every desk user, and the forms to add and change them."""
    return await _page(request, account)


def _email(form: FormData) -> str:
    return text(form, "email", label="E-mail", max_length=MAX_EMAIL, back="/users")


@router.post("/users")
async def add(request: Request, account: AdminOnly, form: CheckedForm) -> Response:
    """Add a user with a role and a first password."""
    email = _email(form)
    role = choice(form, "role", label="Role", allowed=ROLES, back="/users")
    password = secret(form, "password", label="Password", max_length=MAX_PASSWORD)
    try:
        added = await asyncio.to_thread(
            add_user, desk_of(request).db, email=email, role=role, password=password
        )
    except DeskUserError as exc:
        return await _page(request, account, error=f"Nobody was added: {exc}.", status=400)
    return back_to(request, "/users", f"Added {added.email} ({added.role}).")


@router.post("/users/disable")
async def disable(request: Request, account: AdminOnly, form: CheckedForm) -> Response:
    """Disable a user: they cannot sign in, and their sessions end now."""
    email = _email(form)
    if email.lower() == account.email:
        return await _page(
            request,
            account,
            error="You cannot disable your own account; another admin can.",
            status=400,
        )
    try:
        changed = await asyncio.to_thread(
            set_disabled, desk_of(request).db, email=email, disabled=True
        )
    except DeskUserError as exc:
        return await _page(request, account, error=f"Nothing was changed: {exc}.", status=400)
    return back_to(request, "/users", f"{changed.email} is disabled; their sessions have ended.")


@router.post("/users/enable")
async def enable(request: Request, account: AdminOnly, form: CheckedForm) -> Response:
    """Let a disabled user sign in again."""
    email = _email(form)
    try:
        changed = await asyncio.to_thread(
            set_disabled, desk_of(request).db, email=email, disabled=False
        )
    except DeskUserError as exc:
        return await _page(request, account, error=f"Nothing was changed: {exc}.", status=400)
    return back_to(request, "/users", f"{changed.email} may sign in again.")


@router.post("/users/reset")
async def reset(request: Request, account: AdminOnly, form: CheckedForm) -> Response:
    """Set a new password; the user's other sessions end."""
    email = _email(form)
    password = secret(form, "password", label="New password", max_length=MAX_PASSWORD)
    try:
        changed = await asyncio.to_thread(
            reset_password, desk_of(request).db, email=email, password=password
        )
    except DeskUserError as exc:
        return await _page(request, account, error=f"Nothing was changed: {exc}.", status=400)
    if changed.id == account.id:
        renew_epoch(request, changed)  # one's own session goes on; others of the user end
    return back_to(
        request, "/users", f"New password set for {changed.email}; their sessions ended."
    )
