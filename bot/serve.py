"""`cxbot serve`: every configured channel, background work and the one HTTP server.

What runs is assembled from parts, so that more can join without touching the loop:

- a `Service` starts and stops with serve (a channel: Telegram polling or webhook);
- a `BackgroundTask` runs as long as serve does (a worker); if it ends or fails by itself, serve
  stops with an error rather than limp on without it;
- `Route`s are mounted on the HTTP server (`[server] host/port`), which always serves `/healthz`;
  so are the REST API (`/api/v1`) and, with `[desk] enabled`, the support desk (`/desk`).

Start order: services, then the HTTP server, then background tasks; stop order is the reverse,
so that no webhook arrives at a channel already stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from bot.app import App
from bot.channels import (
    build_telegram_bot,
    build_telegram_channel,
    build_telegram_sender,
    slack_token,
    telegram_token,
)
from bot.delivery import DeliveryWorker
from bot.desk_work import DeskWork
from bot.errors import CxbotError
from bot.housekeeping import run_housekeeping
from bot.inbox import Inbox, InboxWorker, Translator
from bot.invitations.serving import plan_invitations
from bot.messages import ChannelSender
from bot.reminders import build_reminder_worker
from bot.reviews import AlertPoster
from bot.sentiment_worker import Loader, SentimentWorker
from bot.webhook_serve import plan_webhooks
from storage.database import ping
from storage.ops_counts import read_ops_counts
from web.desk.app import DESK_PREFIX, build_desk_app
from web.server import Mount, Route, WebServer, build_web_app, telegram_webhook_route

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Service:
    """Something that starts and stops with `cxbot serve`, such as a channel."""

    name: str
    start: Callable[[], Awaitable[None]]
    stop: Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class BackgroundTask:
    """A coroutine function that runs until serve cancels it (a worker loop)."""

    name: str
    run: Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Serving:
    """What serve is running, given to `on_ready` once everything accepts work."""

    url: str
    channels: tuple[str, ...]


@dataclass
class Plan:
    """The channels' share of serve: services, routes, and the inbox and outbox workers."""

    services: list[Service] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    mounts: list[Mount] = field(default_factory=list)  # the REST API under /api/v1
    channels: list[str] = field(default_factory=list)
    # e.g. Telegram polling, Slack's alert poster, the inbox and delivery workers
    tasks: list[BackgroundTask] = field(default_factory=list)
    senders: dict[str, ChannelSender] = field(default_factory=dict)
    translators: dict[str, Translator] = field(default_factory=dict)
    delivery: DeliveryWorker | None = None
    alerts: AlertPoster | None = None  # Slack's alert poster, when [slack] alert_channel is set
    desk: DeskWork | None = None  # the web desk's work, when [desk] enabled


def plan_channels(app: App, inbox: Inbox | None = None) -> Plan:
    """Services, routes and tasks of every configured channel (each when its token is set)."""
    plan = Plan()
    inbox = inbox or Inbox(db=app.db)
    if telegram_token(app.settings) is not None:
        _plan_telegram(app, plan, inbox)
    if slack_token(app.settings) is not None:
        _plan_slack(app, plan, inbox)
    if plan.senders:
        cfg = app.settings.delivery
        delivery = DeliveryWorker(
            db=app.db,
            senders=plan.senders,
            max_in_flight=cfg.max_in_flight,
            lease=timedelta(seconds=cfg.lease_seconds),
        )
        worker = InboxWorker(
            db=app.db, engine=app.engine, translators=plan.translators, on_queued=delivery.nudge
        )
        inbox.on_recorded(worker.nudge)
        plan.delivery = delivery
        plan.tasks.append(BackgroundTask(name="inbox", run=worker.run))
        plan.tasks.append(BackgroundTask(name="delivery", run=delivery.run))
        reminders = build_reminder_worker(
            settings=app.settings,
            db=app.db,
            engine=app.engine,
            channels=tuple(plan.senders),
            on_queued=delivery.nudge,
        )
        if reminders is not None:  # [reminders]: reminders and expiry of open surveys
            plan.tasks.append(BackgroundTask(name="reminders", run=reminders.run))
    invitations = plan_invitations(  # the REST API, and the scheduler of its invitations
        app,
        channels=tuple(plan.senders),
        on_queued=lambda: plan.delivery.nudge() if plan.delivery is not None else None,
    )
    plan.mounts.append(invitations.mount)
    if invitations.scheduler is not None:
        plan.tasks.append(BackgroundTask(name="invitations", run=invitations.scheduler.run))
    webhooks = plan_webhooks(app)  # [[webhooks]]: events have a delivery worker of their own
    if webhooks is not None:
        plan.channels.append("webhooks")
        plan.tasks.append(BackgroundTask(name="webhooks", run=webhooks.run))
    if app.settings.desk.enabled:
        _plan_desk(app, plan)
    return plan


