"""The desk's session: a signed cookie (Starlette's SessionMiddleware, itsdangerous underneath).

The cookie is HttpOnly, SameSite=Lax, `Secure` with `[desk] cookie_secure`, scoped to the desk's
path, and holds only: the user's id and session epoch, the sign-in time, the CSRF token, and
flash messages waiting to be shown. It is signed, not encrypted — nothing secret goes in it (a
new API key is shown in the response that made it, never through a flash message).

A session is valid while the user exists, is enabled and has the same session epoch (a reset
or disable bumps it, which ends every session signed before), and for `[desk] session_hours`
after sign-in; every request re-checks all of that.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from starlette.requests import Request

from bot.desk_users import DeskAccount

COOKIE = "cxbot_desk"
_USER = "uid"
_EPOCH = "epoch"
_SINCE = "since"
_CSRF = "csrf"
_FLASH = "flash"
MAX_FLASHES = 5  # the cookie stays small even if nobody reads the messages


def _session(request: Request) -> dict[str, Any]:
    session: dict[str, Any] = request.session
    return session


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use (the sign-in form makes it)."""
    session = _session(request)
    token = session.get(_CSRF)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[_CSRF] = token
    return token


def stored_csrf(request: Request) -> str | None:
    """The CSRF token of the session, None when it has none (no form was shown)."""
    token = _session(request).get(_CSRF)
    return token if isinstance(token, str) and token else None


def start_session(request: Request, account: DeskAccount, *, now: datetime) -> None:
    """A fresh session for `account`: new CSRF token, nothing kept from before sign-in (so a
    session planted before sign-in is worth nothing after it)."""
    session = _session(request)
    flashes = session.get(_FLASH)
    session.clear()
    session[_USER] = account.id
    session[_EPOCH] = account.session_epoch
    session[_SINCE] = int(now.timestamp())
    session[_CSRF] = secrets.token_urlsafe(32)
    if isinstance(flashes, list):
        session[_FLASH] = flashes[-MAX_FLASHES:]


def renew_epoch(request: Request, account: DeskAccount) -> None:
    """Keep this session valid after the user's epoch changed (they reset their own password)."""
    _session(request)[_EPOCH] = account.session_epoch


def end_session(request: Request) -> None:
    """Forget the signed-in user (sign out, or a session found invalid)."""
    session = _session(request)
    for key in (_USER, _EPOCH, _SINCE, _CSRF):
        session.pop(key, None)


def session_user(request: Request) -> tuple[int, int, int] | None:
    """(user id, epoch, signed-in timestamp) from the cookie; None when nobody signed in."""
    session = _session(request)
    user, epoch, since = session.get(_USER), session.get(_EPOCH), session.get(_SINCE)
    if not (isinstance(user, int) and isinstance(epoch, int) and isinstance(since, int)):
        return None
    return user, epoch, since


def flash(request: Request, text: str, *, kind: str = "ok") -> None:
    """A message shown once on the next page (`ok` or `error`)."""
    session = _session(request)
    waiting = session.get(_FLASH)
    messages = waiting if isinstance(waiting, list) else []
    session[_FLASH] = [*messages, [kind, text]][-MAX_FLASHES:]


def take_flashes(request: Request) -> list[tuple[str, str]]:
    """The waiting messages, removed from the session."""
    session = _session(request)
    if _FLASH not in session:
        return []
    waiting = session.pop(_FLASH)
    if not isinstance(waiting, list):
        return []
    return [
        (str(item[0]), str(item[1]))
        for item in waiting
        if isinstance(item, list) and len(item) == 2
    ]
