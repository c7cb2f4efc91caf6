"""The webhook sender against a loopback receiver: signatures checked by the Standard Webhooks
reference verifier, and what each kind of answer means to the delivery worker."""

from __future__ import annotations

import base64
import hashlib
import hmac
import socket
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from adapters.webhooks import WebhookSender, WebhookTarget, encode_payload, sign
from bot.errors import (
    DeliveryError,
    DeliveryRefusedError,
    RateLimitedError,
    RecipientUnreachableError,
)
from bot.messages import OutgoingEvent
from bot.webhook_settings import decode_secret
from tests.fakes.webhook_receiver import WebhookReceiver

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
PAYLOAD = {
    "type": "response.completed",
    "timestamp": "2026-11-29T22:30:00.000001Z",
    "data": {"conversation_id": 7, "comment": "Très bien 👍"},
}


class StepClock:
    """Unix seconds that tests move on (the signature's timestamp)."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    fake = WebhookReceiver()
    yield fake
    fake.stop()


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


@pytest.fixture
async def sender(receiver: WebhookReceiver, clock: StepClock) -> AsyncIterator[WebhookSender]:
    targets = [
        WebhookTarget(name="crm", url=receiver.url("/crm"), key=decode_secret(SECRET)),
        WebhookTarget(
            name="slow", url=receiver.url("/slow"), key=decode_secret(SECRET), timeout=0.2
        ),
    ]
    webhooks = WebhookSender(targets, clock=clock)
    yield webhooks
    await webhooks.aclose()


def event(endpoint: str = "crm", event_id: str = "msg_1") -> OutgoingEvent:
    return OutgoingEvent(endpoint=endpoint, event_id=event_id, payload=PAYLOAD)


def test_the_signature_is_the_reference_implementations() -> None:
    body = encode_payload(PAYLOAD)
    ours = sign(decode_secret(SECRET), event_id="msg_1", timestamp=1_700_000_000, body=body)
    moment = datetime.fromtimestamp(1_700_000_000, UTC)
    reference = Webhook(SECRET).sign("msg_1", moment, body.decode())
    assert ours == reference


async def test_an_event_is_posted_signed_and_verifies(
    sender: WebhookSender, receiver: WebhookReceiver, clock: StepClock
) -> None:
    await sender.send_event(event())
    [request] = receiver.received
    assert request.path == "/crm"
    assert request.body == encode_payload(PAYLOAD)
    assert request.verify(SECRET) == PAYLOAD  # the reference verifier accepts it
    assert request.headers["webhook-id"] == "msg_1"
    assert request.headers["webhook-timestamp"] == str(int(clock.now))
    assert request.headers["content-type"] == "application/json"
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + base64.b64encode(b"x" * 32).decode()).verify(
            request.body, request.headers
        )


async def test_a_retry_keeps_its_id_and_carries_a_new_timestamp(
    sender: WebhookSender, receiver: WebhookReceiver, clock: StepClock
) -> None:
    receiver.answer(500, body=b"database down")
    with pytest.raises(DeliveryError, match="HTTP 500: database down") as failed:
        await sender.send_event(event())
    assert not isinstance(failed.value, DeliveryRefusedError | RecipientUnreachableError)
    clock.now += 90
    await sender.send_event(event())
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == "msg_1"
    assert int(second.headers["webhook-timestamp"]) == int(first.headers["webhook-timestamp"]) + 90
    assert first.headers["webhook-signature"] != second.headers["webhook-signature"]
    assert second.verify(SECRET) == PAYLOAD


async def test_gone_stops_every_later_event_for_that_endpoint(
    sender: WebhookSender, receiver: WebhookReceiver
) -> None:
    receiver.answer(410)
    with pytest.raises(RecipientUnreachableError, match="HTTP 410"):
        await sender.send_event(event())
    with pytest.raises(RecipientUnreachableError, match="410 Gone earlier"):
        await sender.send_event(event(event_id="msg_2"))
    assert len(receiver.received) == 1  # the second was never posted


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_other_client_errors_are_refusals(
    sender: WebhookSender, receiver: WebhookReceiver, status: int
) -> None:
    receiver.answer(status, body=b"no such tenant")
    with pytest.raises(DeliveryRefusedError, match=f"HTTP {status}: no such tenant"):
        await sender.send_event(event())


async def test_a_redirect_is_not_followed(sender: WebhookSender, receiver: WebhookReceiver) -> None:
    receiver.answer(301, headers={"Location": "https://elsewhere.example/hook"})
    with pytest.raises(DeliveryRefusedError, match=r"redirect to https://elsewhere\.example/hook"):
        await sender.send_event(event())
    assert len(receiver.received) == 1


async def test_too_many_requests_waits_as_told(
    sender: WebhookSender, receiver: WebhookReceiver
) -> None:
    receiver.answer(429, headers={"Retry-After": "7"})
    with pytest.raises(RateLimitedError) as limited:
        await sender.send_event(event())
    assert limited.value.retry_after == 7.0


@pytest.mark.parametrize("status", [408, 502, 503])
async def test_server_errors_and_request_timeouts_are_retried(
    sender: WebhookSender, receiver: WebhookReceiver, status: int
) -> None:
    receiver.answer(status)
    with pytest.raises(DeliveryError) as failed:
        await sender.send_event(event())
    assert type(failed.value) is DeliveryError  # plain: the worker tries it again


async def test_a_slow_endpoint_times_out_and_is_retried(
    sender: WebhookSender, receiver: WebhookReceiver
) -> None:
    receiver.answer(200, delay=5.0)
    with pytest.raises(DeliveryError, match=r"no answer within 0\.2 s") as failed:
        await sender.send_event(event("slow"))
    assert type(failed.value) is DeliveryError
    await sender.send_event(event("slow"))  # answered at once this time
    assert [r.path for r in receiver.received] == ["/slow", "/slow"]


async def test_an_unreachable_endpoint_is_retried() -> None:
    with socket.socket() as probe:  # a loopback port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    target = WebhookTarget(name="down", url=f"http://127.0.0.1:{port}/", key=b"k" * 32)
    sender = WebhookSender([target])
    try:
        with pytest.raises(DeliveryError, match="webhook down: ConnectError") as failed:
            await sender.send_event(event("down"))
        assert type(failed.value) is DeliveryError
    finally:
        await sender.aclose()


async def test_an_endpoint_no_longer_configured_is_refused(sender: WebhookSender) -> None:
    with pytest.raises(DeliveryRefusedError, match="'old' is no longer configured"):
        await sender.send_event(event("old"))


def readme_verifier(secret: str, raw_body: bytes, headers: dict[str, str]) -> bool:
    """The README's verification "by hand", word for word."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    msg_id, stamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(stamp)) > 300:
        return False  # too old or too new: a replay
    signed = f"{msg_id}.{stamp}.".encode() + raw_body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        hmac.compare_digest(expected, sig.partition(",")[2])
        for sig in headers["webhook-signature"].split()
    )


async def test_the_readme_verifier_accepts_a_delivery_and_rejects_a_forgery(
    sender: WebhookSender, receiver: WebhookReceiver
) -> None:
    await sender.send_event(event())
    [request] = receiver.received
    assert readme_verifier(SECRET, request.body, request.headers)
    assert not readme_verifier(SECRET, request.body + b" ", request.headers)
    forged = {**request.headers, "webhook-id": "msg_2"}
    assert not readme_verifier(SECRET, request.body, forged)
