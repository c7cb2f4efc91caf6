"""The sentiment worker on real conversations: labels stored, review reasons, model failures."""

from __future__ import annotations

import asyncio
import threading

from sqlmodel import col, select

from bot.app import App
from bot.sentiment_worker import SentimentWorker
from nlp.classifier import SentimentClassifier
from nlp.errors import ModelLoadError
from storage.database import transaction
from storage.tables import Answer, ReviewItem, SentimentScore
from tests.bot.test_engine import open_survey
from tests.fakes.sentiment import KeywordClassifier


def worker_for(app: App, classifier: KeywordClassifier) -> SentimentWorker:
    return SentimentWorker(db=app.db, settings=app.settings, loader=lambda: classifier)


def scores(app: App) -> list[tuple[str, str, str]]:
    """(question id, label, model version) of every stored label, in answer order."""
    with transaction(app.db) as s:
        stmt = (
            select(Answer.question_id, SentimentScore.label, SentimentScore.model_version)
            .join(SentimentScore, col(SentimentScore.answer_id) == col(Answer.id))
            .order_by(col(SentimentScore.id))
        )
        return [tuple(r) for r in s.exec(stmt)]  # type: ignore[misc]


def reasons(app: App) -> list[list[str]]:
    with transaction(app.db) as s:
        items = s.exec(select(ReviewItem).order_by(col(ReviewItem.id))).all()
        return [[r["code"] for r in item.reasons] for item in items]


async def survey(app: App, user: str, lines: list[str]) -> None:
    channel = await open_survey(app, user)
    for line in lines:
        await channel.push(line)


async def test_text_answers_are_labelled_and_flagged_with_reasons(app: App) -> None:
    classifier = KeywordClassifier()
    await survey(app, "happy", ["10", "Great support", "7", "5", "none"])
    await survey(app, "mismatch", ["9", "Your app is a disaster", "7", "5", ""])
    await survey(app, "angry", ["3", "Awful, I want a refund", "2", "1", ""])
    worker = worker_for(app, classifier)
    assert await worker.drain() == 4
    # One batch, oldest answer first.
    assert classifier.batches == [
        ["Great support", "none", "Your app is a disaster", "Awful, I want a refund"]
    ]
    assert sorted(scores(app)) == sorted(
        [
            ("liked_most", "positive", "kw-1"),
            ("anything_else", "neutral", "kw-1"),
            ("liked_most", "negative", "kw-1"),
            ("fix_first", "negative", "kw-1"),
        ]
    )
    # happy: nothing. angry: flagged while answering (scores, keyword), then by its label.
    # mismatch: a promoter's negative comment, flagged only once labelled.
    assert reasons(app) == [
        ["nps_detractor", "keyword", "low_ces", "low_csat", "negative_text"],
        ["negative_text", "score_text_mismatch"],
    ]


async def test_rescoring_with_a_new_model_version_keeps_the_history(app: App) -> None:
    await survey(app, "a", ["10", "Great support", "7", "5", ""])
    assert await worker_for(app, KeywordClassifier("kw-1")).drain() == 1
    assert await worker_for(app, KeywordClassifier("kw-1")).drain() == 0  # nothing new
    # A worker with a new model version (as `cxbot nlp score` runs it) labels everything again.
    newer = worker_for(app, KeywordClassifier("kw-2"))
    assert await newer.drain() == 0  # not loaded: every answer already has some label
    assert await newer.preload()
    assert await newer.drain() == 1
    assert scores(app) == [("liked_most", "positive", "kw-1"), ("liked_most", "positive", "kw-2")]


async def test_the_engine_nudges_the_running_worker(app: App) -> None:
    classifier = KeywordClassifier()
    worker = worker_for(app, classifier)
    app.engine.on_text_answer(worker.nudge)
    task = asyncio.create_task(worker.run())
    try:
        await survey(app, "a", ["2", "It crashed twice"])
        for _ in range(100):  # the worker waits max_wait_seconds (0.5 s) for a batch to fill
            if scores(app):
                break
            await asyncio.sleep(0.05)
        assert scores(app) == [("fix_first", "negative", "kw-1")]
    finally:
        task.cancel()


