"""Review items for the desk's server tests, made the way real ones are: a customer answers the
survey (straight to the engine), the flag rules file the item, and a model label is stored.

    review_id = await flag(app, "42", name="Bo", score=2, comment="awful app")
"""

from __future__ import annotations

from sqlmodel import col, select

from bot.app import App
from bot.messages import IncomingMessage, MessageKind
from storage.database import transaction
from storage.sentiment import add_score
from storage.tables import Answer, Customer, ReviewItem

MODEL_ID = "test/keyword-model"
MODEL_VERSION = "v-test"


async def answer_survey(
    app: App,
    user_id: str,
    *,
    name: str = "Bo",
    score: int = 2,
    comment: str | None = "the app keeps crashing",
    channel: str = "telegram",
) -> None:
    """A customer starts the default survey, answers NPS `score` and the follow-up `comment`."""

    async def say(text: str | None = None, kind: MessageKind = MessageKind.TEXT) -> None:
        await app.engine.handle(
            IncomingMessage(channel=channel, user_id=user_id, text=text, kind=kind, first_name=name)
        )

    await say(kind=MessageKind.START)
    await say(str(score))
    if comment is not None:
        await say(comment)


async def flag(
    app: App,
    user_id: str,
    *,
    name: str = "Bo",
    score: int = 2,
    comment: str | None = "the app keeps crashing",
    label: str | None = "negative",
    confidence: float = 0.9,
    channel: str = "telegram",
) -> int:
    """`answer_survey` with a score that is flagged (≤ 6); the comment gets the model label
    `label` (None: no label). Returns the review item's id."""
    await answer_survey(app, user_id, name=name, score=score, comment=comment, channel=channel)
    with transaction(app.db) as s:
        item = s.exec(
            select(ReviewItem)
            .join(Customer, col(Customer.id) == col(ReviewItem.customer_id))
            .where(Customer.channel == channel, Customer.external_id == user_id)
            .order_by(col(ReviewItem.id).desc())
        ).first()
        assert item is not None and item.id is not None, f"{channel}:{user_id} was not flagged"
        if comment is not None and label is not None:
            answer = s.exec(
                select(Answer).where(
                    Answer.conversation_id == item.conversation_id,
                    Answer.question_type == "text",
                )
            ).one()
            assert answer.id is not None
            add_score(
                s,
                answer_id=answer.id,
                label=label,
                confidence=confidence,
                model_id=MODEL_ID,
                model_version=MODEL_VERSION,
            )
        return item.id


def text_answer_id(app: App, review_id: int) -> int:
    """The id of the (one) free-text answer of a review item."""
    with transaction(app.db) as s:
        item = s.get(ReviewItem, review_id)
        assert item is not None
        answer_id = s.exec(
            select(Answer.id).where(
                Answer.conversation_id == item.conversation_id, Answer.question_type == "text"
            )
        ).one()
        assert answer_id is not None
        return answer_id