def _plan_desk(app: App, plan: Plan) -> None:
    """The web desk at /desk: replies go out through the delivery worker of the channels
    served here, and each action updates the item's Slack alert at once (one state, two views)."""
    work = DeskWork(db=app.db, settings=app.settings.desk, can_reply=lambda c: c in plan.senders)

    async def update_alert(review_id: int) -> None:
        if plan.alerts is not None:
            await plan.alerts.sync(review_id)

    work.on_changed(update_alert)
    work.on_queued(lambda: plan.delivery.nudge() if plan.delivery is not None else None)
    plan.desk = work
    desk = build_desk_app(
        db=app.db, settings=app.settings.desk, work=work, app_settings=app.settings
    )
    plan.mounts.append(Mount(path=DESK_PREFIX, app=desk))


def _plan_telegram(app: App, plan: Plan, inbox: Inbox) -> None:
    from adapters.telegram import CHANNEL, translate_recorded

    tg = app.settings.telegram
    bot = build_telegram_bot(app.settings)
    channel = build_telegram_channel(app, inbox.recorder(CHANNEL), bot=bot)
    if tg.mode == "webhook":
        assert tg.secret_token is not None  # the settings refuse webhook mode without it
        secret = tg.secret_token.get_secret_value()

        async def start() -> None:
            await channel.start_webhook(
                url=tg.webhook_url,
                secret_token=secret,
                drop_pending_updates=tg.drop_pending_updates,
            )

        plan.routes.append(telegram_webhook_route(secret_token=secret, feed=channel.feed_webhook))
    else:

        async def start() -> None:
            await channel.start_polling(drop_pending_updates=tg.drop_pending_updates)

        plan.tasks.append(BackgroundTask(name="telegram-polling", run=channel.poll))
    plan.services.append(Service(name="telegram", start=start, stop=channel.stop))
    plan.channels.append(f"telegram ({tg.mode})")
    plan.senders[CHANNEL] = build_telegram_sender(bot)
    # Recorded updates were checked before they were recorded: the fast translation.
    plan.translators[CHANNEL] = translate_recorded


def _plan_slack(app: App, plan: Plan, inbox: Inbox) -> None:
    from adapters.slack import CHANNEL, translate_json
    from bot.slack_serve import SLACK_EVENTS_PATH, plan_slack

    slack = plan_slack(app, inbox.recorder(CHANNEL), can_reply=lambda c: c in plan.senders)
    plan.services.append(Service(name="slack", start=slack.start, stop=slack.channel.stop))
    if slack.mode == "http":
        plan.routes.append(Route(path=SLACK_EVENTS_PATH, endpoint=slack.channel.http_endpoint))
    plan.channels.append(f"slack ({slack.mode})")
    plan.senders[CHANNEL] = slack.sender
    plan.translators[CHANNEL] = translate_json
    slack.desk.on_queued(lambda: plan.delivery.nudge() if plan.delivery is not None else None)
    if slack.poster is not None:
        plan.alerts = slack.poster
        plan.tasks.append(BackgroundTask(name="slack-alerts", run=slack.poster.run))


