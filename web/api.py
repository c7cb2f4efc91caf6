"""The REST API (`/api/v1/…`): invitations for other systems, the suppression list for admins.

A FastAPI application of its own, mounted by `cxbot serve` at `/api/v1`, so that its OpenAPI
schema (`/api/v1/openapi.json`) shows only these routes. It stays thin: it checks the key,
validates the body (the models of `web.api_models`) and calls bot/ (`bot.invitations`,
`bot.api_keys`); every decision is made there.

Errors: 401 for a missing, unknown or revoked key, 403 for a key of the wrong scope, 404 for an
invitation the key may not see, 409 for an interaction id reused for another customer, 422 for
a body that cannot be accepted — `{"error": "field: why; …", "detail": [{"field", "loc", "msg",
"type"}]}`. Bad input never gets a 5xx, and leaves stored data as it was.
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations at runtime,
# and the key dependencies are closures of `build_api`, which string annotations cannot name.
import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.api_keys import KeyChecker, KeyRefused, Scope
from bot.invitations.service import (
    Created,
    InteractionConflict,
    InvalidInvitation,
    InvitationRequest,
    Invitations,
    Problem,
)
from bot.invitations.suppression import SuppressionList, check_customer, user_id_problem
from bot.privacy import PrivacyRequests
from storage.apikeys import StoredKey
from storage.suppressions import StoredSuppression
from storage.tables import InvitationStatus
from web.api_models import (
    BatchIn,
    BatchOut,
    BatchResultOut,
    ConversationOut,
    ErasedOut,
    ErrorOut,
    InvitationIn,
    InvitationOut,
    InvitationStateOut,
    RemovedOut,
    SuppressionIn,
    SuppressionListOut,
    SuppressionOut,
    ValidationErrorOut,
)

API_PREFIX = "/api/v1"
# A batch of 1,000 invitations with contexts: more than the webhooks' 1 MiB, still bounded.
API_MAX_BODY_BYTES = 4 << 20
MAX_OFFSET = 10**9  # list offsets: far beyond any list, within every database's integers

# The largest id the invitation table holds (its id is an INTEGER: 32-bit on PostgreSQL).
MAX_ROW_ID = 2**31 - 1


class ApiError(Exception):
    """An answer other than success: status, one sentence, optional headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing, unknown or revoked API key."},
    403: {"model": ErrorOut, "description": "The key's scope does not allow this."},
    422: {"model": ValidationErrorOut, "description": "The body cannot be accepted."},
}


def _field(loc: Sequence[str | int]) -> str:
    """("body", "invitations", 3, "user_id") → "invitations[3].user_id"."""
    parts = list(loc[1:]) if loc and loc[0] in ("body", "query", "path") else list(loc)
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def _unprocessable(errors: list[dict[str, Any]]) -> JSONResponse:
    detail = [
        {
            "field": _field(e["loc"]),
            "loc": list(e["loc"]),
            "msg": str(e["msg"]).removeprefix("Value error, "),
            "type": str(e["type"]),
        }
        for e in errors
    ]
    message = "; ".join(f"{d['field']}: {d['msg']}" for d in detail)
    return JSONResponse({"error": message, "detail": detail}, status_code=422)


