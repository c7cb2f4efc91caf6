"""`GET /metrics` in the Prometheus text format, with the official client (prometheus-client).

Each web app gets its own `CollectorRegistry` (never the library's global one), so tests build
as many apps as they like. Two kinds of numbers are served:

- the bot's work, read from the database at scrape time (`storage.ops_counts`): turns, answers,
  flags, sentiment backlog and latency, outbox depth and delivery failures — the same in every
  process and across restarts;
- `cxbot_http_responses_total{code}`: the responses this process answered, counted by a
  middleware (the path is not a label: arbitrary paths would make arbitrary series).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from storage.ops_counts import OpsCounts

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
LATENCY_QUANTILES = (0.5, 0.9, 0.99)

_M = TypeVar("_M", GaugeMetricFamily, CounterMetricFamily)
CountsReader = Callable[[], OpsCounts]  # blocking: called in a worker thread at scrape time


class OpsCollector(Collector):
    """Turns one `OpsCounts` snapshot into metric families at each scrape."""

    def __init__(self, read: CountsReader) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        """The families of one snapshot (an unreadable database fails the scrape: 503)."""
        counts = self._read()
        yield _family(
            CounterMetricFamily("cxbot_turns", "Inbound updates processed.", labels=["channel"]),
            counts.turns.items(),
        )
        yield _family(
            GaugeMetricFamily(
                "cxbot_inbox_pending", "Inbound updates waiting.", labels=["channel"]
            ),
            counts.inbox_pending.items(),
        )
        answers = CounterMetricFamily(
            "cxbot_answers", "Answers stored.", labels=["flow", "question_type"]
        )
        for (flow, qtype), n in sorted(counts.answers.items()):
            answers.add_metric([flow, qtype], n)
        yield answers
        yield _family(
            GaugeMetricFamily(
                "cxbot_flags", "Conversations flagged for review, by status.", labels=["status"]
            ),
            counts.flags.items(),
        )
        yield GaugeMetricFamily(
            "cxbot_sentiment_backlog",
            "Free-text answers not yet labelled by the sentiment model.",
            value=counts.sentiment_backlog,
        )
        latency = GaugeMetricFamily(
            "cxbot_sentiment_latency_seconds",
            "Seconds from answer to sentiment label, over the newest labels.",
            labels=["quantile"],
        )
        for q, value in _quantiles(counts.sentiment_latencies, LATENCY_QUANTILES):
            latency.add_metric([str(q)], value)
        yield latency
        yield _family(
            GaugeMetricFamily(
                "cxbot_outbox_pending", "Messages waiting to be sent.", labels=["channel"]
            ),
            counts.outbox_pending.items(),
        )
        yield _family(
            CounterMetricFamily(
                "cxbot_outbox_failed", "Messages given up after retries.", labels=["channel"]
            ),
            counts.outbox_failed.items(),
        )
        yield _family(
            CounterMetricFamily(
                "cxbot_delivery_failures",
                "Recorded delivery failures (alerts, replies, surveys).",
                labels=["channel"],
            ),
            counts.delivery_failures.items(),
        )


def _family(family: _M, items: Iterable[tuple[str, int]]) -> _M:
    for label, n in sorted(items):
        family.add_metric([label], n)
    return family


def _quantiles(values: Sequence[float], qs: Sequence[float]) -> list[tuple[float, float]]:
    if not values:
        return []
    ordered = sorted(values)
    last = len(ordered) - 1
    return [(q, ordered[min(last, round(q * last))]) for q in qs]


def install_metrics(app: FastAPI, *, read_counts: CountsReader | None) -> CollectorRegistry:
    """Count every response of `app` and serve `GET /metrics`; returns the app's registry."""
    # No auto-describe: it would read the database when the collector is registered.
    registry = CollectorRegistry(auto_describe=False)
    responses = Counter(
        "cxbot_http_responses", "HTTP responses, by status code.", ["code"], registry=registry
    )
    if read_counts is not None:
        registry.register(OpsCollector(read_counts))

    @app.middleware("http")
    async def count_responses(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        try:
            response = await call_next(request)
        except Exception:
            responses.labels(code="500").inc()
            raise
        responses.labels(code=str(response.status_code)).inc()
        return response

    async def metrics() -> Response:
        # Off the loop: the collector queries the database synchronously.
        try:
            body = await asyncio.to_thread(generate_latest, registry)
        except Exception as exc:  # the database is down: say so, as /healthz would
            log.warning("/metrics: cannot read the counts: %s", exc)
            return PlainTextResponse(f"metrics unavailable: {exc}\n", status_code=503)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    app.add_api_route(METRICS_PATH, metrics, methods=["GET"], include_in_schema=False)
    return registry
