"""A realistic stage for the web desk: `cxbot serve` with Telegram, Slack alerts and the desk.

Customers answer the survey on Telegram (the fake Bot API, long polling); flagged replies are
posted to the Slack alert channel (the fake Slack API, HTTP mode); the sentiment model (the
keyword stand-in) labels the comments; desk users are made as `cxbot users add` makes them.

    async with desk_serving(tmp_path) as desk:
        review_id = await desk.flag(42, name="Bo", score=2, comment="awful app")
        desk.add_user("ana@example.com", "admin")
        ... drive desk.url + "/desk/login" in a browser ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import col, func, select

from bot.app import App
from bot.desk_users import DeskAccount, add_user
from bot.sentiment_worker import SentimentWorker
from storage.database import transaction
from storage.tables import Answer, Customer, ReviewAlert, ReviewItem, SentimentScore
from tests.fakes.sentiment import KeywordClassifier
from tests.fakes.serving import running
from tests.fakes.slack_api import FakeSlackAPI
from tests.fakes.slack_setup import ALERTS, slack_settings, wait_until
from tests.fakes.telegram_api import FakeTelegramAPI

PASSWORD = "correct horse battery"  # every desk user's password in these tests


@dataclass
class DeskStage:
    """`cxbot serve` (desk on) with its fake Telegram and Slack APIs."""

    app: App
    url: str
    telegram: FakeTelegramAPI
    slack: FakeSlackAPI
    classifier: KeywordClassifier

    async def flag(self, chat_id: int, *, name: str, score: int, comment: str) -> int:
        """A Telegram customer answers NPS `score` (≤ 6: flagged) and the follow-up `comment`;
        the model labels the comment. Returns the review item's id once its alert is in Slack.
        """
        sent = len(self.telegram.sent(chat_id))
        self.telegram.send_text(chat_id, "/start", first_name=name)
        await self.telegram.wait_texts(chat_id, sent + 2)  # the intro and the NPS question
        self.telegram.send_text(chat_id, str(score), first_name=name)
        await self.telegram.wait_texts(chat_id, sent + 3)  # the follow-up question
        self.telegram.send_text(chat_id, comment, first_name=name)
        await self.telegram.wait_texts(chat_id, sent + 4)  # the next question: comment stored
        worker = SentimentWorker(
            db=self.app.db, settings=self.app.settings, loader=lambda: self.classifier
        )
        await worker.drain()
        review_id = self.review_of(chat_id)
        assert review_id is not None, f"the answers of chat {chat_id} were not flagged"
        await wait_until(
            lambda: self._alert_current(review_id), timeout=10, what=f"the alert of #{review_id}"
        )
        return review_id

    def review_of(self, chat_id: int) -> int | None:
        """The id of the newest review item of a Telegram customer, if any."""
        with transaction(self.app.db) as s:
            stmt = (
                select(ReviewItem.id)
                .join(Customer, col(Customer.id) == col(ReviewItem.customer_id))
                .where(Customer.channel == "telegram", Customer.external_id == str(chat_id))
                .order_by(col(ReviewItem.id).desc())
            )
            return s.exec(stmt).first()

    def _alert_current(self, review_id: int) -> bool:
        """The item's alert is posted, shows its latest state and labels, and is released
        (the poster's own test of "changed", in reverse)."""
        with transaction(self.app.db) as s:
            alert = s.exec(
                select(ReviewAlert).where(ReviewAlert.review_item_id == review_id)
            ).first()
            item = s.get(ReviewItem, review_id)
            if alert is None or item is None:
                return False
            labels = s.exec(
                select(func.count(col(SentimentScore.id)))
                .join(Answer, col(Answer.id) == col(SentimentScore.answer_id))
                .where(Answer.conversation_id == item.conversation_id)
            ).one()
            return (
                alert.message_ts is not None
                and alert.claimed_at is None
                and alert.shown_version == item.updated_at
                and (alert.shown_labels == labels or item.status == "resolved")
            )

    def add_user(self, email: str, role: str, password: str = PASSWORD) -> DeskAccount:
        """A desk user, as `cxbot users add EMAIL --role ROLE` makes one."""
        return add_user(self.app.db, email=email, role=role, password=password)

    def alert(self, review_id: int) -> dict[str, Any]:
        """The Slack alert of a review item as the channel shows it now (after updates)."""
        with transaction(self.app.db) as s:
            ts = s.exec(
                select(ReviewAlert.message_ts).where(ReviewAlert.review_item_id == review_id)
            ).one()
        (message,) = [m for m in self.slack.posted(ALERTS) if m["ts"] == ts]
        return message

    def alert_updates(self, review_id: int) -> list[str]:
        """The text of every chat.update body sent for a review item's alert, oldest first."""
        ts = self.alert(review_id)["ts"]
        return [
            str(c.body.get("blocks", "")) + str(c.body.get("text", ""))
            for c in self.slack.requests("chat.update", channel=ALERTS)
            if c.body.get("ts") == ts
        ]


@asynccontextmanager
async def desk_serving(tmp_path: Path, **extra: str) -> AsyncIterator[DeskStage]:
    """`cxbot serve` with Telegram polling the fake Bot API, Slack (HTTP mode, alerts on) at
    the fake Slack API and the web desk on, until the block ends. `extra`: more settings
    (``desk__response_target_hours="1"``)."""
    with FakeTelegramAPI() as telegram, FakeSlackAPI() as slack:
        settings = slack_settings(
            slack,
            tmp_path,
            telegram__token=telegram.token,
            telegram__base_url=telegram.base_url,
            desk__enabled="true",
            **extra,
        )
        async with running(settings) as (app, url):
            yield DeskStage(
                app=app, url=url, telegram=telegram, slack=slack, classifier=KeywordClassifier()
            )
