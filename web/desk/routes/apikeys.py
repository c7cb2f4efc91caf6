"""`/desk/apikeys` (admins): the REST API's keys — list, create, revoke (bot.api_keys).

A new key is shown once, in the answer to the form that made it (200 with the page), never
through a redirect: the flash messages travel in the session cookie, which is signed but not
encrypted. Pages are sent `Cache-Control: no-store`, so the key is not kept by the browser.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from bot.api_keys import PREFIX_LENGTH, NewKey, Scope, create_key, list_keys, revoke_keys
from bot.desk_users import DeskAccount
from bot.errors import CxbotError
from web.desk.auth import AdminOnly, CheckedForm
from web.desk.context import desk_of
from web.desk.forms import choice, text
from web.desk.pages import back_to, render

router = APIRouter()

SCOPES = tuple(s.value for s in Scope)


async def _page(
    request: Request,
    account: DeskAccount,
    *,
    new_key: NewKey | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    keys = await asyncio.to_thread(list_keys, desk_of(request).db)
    return render(
        request,
        "apikeys.html",
        account=account,
        nav="apikeys",
        keys=keys,
        scopes=SCOPES,
        new_key=new_key,
        error=error,
        status=status,
    )


@router.get("/apikeys")
async def apikeys_page(request: Request, account: AdminOnly) -> Response:
    """Every key (revoked ones too), and the form to make one."""
    return await _page(request, account)


@router.post("/apikeys")
async def create(request: Request, account: AdminOnly, form: CheckedForm) -> Response:
    """Make a key of a scope (and optional name); the page shows it this once."""
    scope = Scope(choice(form, "scope", label="Scope", allowed=SCOPES, back="/apikeys"))
    name = text(form, "name", label="Name", max_length=64, required=False, back="/apikeys")
    try:
        made = await asyncio.to_thread(
            create_key, desk_of(request).db, scope=scope, name=name or None
        )
    except CxbotError as exc:
        return await _page(request, account, error=f"No key was made: {exc}.", status=400)
    return await _page(request, account, new_key=made)


@router.post("/apikeys/revoke")
async def revoke(request: Request, account: AdminOnly, form: CheckedForm) -> Response:
    """Revoke the active key with this prefix; 409 when there is none (revoked already)."""
    prefix = text(form, "prefix", label="Key", max_length=PREFIX_LENGTH, back="/apikeys")
    if len(prefix) != PREFIX_LENGTH:
        return await _page(request, account, error=f"{prefix!r} is not a key's prefix.", status=400)
    revoked = await asyncio.to_thread(revoke_keys, desk_of(request).db, name_or_prefix=prefix)
    if not revoked:
        return await _page(
            request,
            account,
            error=f"Nothing was revoked: no active key starts with {prefix}.",
            status=409,
        )
    return back_to(request, "/apikeys", f"Key {prefix}… ({revoked[0].name}) is revoked.")
