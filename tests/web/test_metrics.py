"""`GET /metrics`: the Prometheus text format, the stored counts and HTTP status counts."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from storage.ops_counts import OpsCounts
from web.server import build_web_app


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_serves_the_counts_and_http_statuses() -> None:
    counts = OpsCounts(
        turns={"telegram": 5},
        answers={("nps", "nps"): 3},
        flags={"open": 2},
        sentiment_backlog=4,
        sentiment_latencies=[1.0, 2.0, 30.0],
        outbox_pending={"slack": 6},
        outbox_failed={"slack": 1},
        delivery_failures={"slack": 2},
    )
    app = build_web_app(metrics=lambda: counts)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cxbot") as c:
        assert (await c.get("/healthz")).status_code == 200
        assert (await c.get("/nope")).status_code == 404
        response = await c.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    got = samples(response.text)
    assert got[("cxbot_turns_total", (("channel", "telegram"),))] == 5
    assert got[("cxbot_answers_total", (("flow", "nps"), ("question_type", "nps")))] == 3
    assert got[("cxbot_flags", (("status", "open"),))] == 2
    assert got[("cxbot_sentiment_backlog", ())] == 4
    assert got[("cxbot_sentiment_latency_seconds", (("quantile", "0.5"),))] == 2.0
    assert got[("cxbot_sentiment_latency_seconds", (("quantile", "0.99"),))] == 30.0
    assert got[("cxbot_outbox_pending", (("channel", "slack"),))] == 6
    assert got[("cxbot_outbox_failed_total", (("channel", "slack"),))] == 1
    assert got[("cxbot_delivery_failures_total", (("channel", "slack"),))] == 2
    assert got[("cxbot_http_responses_total", (("code", "200"),))] == 1
    assert got[("cxbot_http_responses_total", (("code", "404"),))] == 1


async def test_refused_bodies_are_counted_too() -> None:
    app = build_web_app(metrics=OpsCounts, max_body_bytes=10)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cxbot") as c:
        assert (await c.post("/healthz", content=b"x" * 100)).status_code == 413
        text = (await c.get("/metrics")).text
    assert samples(text)[("cxbot_http_responses_total", (("code", "413"),))] == 1


async def test_an_unreadable_database_is_a_503_naming_it() -> None:
    def down() -> OpsCounts:
        raise RuntimeError("database does not answer")

    transport = httpx.ASGITransport(app=build_web_app(metrics=down))
    async with httpx.AsyncClient(transport=transport, base_url="http://cxbot") as c:
        response = await c.get("/metrics")
    assert (response.status_code, response.text) == (
        503,
        "metrics unavailable: database does not answer\n",
    )


async def test_each_app_has_its_own_registry() -> None:
    first, second = build_web_app(metrics=OpsCounts), build_web_app(metrics=OpsCounts)
    for app in (first, second):  # a shared registry would refuse the second app's metrics
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cxbot") as c:
            text = (await c.get("/metrics")).text
        assert ("cxbot_http_responses_total", (("code", "200"),)) not in samples(text)


async def test_no_metrics_route_unless_asked() -> None:
    transport = httpx.ASGITransport(app=build_web_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://cxbot") as c:
        assert (await c.get("/metrics")).status_code == 404
