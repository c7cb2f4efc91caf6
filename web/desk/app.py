"""The desk application, mounted by `cxbot serve` at `/desk` (`web.server.Mount`).

Statuses, for pages and forms alike: an unauthenticated request for a page is redirected (303)
to `/desk/login`, any other unauthenticated request gets 401; a form without the session's
CSRF token 403; a support user on an admin page 403; an item that does not exist (or was
erased) 404; an action on an item that changed since its page was shown, or one that no longer
applies, 409; too many failed sign-ins 429. Each is a page with one clear sentence, never a
stack trace, and none changes anything stored.

Every page is sent with a strict Content-Security-Policy (scripts, styles and images from the
desk only; no inline script), `no-store` caching and no framing; every asset comes from
`/desk/static/` (no CDN: the desk works offline).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.config import DeskSettings, Settings
from bot.desk_users import session_secret
from bot.desk_work import DeskWork
from bot.login_limit import LoginLimiter
from storage.database import Database
from web.desk.auth import current_account
from web.desk.context import DeskContext, base_path
from web.desk.errors import DeskRefusal, SignInNeeded
from web.desk.pages import STATIC, build_templates, render
from web.desk.routes import analytics, apikeys, flows, items, queue, sign_in, users
from web.desk.session import COOKIE

DESK_PREFIX = "/desk"

_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
_HEADERS = [
    (b"content-security-policy", _CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    """ASGI middleware: the desk's security headers on every answer, `no-store` on pages
    (everything but the assets under `static`)."""

    def __init__(self, app: ASGIApp, *, static: str) -> None:
        self.app = app
        self.static = static

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the headers to the response start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        page = not str(scope.get("path", "")).startswith(self.static)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), *_HEADERS]
                if page:  # pages hold customer data and CSRF tokens: never cache them
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def _now() -> datetime:
    return datetime.now(UTC)


def build_desk_app(
    *,
    db: Database,
    settings: DeskSettings,
    work: DeskWork,
    secret: str | None = None,
    limiter: LoginLimiter | None = None,
    clock: Callable[[], datetime] = _now,
    path: str = DESK_PREFIX,
    app_settings: Settings | None = None,
) -> FastAPI:
    """The desk, to mount at `path`.

    `secret` signs the session cookies (default: `[desk] session_secret`, else the one kept in
    the database); `limiter` counts failed sign-ins (default: `[desk] login_attempts` per
    `login_window_minutes`); `clock` tells sessions' age; `app_settings` are cxbot's whole
    settings, for the flow pages (flow directories, the simulator; default: the embedded
    defaults with `settings` as the desk's).
    """
    app = FastAPI(title="cxbot desk", docs_url=None, redoc_url=None, openapi_url=None)
    configured = settings.session_secret
    key = secret or session_secret(
        db, configured.get_secret_value() if configured is not None else None
    )
    app.state.desk = DeskContext(
        db=db,
        settings=settings,
        work=work,
        templates=build_templates(),
        # `is None`, not `or`: a limiter with no failures yet has len() 0 and is falsy.
        limiter=limiter
        if limiter is not None
        else LoginLimiter(
            settings.login_attempts, timedelta(minutes=settings.login_window_minutes)
        ),
        clock=clock,
        prefix=path.rstrip("/"),
        app_settings=app_settings or Settings(desk=settings),
    )
    for group in (sign_in, queue, items, users, apikeys, flows, analytics):
        app.include_router(group.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _install_error_pages(app)
    app.add_middleware(
        SessionMiddleware,
        secret_key=key,
        session_cookie=COOKIE,
        max_age=max(60, int(settings.session_hours * 3600)),
        path=path,
        same_site="lax",
        https_only=settings.cookie_secure,
    )
    app.add_middleware(SecurityHeaders, static=f"{path.rstrip('/')}/static/")
    return app


def _sign_in_first(request: Request, message: str | None = None) -> Response:
    base = base_path(request)
    if request.method in ("GET", "HEAD"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{base}/login?next={quote(target, safe='/')}", status_code=303)
    return render(
        request,
        "error.html",
        account=None,
        status=401,
        title="Sign in first",
        message=message or "Sign in first: this needs a signed-in desk user.",
        back="/login",
    )


def _install_error_pages(app: FastAPI) -> None:
    @app.exception_handler(DeskRefusal)
    async def refused(request: Request, exc: DeskRefusal) -> Response:
        return render(
            request,
            "error.html",
            account=await current_account(request),
            status=exc.status,
            headers=exc.headers,
            title=_TITLES.get(exc.status, "Refused"),
            message=exc.message,
            back=exc.back,
        )

    @app.exception_handler(SignInNeeded)
    async def sign_in_needed(request: Request, exc: SignInNeeded) -> Response:
        return _sign_in_first(request, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # An unknown page is, to someone not signed in, a page like any other: sign in first
        # (so the desk tells strangers nothing about which pages exist).
        if request.url.path.startswith(f"{base_path(request)}/static/"):
            return PlainTextResponse(str(exc.detail), status_code=exc.status_code)
        account = await current_account(request)
        if account is None:
            return _sign_in_first(request)
        message = "There is no such page." if exc.status_code == 404 else str(exc.detail)
        return render(
            request,
            "error.html",
            account=account,
            status=exc.status_code,
            headers=exc.headers,
            title=_TITLES.get(exc.status_code, "Refused"),
            message=message,
            back="/queue",
        )

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'request'}: {e['msg']}"
            for e in exc.errors()
        )
        return render(
            request,
            "error.html",
            account=await current_account(request),
            status=400,
            title="Bad request",
            message=f"The request cannot be read ({problems}).",
            back="/queue",
        )


_TITLES = {
    400: "Bad request",
    401: "Sign in first",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    409: "Nothing changed",
    413: "Too large",
    429: "Too many attempts",
}