def _loc(field: str) -> list[str | int]:
    """ "invitations[3].user_id" → ["invitations", 3, "user_id"]."""
    return [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", field)]


def _problems(problems: Sequence[Problem]) -> JSONResponse:
    return _unprocessable(
        [
            {"loc": ["body", *_loc(p.field)], "msg": p.message, "type": "value_error"}
            for p in problems
        ]
    )


def _out(created: Created) -> InvitationOut:
    return InvitationOut(
        id=str(created.id),
        status=created.status,
        reason=created.reason,
        detail=created.detail,
        send_at=created.send_at if created.status == InvitationStatus.SCHEDULED else None,
    )


def _suppression(entry: StoredSuppression) -> SuppressionOut:
    return SuppressionOut(
        channel=entry.channel,
        user_id=entry.external_id,
        note=entry.note,
        created_by=entry.created_by,
        created_at=entry.created_at,
    )


def build_api(
    *,
    invitations: Invitations,
    keys: KeyChecker,
    suppressions: SuppressionList,
    privacy: PrivacyRequests | None = None,
) -> FastAPI:
    """The API application, to mount at `/api/v1` (its schema at `/api/v1/openapi.json`);
    with `privacy`, also `DELETE /customers/{channel}:{user_id}` (erasure, admin)."""
    api = FastAPI(
        title="cxbot API",
        version="1",
        description="Trigger surveys from other systems; keep the suppression list. "
        "Authenticate with `Authorization: Bearer <key>` (`cxbot apikeys create`).",
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    bearer = HTTPBearer(auto_error=False, description="An API key from `cxbot apikeys create`.")
    Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]

    async def any_key(credentials: Credentials) -> StoredKey:
        if credentials is None:
            raise ApiError(
                401,
                "missing API key: send Authorization: Bearer <key>",
                {"WWW-Authenticate": "Bearer"},
            )
        try:
            return await keys.check(credentials.credentials)
        except KeyRefused as exc:
            raise ApiError(
                401, str(exc), {"WWW-Authenticate": 'Bearer error="invalid_token"'}
            ) from None

    async def admin_key(key: Annotated[StoredKey, Depends(any_key)]) -> StoredKey:
        if key.scope != Scope.ADMIN:
            raise ApiError(403, f"this needs an admin key; key {key.prefix}… has scope {key.scope}")
        return key

    InviteKey = Annotated[StoredKey, Depends(any_key)]  # invite and admin keys may invite
    AdminKey = Annotated[StoredKey, Depends(admin_key)]

    @api.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)

    @api.exception_handler(RequestValidationError)
    async def invalid_body(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _unprocessable(list(exc.errors()))

    @api.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )

    def request_of(body: InvitationIn, now: datetime) -> InvitationRequest:
        after = body.send_after
        return InvitationRequest(
            channel=body.channel,
            user_id=body.user_id,
            touchpoint=body.touchpoint,
            interaction_id=body.interaction_id,
            flow_id=body.flow_id,
            context=body.context,
            send_after=now + timedelta(seconds=after) if isinstance(after, float) else after,
            time_zone=body.time_zone,
        )

    async def guarded(call: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return await call()
        except InvalidInvitation as exc:
            return _problems(exc.problems)
        except InteractionConflict as exc:
            raise ApiError(409, str(exc)) from None

    @api.post(
        "/invitations",
        response_model=InvitationOut,
        response_model_exclude_none=True,
        status_code=201,
        responses={
            200: {"model": InvitationOut, "description": "A repeat: the stored invitation."},
            409: {
                "model": ErrorOut,
                "description": "The interaction id was used for another customer or touchpoint.",
            },
            **_ERRORS,
        },
        summary="Invite a customer to a survey after an interaction",
    )
    async def create_invitation(body: InvitationIn, key: InviteKey, response: Response) -> Any:
        request = request_of(body, invitations.clock())

        async def create() -> Any:
            created = await invitations.create(request, source=key.name)
            if not created.created:
                response.status_code = 200
            return _out(created)

        return await guarded(create)

    @api.post(
        "/invitations/batch",
        response_model=BatchOut,
        response_model_exclude_none=True,
        responses={
            409: {"model": ErrorOut, "description": "An interaction id was reused."},
            **_ERRORS,
        },
        summary="Invite up to 1,000 customers",
        description="Every row is checked first: one bad row is a 422 naming it, and nothing "
        "is stored. Then each row is created as by POST /invitations, in order.",
    )
    async def create_batch(body: BatchIn, key: InviteKey) -> Any:
        now = invitations.clock()
        requests = [request_of(row, now) for row in body.invitations]

        async def create() -> Any:
            results = await invitations.create_many(requests, source=key.name)
            rows = [
                BatchResultOut(index=i, created=c.created, **_out(c).model_dump())
                for i, c in enumerate(results)
            ]
            made = sum(1 for c in results if c.created)
            return BatchOut(results=rows, created=made, repeated=len(results) - made)

        return await guarded(create)

    @api.get(
        "/invitations/{invitation_id}",
        response_model=InvitationStateOut,
        responses={404: {"model": ErrorOut, "description": "No such invitation."}, **_ERRORS},
        summary="An invitation's state, and its survey's",
    )
    async def get_invitation(invitation_id: str, key: InviteKey) -> Any:
        # Anything but a stored id's digits (letters, digits past the range) names no invitation.
        known = invitation_id.isdigit() and int(invitation_id) <= MAX_ROW_ID
        found = await invitations.state(int(invitation_id)) if known else None
        # An invite key sees its own invitations only; an admin key sees all.
        if found is None or (key.scope != Scope.ADMIN and found.invitation.source != key.name):
            raise ApiError(404, f"no invitation {invitation_id}")
        row = found.invitation
        conv = found.conversation
        return InvitationStateOut(
            id=str(row.id),
            status=row.status,
            reason=row.reason,
            detail=row.detail,
            send_at=row.send_at,
            source=row.source,
            interaction_id=row.interaction_id,
            channel=row.channel,
            user_id=row.user_id,
            touchpoint=row.touchpoint,
            flow_id=row.flow_id,
            context=row.context,
            created_at=row.created_at,
            requested_at=row.requested_at,
            decided_at=row.decided_at,
            sent_at=row.decided_at if row.status == InvitationStatus.SENT else None,
            conversation=ConversationOut(**asdict(conv)) if conv is not None else None,
        )

    @api.get(
        "/suppressions",
        response_model=SuppressionListOut,
        responses=_ERRORS,
        summary="The suppression list (admin)",
    )
    async def list_suppressions(
        _key: AdminKey,
        channel: Annotated[str | None, Query(pattern="^(telegram|slack)$")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        # Bounded: databases take 64-bit offsets only (2**63 was a 500, found by schemathesis).
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> Any:
        entries = await asyncio.to_thread(
            suppressions.entries, channel=channel, limit=limit, offset=offset
        )
        return SuppressionListOut(suppressions=[_suppression(e) for e in entries])

    @api.post(
        "/suppressions",
        response_model=SuppressionOut,
        status_code=201,
        responses={200: {"model": SuppressionOut, "description": "Already suppressed."}, **_ERRORS},
        summary="Suppress a customer: no invitation reaches them (admin)",
    )
    async def add_suppression(body: SuppressionIn, key: AdminKey, response: Response) -> Any:
        problem = user_id_problem(body.channel, body.user_id)
        if problem is not None:
            return _problems([Problem("user_id", problem)])
        added = await asyncio.to_thread(
            suppressions.add, body.channel, body.user_id, note=body.note, by=key.name
        )
        if not added:
            response.status_code = 200
        entry = await asyncio.to_thread(suppressions.get, body.channel, body.user_id)
        assert entry is not None
        return _suppression(entry)

    @api.delete(
        "/suppressions",
        response_model=RemovedOut,
        responses={404: {"model": ErrorOut, "description": "Not on the list."}, **_ERRORS},
        summary="Take a customer off the suppression list (admin)",
    )
    async def remove_suppression(
        _key: AdminKey,
        channel: Annotated[str, Query(pattern="^(telegram|slack)$")],
        user_id: Annotated[str, Query(min_length=1, max_length=128)],
    ) -> Any:
        if not await asyncio.to_thread(suppressions.remove, channel, user_id):
            raise ApiError(404, f"{channel}:{user_id} is not on the suppression list")
        return RemovedOut(removed=True)

    if privacy is not None:

        @api.delete(
            "/customers/{customer}",
            response_model=ErasedOut,
            responses=_ERRORS,
            summary="Erase a customer's personal data and never invite them again (admin)",
            description="`customer` is `CHANNEL:USER_ID`, e.g. `telegram:123456789`. Free text "
            "and names are deleted, scores stay anonymous; see the README's Privacy section.",
        )
        async def erase_customer(customer: str, key: AdminKey) -> Any:
            channel, _sep, user_id = customer.partition(":")
            problem = check_customer(channel, user_id)
            if problem is not None:
                return _problems([Problem("customer", problem)])
            done = await asyncio.to_thread(privacy.erase, channel, user_id, by=key.name)
            return ErasedOut(
                channel=channel,
                user_id=user_id,
                counts={table: n for table, n in done.counts.items() if n},
                suppressed=done.suppressed,
            )

    return api
