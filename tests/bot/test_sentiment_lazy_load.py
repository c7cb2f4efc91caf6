"""`cxbot serve` loads the sentiment model on first need, once: not at start, but for the first
text to label or the first flow condition on a text's sentiment."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from bot.app import App, build_app
from bot.config import load_settings
from bot.serve import background_tasks
from nlp.classifier import SentimentClassifier
from storage.database import transaction
from storage.tables import SentimentScore
from tests.bot.test_engine import open_survey
from tests.bot.test_sentiment_branch import CALL, FLOW
from tests.fakes.sentiment import KeywordClassifier


class CountingLoader:
    """A loader that hands out one keyword classifier and records every load."""

    def __init__(self) -> None:
        self.loads = 0
        self.classifier = KeywordClassifier()

    def __call__(self) -> SentimentClassifier:
        self.loads += 1
        return self.classifier


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "callback.toml").write_text(FLOW, encoding="utf-8")
    settings = load_settings(
        None,
        environ={
            "CXBOT_GENERAL__DATA_DIR": str(tmp_path / "data"),
            "CXBOT_FLOWS__DIRS": str(flows),
            "CXBOT_FLOWS__DEFAULT": "callback",
            "CXBOT_SENTIMENT__POLL_SECONDS": "0.02",
            "CXBOT_SENTIMENT__MAX_WAIT_SECONDS": "0",
            "CXBOT_SENTIMENT__BRANCH_WAIT_SECONDS": "10",
        },
    )
    application = build_app(settings)
    yield application
    application.close()


def labels(app: App) -> list[str]:
    with transaction(app.db) as s:
        return [row.label for row in s.exec(select(SentimentScore))]


async def until_labelled(app: App, count: int) -> list[str]:
    for _ in range(400):
        if len(found := labels(app)) >= count:
            return found
        await asyncio.sleep(0.025)
    return labels(app)


def sentiment_task(app: App, loader: CountingLoader) -> asyncio.Future[None]:
    task = next(t for t in background_tasks(app, sentiment_loader=loader) if t.name == "sentiment")
    return asyncio.ensure_future(task.run())


async def test_serve_loads_nothing_until_a_text_needs_a_label_then_loads_once(app: App) -> None:
    loader = CountingLoader()
    running = sentiment_task(app, loader)
    try:
        await asyncio.sleep(0.2)  # ten polls with nothing to label
        assert loader.loads == 0
        survey = await open_survey(app, "ann")
        await survey.push("8")  # a passive: the call-back question is not asked
        await survey.push("the app is fine")
        assert await until_labelled(app, 1) == ["neutral"]
        survey = await open_survey(app, "bob")
        await survey.push("7")
        await survey.push("great people")
        assert await until_labelled(app, 2) == ["neutral", "positive"]
        assert loader.loads == 1
    finally:
        running.cancel()


async def test_a_flow_condition_on_sentiment_loads_the_model_and_waits_for_it(app: App) -> None:
    loader = CountingLoader()
    running = sentiment_task(app, loader)
    try:
        await asyncio.sleep(0.1)
        assert loader.loads == 0
        survey = await open_survey(app, "ann")
        await survey.push("10")
        # A promoter's score alone says positive (not asked); the model's label says negative.
        await survey.push("the app is a disaster")
        assert CALL in survey.pop_all()[-1].text
        assert await until_labelled(app, 1) == ["negative"]
        assert loader.loads == 1
    finally:
        running.cancel()
