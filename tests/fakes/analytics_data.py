"""Survey responses for the analytics tests: one call stores a customer, their survey with
its scores and comment, the comment's model label and correction, and the invitation that
opened it (touchpoint), as the bot would."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from storage.database import transaction
from storage.tables import (
    Answer,
    Invitation,
    InvitationStatus,
    LabelCorrection,
    SentimentScore,
)
from tests.fakes.review_data import completed_survey

SCALES = {"nps": (0, 10), "ces": (1, 7), "csat": (1, 5)}


@dataclass
class Responses:
    """A database to store responses in; `count` makes each customer unique."""

    db: Engine
    count: int = 0
    text_answers: list[int] = field(default_factory=list)

    def add(
        self,
        at: datetime,
        *,
        nps: int | None = None,
        ces: int | None = None,
        csat: int | None = None,
        comment: str | None = None,
        label: str | None = None,
        corrected: str | None = None,
        flow: str = "delivery",
        channel: str = "telegram",
        touchpoint: str | None = None,
        context: dict[str, Any] | None = None,
        ces_scale: tuple[int, int] = (1, 7),
        skipped: tuple[str, ...] = (),
    ) -> int:
        """Store one completed survey answered at `at` (every answer at that moment); returns
        the conversation id. `label`: the model's; `corrected`: a person's later label."""
        self.count += 1
        with transaction(self.db) as s:
            customer, conversation = completed_survey(
                s,
                channel=channel,
                external_id=f"analytics-{self.count}",
                flow=flow,
                at=at,
                context=context or {},
                completed=True,
            )
            assert customer.id is not None and conversation.id is not None
            common: dict[str, Any] = {
                "conversation_id": conversation.id,
                "customer_id": customer.id,
                "channel": channel,
                "flow_id": flow,
                "flow_version": 1,
                "answered_at": at,
            }
            for kind, value in (("nps", nps), ("ces", ces), ("csat", csat)):
                if value is None:
                    continue
                low, high = ces_scale if kind == "ces" else SCALES[kind]
                s.add(
                    Answer(
                        **common,
                        question_id=kind,
                        question_type=kind,
                        raw_text=str(value),
                        value_int=None if kind in skipped else value,
                        skipped=kind in skipped,
                        scale_min=low,
                        scale_max=high,
                    )
                )
            if comment is not None:
                text = Answer(
                    **common,
                    question_id="why",
                    question_type="text",
                    raw_text=comment,
                    value_text=comment,
                    skipped="why" in skipped,
                )
                s.add(text)
                s.flush()
                assert text.id is not None
                self.text_answers.append(text.id)
                if label is not None:
                    s.add(
                        SentimentScore(
                            answer_id=text.id,
                            label=label,
                            confidence=0.9,
                            model_id="tests/model",
                            model_version="v1",
                            scored_at=at,
                        )
                    )
                if corrected is not None:
                    s.add(
                        LabelCorrection(
                            answer_id=text.id,
                            old_label=label or "unlabelled",
                            new_label=corrected,
                            model_label=label,
                            actor="desk:ana@example.com",
                            created_at=at + timedelta(hours=1),
                        )
                    )
            if touchpoint is not None:
                s.add(
                    Invitation(
                        source="tests",
                        interaction_id=f"i-{self.count}",
                        customer_id=customer.id,
                        channel=channel,
                        user_id=customer.external_id,
                        touchpoint=touchpoint,
                        flow_id=flow,
                        status=InvitationStatus.SENT,
                        created_at=at - timedelta(minutes=3),
                        requested_at=at - timedelta(minutes=3),
                        send_at=at - timedelta(minutes=3),
                        decided_at=at - timedelta(minutes=2),
                        conversation_id=conversation.id,
                    )
                )
            return conversation.id