async def test_a_model_that_cannot_load_leaves_answers_unscored_and_the_bot_talking(
    app: App,
) -> None:
    def broken() -> SentimentClassifier:
        raise ModelLoadError("cannot load sentiment model 'x'", [("folder x", "missing")])

    worker = SentimentWorker(db=app.db, settings=app.settings, loader=broken)
    app.engine.on_text_answer(worker.nudge)
    channel = await open_survey(app, "a")
    await channel.push("2")
    await channel.push("Awful service")
    assert await worker.drain() == 0
    assert worker.load_error is not None and "folder x" in worker.load_error
    assert channel.pop_all()[-1].question_id == "ces"  # the conversation went on
    assert scores(app) == []
    # Later, with a working model, the same answer gets its label.
    assert await worker_for(app, KeywordClassifier()).drain() == 1


async def test_a_load_cut_short_by_cancelling_run_is_finished_by_drain_not_started_again(
    app: App,
) -> None:
    # `cxbot chat` ending a few seconds after a text answer: run() is cancelled while the model
    # loads in its thread; drain() must wait for that load, not import transformers a second
    # time beside it (which failed half-way: "cannot import name 'AutoModel'").
    release = threading.Event()
    loads: list[str] = []

    def slow_loader() -> SentimentClassifier:
        loads.append(threading.current_thread().name)
        release.wait(5)
        return KeywordClassifier()

    worker = SentimentWorker(db=app.db, settings=app.settings, loader=slow_loader)
    await survey(app, "a", ["3", "Awful, I want a refund", "2", "1", ""])
    task = asyncio.create_task(worker.preload())
    while not loads:
        await asyncio.sleep(0.01)
    task.cancel()
    draining = asyncio.create_task(worker.drain())
    await asyncio.sleep(0.1)
    assert not draining.done()  # waiting for the load under way
    release.set()
    assert await draining == 1
    assert len(loads) == 1
    assert scores(app) == [("fix_first", "negative", "kw-1")]
    assert worker.load_error is None


async def test_no_model_is_loaded_when_nothing_needs_a_label(app: App) -> None:
    def must_not_load() -> SentimentClassifier:
        raise AssertionError("the model was loaded for nothing")

    await survey(app, "a", ["10", "", "7", "5", ""])  # no free text at all
    worker = SentimentWorker(db=app.db, settings=app.settings, loader=must_not_load)
    assert await worker.drain() == 0


async def test_keyword_rules_flag_without_any_model(app: App) -> None:
    await survey(app, "a", ["10", "Fine, but I will cancel my subscription", "7", "5", ""])
    assert reasons(app) == [["keyword"]]
    with transaction(app.db) as s:
        item = s.exec(select(ReviewItem)).one()
        assert item.reasons[0]["detail"] == "mentions 'cancel'"


def test_serve_runs_the_worker_only_when_enabled(app: App) -> None:
    from bot.config import load_settings
    from bot.serve import background_tasks

    assert [t.name for t in background_tasks(app)] == ["housekeeping", "sentiment"]
    off = load_settings(
        None,
        environ={
            "CXBOT_GENERAL__DATA_DIR": str(app.settings.general.data_dir),
            "CXBOT_SENTIMENT__ENABLED": "false",
        },
    )
    assert [t.name for t in background_tasks(App(off, app.db, app.catalog, app.engine))] == [
        "housekeeping"
    ]


async def test_texts_in_a_language_without_a_model_are_stored_unclassified_with_it(
    app: App,
) -> None:
    from nlp.language import LanguageDetector
    from nlp.routing import RoutingClassifier

    english = KeywordClassifier()
    router = RoutingClassifier({"en": english}, LanguageDetector(["en", "es", "de"]))
    await survey(app, "de", ["10", "Der Kurier war unfreundlich und viel zu spät", "7", "5", ""])
    await survey(app, "es", ["3", "el servicio fue pésimo, nunca más", "2", "1", ""])
    await survey(app, "en", ["9", "Your app is a disaster", "7", "5", ""])
    worker = SentimentWorker(db=app.db, settings=app.settings, loader=lambda: router)
    assert await worker.drain() == 3
    with transaction(app.db) as s:
        stored = [
            (r.label, r.confidence, r.language, r.model_id, r.model_version)
            for r in s.exec(select(SentimentScore).order_by(col(SentimentScore.id)))
        ]
    assert stored == [
        ("unclassified", 0.0, "de", "none", "kw-1"),
        ("unclassified", 0.0, "es", "none", "kw-1"),
        ("negative", 0.95, "en", english.model_id, "kw-1"),
    ]
    # The English model saw only the English text; nothing is guessed for the others, and they
    # reach the review queue by the score rules alone (the promoter's German text: not at all).
    assert english.batches == [["Your app is a disaster"]]
    assert reasons(app) == [
        ["nps_detractor", "low_ces", "low_csat"],
        ["negative_text", "score_text_mismatch"],
    ]
