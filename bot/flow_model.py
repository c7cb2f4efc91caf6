"""The shape of a survey flow, as read from a flow TOML file.

These models hold data only; `bot.flow_loader` parses and validates files into them and
`bot.flow_logic` (conditions, branching, rendering) works on them. Conditions are structured data
and are never evaluated as code.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

# A text shown to customers: one string for every locale, or one string per locale code.
LocalizedText = str | dict[str, str]

# What a parsed answer holds: a score (int), a choice id (str), yes/no (bool); None when skipped.
AnswerValue = int | str | bool | None

IDENTIFIER = r"^[a-z][a-z0-9_]*$"


class QuestionType(StrEnum):
    """The kinds of question a flow can ask."""

    NPS = "nps"  # 0–10
    CES = "ces"  # 1–7 by default, scale configurable
    CSAT = "csat"  # 1–5
    TEXT = "text"
    CHOICE = "choice"  # one of a list
    YES_NO = "yes_no"


SCORE_TYPES = frozenset({QuestionType.NPS, QuestionType.CES, QuestionType.CSAT})

# Fixed scales; CES may be overridden per question with `scale = {min, max}`.
DEFAULT_SCALES: dict[QuestionType, tuple[int, int]] = {
    QuestionType.NPS: (0, 10),
    QuestionType.CES: (1, 7),
    QuestionType.CSAT: (1, 5),
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Scale(_Model):
    """Inclusive bounds of a score question."""

    min: int
    max: int


class ScaleLabels(_Model):
    """Optional words for the two ends of a scale ("Very difficult" … "Very easy")."""

    min: LocalizedText | None = None
    max: LocalizedText | None = None


class ChoiceOption(_Model):
    """One option of a `choice` question; `id` is what gets stored."""

    id: Annotated[str, Field(pattern=IDENTIFIER)]
    label: LocalizedText


class Comparison(_Model):
    """Holds when every operator given holds for the answer to `question`.

    An unanswered or skipped question fails every comparison except `answered = false`.
    """

    question: str
    eq: int | str | bool | None = None
    ne: int | str | bool | None = None
    lt: int | None = None
    lte: int | None = None
    gt: int | None = None
    gte: int | None = None
    in_: list[int | str] | None = Field(default=None, alias="in")
    answered: bool | None = None
    # The sentiment of a text answer: "negative", "neutral", "positive", or a list of them.
    sentiment: str | list[str] | None = None


class AllOf(_Model):
    """Holds when every condition holds."""

    all: list[Condition]


class AnyOf(_Model):
    """Holds when at least one condition holds."""

    any: list[Condition]


class Not(_Model):
    """Holds when the inner condition does not."""

    not_: Condition = Field(alias="not")


Condition = Comparison | AllOf | AnyOf | Not


class Branch(_Model):
    """After a question is answered: go to `goto` (a later question id, or "end") when `if_` holds.

    Branches are tried in order; the first that holds wins; with none, the flow goes on to the
    next question in file order.
    """

    if_: Condition | None = Field(default=None, alias="if")
    goto: str


class Question(_Model):
    """One question of a flow."""

    id: Annotated[str, Field(pattern=IDENTIFIER)]
    type: QuestionType
    text: LocalizedText
    optional: bool = False
    when: Condition | None = None
    next: list[Branch] = Field(default_factory=list)
    scale: Scale | None = None
    labels: ScaleLabels | None = None
    choices: list[ChoiceOption] = Field(default_factory=list)
    max_length: Annotated[int, Field(gt=0)] | None = None

    @property
    def bounds(self) -> tuple[int, int]:
        """Inclusive (min, max) of a score question (NPS, CES, CSAT)."""
        if self.scale is not None:
            return (self.scale.min, self.scale.max)
        return DEFAULT_SCALES[self.type]


class Flow(_Model):
    """A whole survey: metadata, texts and questions in the order they are asked."""

    id: Annotated[str, Field(pattern=IDENTIFIER)]
    name: str
    description: str = ""
    default_locale: str = "en"
    locales: list[str] = Field(default_factory=list)
    context: dict[str, str] = Field(default_factory=dict)
    intro: LocalizedText | None = None
    thanks: LocalizedText | None = None
    questions: list[Question]
    # Filled by the loader, not read from the file.
    source: Annotated[str, Field(exclude=True)] = ""
    path: Annotated[str, Field(exclude=True)] = ""
    checksum: Annotated[str, Field(exclude=True)] = ""

    def question(self, question_id: str) -> Question:
        """The question with this id (KeyError when there is none)."""
        for q in self.questions:
            if q.id == question_id:
                return q
        raise KeyError(question_id)


def _rebuild(*models: Any) -> None:
    for m in models:
        m.model_rebuild()


_rebuild(AllOf, AnyOf, Not, Branch, Question, Flow)
