"""Flow conditions on the sentiment of a text answer: the model's label when it answers in
time, the survey's score otherwise; checked at load time like every condition."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import App, build_app
from bot.config import load_settings
from bot.errors import FlowError
from bot.flow_loader import load_flow_source
from bot.sentiment_branch import score_sentiment
from bot.sentiment_worker import SentimentWorker
from nlp.classifier import SentimentClassifier
from storage.tables import Answer
from tests.bot.test_engine import open_survey
from tests.fakes.sentiment import KeywordClassifier

FLOW = """
id = "callback"
name = "Call back the unhappy"
default_locale = "en"

[[questions]]
id = "nps"
type = "nps"
text = "How likely are you to recommend us?"

[[questions]]
id = "comment"
type = "text"
text = "Tell us more."

[[questions]]
id = "call"
type = "yes_no"
when = { question = "comment", sentiment = "negative" }
text = "May we call you?"

[[questions]]
id = "csat"
type = "csat"
text = "How satisfied are you?"
"""
CALL = "May we call you?"


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
            "CXBOT_SENTIMENT__BRANCH_WAIT_SECONDS": "0.2",
        },
    )
    application = build_app(settings)
    yield application
    application.close()


async def asked_after(app: App, user: str, score: str, comment: str) -> str:
    survey = await open_survey(app, user)
    await survey.push(score)
    await survey.push(comment)
    return survey.pop_all()[-1].text


async def test_the_models_label_decides_when_it_answers(app: App) -> None:
    app.engine.use_sentiment_model(lambda _wait: KeywordClassifier())
    # A promoter's negative comment is asked the call-back question: the text decides.
    assert CALL in await asked_after(app, "ann", "10", "the app is a disaster")
    assert CALL not in await asked_after(app, "bob", "3", "great people, slow process")


async def test_a_text_in_a_language_without_a_model_is_judged_on_the_score(app: App) -> None:
    from nlp.language import LanguageDetector
    from nlp.routing import RoutingClassifier

    router = RoutingClassifier({"en": KeywordClassifier()}, LanguageDetector(["en", "es"]))
    app.engine.use_sentiment_model(lambda _wait: router)
    assert CALL in await asked_after(app, "ann", "3", "el servicio fue pésimo, nunca más")
    assert CALL not in await asked_after(app, "bob", "10", "el servicio fue pésimo, nunca más")


async def test_without_a_model_the_score_decides(app: App) -> None:
    assert CALL in await asked_after(app, "ann", "4", "the app is a disaster")
    assert CALL not in await asked_after(app, "bob", "10", "the app is a disaster")


async def test_a_model_still_loading_is_waited_for_up_to_the_configured_wait(app: App) -> None:
    release = threading.Event()

    def slow() -> SentimentClassifier:
        release.wait(5)
        return KeywordClassifier()

    worker = SentimentWorker(db=app.db, settings=app.settings, loader=slow)
    app.engine.use_sentiment_model(worker.classifier_within)
    loading = asyncio.create_task(worker.preload())
    await asyncio.sleep(0.05)
    # Still loading after the 0.2 s wait: the promoter's score decides (not asked).
    assert CALL not in await asked_after(app, "ann", "10", "the app is a disaster")
    release.set()
    assert await loading
    assert CALL in await asked_after(app, "bob", "10", "the app is a disaster")


def test_score_fallback_reads_nps_then_csat_then_ces() -> None:
    def scored(kind: str, value: int, low: int, high: int) -> Answer:
        return Answer(
            conversation_id=1,
            customer_id=1,
            channel="c",
            flow_id="f",
            flow_version=1,
            question_id=kind,
            question_type=kind,
            value_int=value,
            scale_min=low,
            scale_max=high,
        )

    assert score_sentiment([scored("nps", 6, 0, 10)]) == "negative"
    assert score_sentiment([scored("nps", 8, 0, 10)]) == "neutral"
    assert score_sentiment([scored("csat", 5, 1, 5), scored("nps", 9, 0, 10)]) == "positive"
    assert score_sentiment([scored("csat", 1, 1, 5)]) == "negative"
    assert score_sentiment([scored("ces", 4, 1, 7)]) == "neutral"
    assert score_sentiment([]) is None


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ('{ question = "nps", sentiment = "negative" }', "applies to text answers"),
        ('{ question = "comment", sentiment = "angry" }', "use negative, neutral, positive"),
        ('{ question = "comment", sentiment = [] }', "use negative, neutral, positive"),
    ],
)
def test_sentiment_conditions_are_checked_at_load_time(condition: str, message: str) -> None:
    source = FLOW.replace('{ question = "comment", sentiment = "negative" }', condition)
    with pytest.raises(FlowError) as raised:
        load_flow_source(source, "callback.toml")
    problem = raised.value.problems[0]
    assert message in problem.message
    assert problem.line is not None and "when =" in source.splitlines()[problem.line - 1]


def test_a_list_of_labels_loads() -> None:
    source = FLOW.replace('sentiment = "negative"', 'sentiment = ["negative", "neutral"]')
    assert load_flow_source(source, "callback.toml").questions[2].when is not None