def background_tasks(app: App, *, sentiment_loader: Loader | None = None) -> list[BackgroundTask]:
    """The background work `cxbot serve` runs beside the channels: clean-up, sentiment worker
    (with `sentiment_loader` instead of the configured model, for tests)."""

    async def housekeeping() -> None:
        await run_housekeeping(app.db, text_retention_days=app.settings.privacy.text_retention_days)

    tasks = [BackgroundTask(name="housekeeping", run=housekeeping)]
    if not app.settings.sentiment.enabled:
        return tasks
    worker = SentimentWorker(db=app.db, settings=app.settings, loader=sentiment_loader)
    app.engine.on_text_answer(worker.nudge)
    app.engine.use_sentiment_model(worker.classifier_within)

    # The model loads on first need — the first text to label, or a flow's sentiment condition
    # (`classifier_within`) — not at start: a serve process that has seen no free text yet
    # holds no model in memory. A model that cannot load is logged and retried by run().
    return [*tasks, BackgroundTask(name="sentiment", run=worker.run)]


async def serve(
    app: App,
    *,
    tasks: Sequence[BackgroundTask] = (),
    services: Sequence[Service] = (),
    routes: Sequence[Route] = (),
    stop: asyncio.Event | None = None,
    on_ready: Callable[[Serving], None] | None = None,
) -> None:
    """Run the configured channels, `services`, `tasks` and the HTTP server until `stop` is set.

    Raises CxbotError when a part fails to start, or when a background task or the HTTP server
    ends by itself; everything started is stopped again in any case.
    """
    stop = stop or asyncio.Event()
    plan = plan_channels(app)

    async def database() -> None:
        await asyncio.to_thread(ping, app.db)

    web = WebServer(
        build_web_app(
            routes=[*plan.routes, *routes],
            mounts=plan.mounts,
            health_checks={"database": database},
            info={"channels": plan.channels},
            metrics=lambda: read_ops_counts(app.db),
        ),
        host=app.settings.server.host,
        port=app.settings.server.port,
    )
    all_services = [*plan.services, *services]
    started: list[Service] = []
    running: dict[asyncio.Task[None], str] = {}
    try:
        for service in all_services:
            started.append(service)  # stopped even if its start fails half-way
            log.info("starting %s", service.name)
            await service.start()
        await web.start()
        for task in [*plan.tasks, *tasks]:
            running[asyncio.create_task(_run(task), name=task.name)] = task.name
        if on_ready is not None:
            on_ready(Serving(url=web.url, channels=tuple(plan.channels)))
        await _wait(stop, web, running)
    finally:
        for worker in running:
            worker.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await web.stop()
        for service in reversed(started):
            try:
                await service.stop()
            except Exception:
                # Keep stopping the others; the failure is logged with its traceback.
                log.exception("stopping %s failed", service.name)


async def _run(task: BackgroundTask) -> None:
    await task.run()


async def _wait(
    stop: asyncio.Event, web: WebServer, running: dict[asyncio.Task[None], str]
) -> None:
    stop_waiter = asyncio.create_task(stop.wait(), name="stop-signal")
    web_waiter = asyncio.create_task(web.wait(), name="web-server-watch")
    try:
        done, _ = await asyncio.wait(
            {stop_waiter, web_waiter, *running}, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for waiter in (stop_waiter, web_waiter):
            waiter.cancel()
        await asyncio.gather(stop_waiter, web_waiter, return_exceptions=True)
    if stop_waiter in done:
        return
    if web_waiter in done:
        raise CxbotError("the HTTP server stopped unexpectedly") from web_waiter.exception()
    for worker, name in running.items():
        if worker in done:
            error = worker.exception()
            reason = f"failed: {error}" if error is not None else "ended"
            raise CxbotError(f"background task {name} {reason}") from error


def run_serve(
    app: App,
    *,
    tasks: Sequence[BackgroundTask] = (),
    on_ready: Callable[[Serving], None] | None = None,
) -> None:
    """`serve` in a fresh event loop until SIGINT or SIGTERM, then a clean shutdown."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM)
        for sig in signals:
            loop.add_signal_handler(sig, stop.set)
        # What start-up made (modules, the configuration, compiled statements) lives as long as
        # the process: moved out of the collector's sight, so that a full collection (set off by
        # a page that makes tens of thousands of small objects, such as the analytics page) does
        # not walk all of it again — 100–200 ms each time otherwise.
        gc.collect()
        gc.freeze()
        try:
            await serve(app, tasks=tasks, stop=stop, on_ready=on_ready)
        finally:
            for sig in signals:
                with contextlib.suppress(ValueError, RuntimeError):
                    loop.remove_signal_handler(sig)

    asyncio.run(main())
