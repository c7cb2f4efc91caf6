"""`cxbot flows simulate FILE`: answer a draft flow as a customer, with nothing stored.

The draft runs on the real engine (the same parsing, branching, texts and thanks as a live
survey) over a throwaway SQLite database in a temporary folder, deleted afterwards; the
configured database is never opened. Sentiment, webhooks and reminders are off.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from bot.config import DatabaseSettings, SentimentSettings, Settings
from bot.engine import Engine
from bot.flow_catalog import FlowCatalog
from bot.flow_model import Flow
from bot.messages import IncomingMessage, OutgoingMessage
from storage.database import open_database

CHANNEL = "console"
CUSTOMER = "simulator"


def simulation_settings(settings: Settings, flow: Flow, folder: Path) -> Settings:
    """The settings of a simulation: the draft as the default flow, a throwaway database."""
    return settings.model_copy(
        update={
            "database": DatabaseSettings(url=f"sqlite:///{folder / 'simulation.db'}"),
            "flows": settings.flows.model_copy(update={"default": flow.id}),
            "sentiment": SentimentSettings(enabled=False),
            "webhooks": [],
        }
    )


async def simulate(
    flow: Flow,
    settings: Settings,
    *,
    answers: TextIO,
    out: TextIO,
    locale: str | None = None,
    context: Mapping[str, str] | None = None,
) -> int:
    """Run `flow` as a customer answering one line of `answers` per message; print the bot's
    messages to `out`. Returns how many messages the customer sent."""
    from adapters.console import render as render_message

    def show(messages: list[OutgoingMessage]) -> None:
        for message in messages:
            out.write(render_message(message) + "\n")
        out.flush()

    with tempfile.TemporaryDirectory(prefix="cxbot-simulate-") as tmp:
        sim = simulation_settings(settings, flow, Path(tmp))
        db = open_database(sim.database_url)
        try:
            engine = Engine(db=db, catalog=FlowCatalog([flow]), settings=sim)
            show(
                await engine.begin(
                    channel=CHANNEL,
                    user_id=CUSTOMER,
                    flow_id=flow.id,
                    context=dict(context or flow.context),
                    first_name="Sam",
                    locale=locale,
                )
            )
            sent = 0
            for line in answers:
                text = line.rstrip("\r\n")
                out.write(f"> {text}\n")
                show(
                    await engine.handle(
                        IncomingMessage(channel=CHANNEL, user_id=CUSTOMER, text=text)
                    )
                )
                sent += 1
            return sent
        finally:
            db.dispose()
