"""CSRF protection: every form carries the session's token, and every POST must send it back.

The token is random per session (made when the first form is shown, renewed at sign-in), so a
page on another site cannot know it; SameSite=Lax cookies are a second line, not the only one.
"""

from __future__ import annotations

import hmac

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request

from web.desk.errors import DeskRefusal
from web.desk.session import stored_csrf

FIELD = "csrf_token"


async def checked_form(request: Request) -> FormData:
    """The request's form once its CSRF token matches the session's; 403 (DeskRefusal) if not.

    A body that is not a form at all is refused the same way: it cannot carry the token.
    """
    try:
        form = await request.form()
    except (HTTPException, MultiPartException):  # a malformed multipart body
        raise DeskRefusal(
            400, "The form could not be read; reload the page and try again."
        ) from None
    given = form.get(FIELD)
    expected = stored_csrf(request)
    if not isinstance(given, str) or not given:
        raise DeskRefusal(
            403, "The form's security token is missing; reload the page and try again."
        )
    if expected is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise DeskRefusal(
            403,
            "The form's security token does not match this session (it expired, or the form "
            "came from another page); reload the page and try again.",
        )
    return form
