"""The sentiment worker: labels free-text answers in batches, in the background.

Conversations never wait for the model. The engine nudges the worker after a turn that stored
text; the worker waits up to `max_wait_seconds` for more to arrive, then labels up to
`batch_size` answers in one model call (in a worker thread), stores the labels and raises review
flags — negative text, and negative text beside a high score. It also polls every
`poll_seconds`, so answers stored by another process or while the model was down are labelled
too. A model that fails to load is retried with backoff; its answers stay unscored, never lost or
mislabelled.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot.config import SentimentSettings, Settings
from bot.flags import sentiment_flags
from bot.waiting import wait_for_event
from bot.webhook_events import WebhookEvents
from nlp.classifier import SentimentClassifier
from nlp.errors import NlpError
from storage.conversations import conversation_answers
from storage.database import Database, Session, transaction
from storage.sentiment import (
    PendingText,
    add_score_if_new,
    flag_labelled_answer,
    has_unlabelled_answers,
    unscored_answers,
)

log = logging.getLogger(__name__)

Loader = Callable[[], SentimentClassifier]
FIRST_RETRY_SECONDS = 30.0
MAX_RETRY_SECONDS = 600.0


def model_loader(settings: SentimentSettings) -> Callable[[str | None], SentimentClassifier]:
    """Loads one model: None = the shipped one, else a trained folder, HF folder or hub id."""

    def load_one(model: str | None) -> SentimentClassifier:
        from nlp.onnx_classifier import load_sentiment_model

        # The shipped model and trained folders run on `backend`; other models on torch.
        cache = settings.onnx_cache_dir
        return load_sentiment_model(
            model,
            backend=settings.backend,
            cache_dir=Path(cache).expanduser() if cache else None,
            allow_download=settings.allow_download,
            batch_size=settings.batch_size,
            num_threads=settings.num_threads or None,
        )

    return load_one


def default_loader(settings: SentimentSettings) -> Loader:
    """Load the configured model per language behind the language router (imports the model
    libraries only when first called)."""

    def load() -> SentimentClassifier:
        from nlp.routing import load_routing_classifier

        return load_routing_classifier(
            settings.language_models(),
            model_loader(settings),
            languages=settings.languages,
            default_language=settings.default_language,
        )

    return load


def _log_load_crash(done: concurrent.futures.Future[SentimentClassifier | None]) -> None:
    # _ensure_model reports the load errors it expects; anything else must not vanish.
    if not done.cancelled() and (exc := done.exception()) is not None:
        log.error("loading the sentiment model crashed", exc_info=exc)


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What one pass over pending answers did."""

    scored: int
    flagged: int


class SentimentWorker:
    """Labels unscored free-text answers; `run()` until cancelled, or `drain()` once."""

    def __init__(self, *, db: Database, settings: Settings, loader: Loader | None = None) -> None:
        self._db = db
        self._settings = settings
        self._loader = loader or default_loader(settings.sentiment)
        self._classifier: SentimentClassifier | None = None
        # The one load in progress (a thread), shared by every caller of _ensure_model.
        self._loading: asyncio.Future[SentimentClassifier] | None = None
        # Set once a model is loaded: turns (in worker threads) wait on it for flow conditions.
        self._ready = threading.Event()
        self._wake = asyncio.Event()
        self._retry_at = 0.0
        self._retry_delay = FIRST_RETRY_SECONDS
        self._webhooks = WebhookEvents(settings.webhooks)
        self.load_error: str | None = None
        # The loop of run(): where a load asked for by a turn's thread (classifier_within) runs.
        self._loop: asyncio.AbstractEventLoop | None = None

    def classifier_within(self, timeout: float) -> SentimentClassifier | None:
        """The loaded model for a flow's sentiment condition (called from a turn's thread):
        waits up to `timeout` seconds when a load is under way, else answers at once.

        Under `run()` the model loads on first need, so a condition needing it starts the one
        guarded load (on the worker's loop) when none is under way and none failed lately.
        """
        if (
            self._classifier is None
            and timeout > 0
            and (self._loading is not None or self._start_load_from_thread())
        ):
            self._ready.wait(timeout)
        return self._classifier

    def _start_load_from_thread(self) -> bool:
        """Ask the worker's loop for the model; False when no wait could help (no running
        worker, a recent failure waiting for its retry, or called on the loop's own thread)."""
        loop = self._loop
        if loop is None or loop.is_closed() or self.load_error is not None:
            return False
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            # Waiting here would block the very loop that runs the load.
            return False
        started = asyncio.run_coroutine_threadsafe(self._ensure_model(), loop)
        started.add_done_callback(_log_load_crash)
        return True

    def nudge(self) -> None:
        """New text was stored: label it soon (pass this to `Engine.on_text_answer`)."""
        self._wake.set()

    async def run(self) -> None:
        """Label answers as they come, until cancelled."""
        cfg = self._settings.sentiment
        self._loop = asyncio.get_running_loop()
        while True:
            if await wait_for_event(self._wake, cfg.poll_seconds):
                # Let a batch fill up: several customers often answer within the same second.
                await asyncio.sleep(cfg.max_wait_seconds)
            self._wake.clear()
            await self.drain()

    async def preload(self) -> bool:
        """Load the model now (at start-up), so that the first answers are labelled quickly."""
        return await self._ensure_model() is not None

    async def drain(self, *, timeout: float | None = None) -> int:
        """Label every answer waiting now; returns how many were labelled.

        Before the model is loaded, it is loaded only when some answer has no label at all,
        so that a session without free text never pays for loading it.
        """
        if self._classifier is None and not await asyncio.to_thread(self._anything_unlabelled):
            return 0
        total = 0
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while deadline is None or loop.time() < deadline:
            classifier = await self._ensure_model()
            if classifier is None:
                break
            result = await asyncio.to_thread(self._label_batch, classifier)
            total += result.scored
            if result.scored < self._settings.sentiment.batch_size:
                break
        return total

    def _anything_unlabelled(self) -> bool:
        with transaction(self._db) as session:
            return has_unlabelled_answers(session)

    async def _ensure_model(self) -> SentimentClassifier | None:
        """The model, loading it once: every caller waits for the same load.

        The load runs in a thread that cannot be cancelled, so it is shielded: when `run()` is
        cancelled mid-load (`cxbot chat` ending), `drain()` waits for that same load instead of
        starting a second import of transformers beside the first, which fails half-way.
        """
        if self._classifier is not None:
            return self._classifier
        loop = asyncio.get_running_loop()
        if self._loading is None:
            if loop.time() < self._retry_at:
                return None
            self._loading = asyncio.ensure_future(asyncio.to_thread(self._loader))
        loading = self._loading
        try:
            classifier = await asyncio.shield(loading)
        except (NlpError, ImportError, OSError) as exc:
            if self._loading is loading:  # the first waiter reports it and schedules the retry
                self._loading = None
                self.load_error = str(exc)
                log.error(
                    "sentiment model could not be loaded: %s — text answers stay unscored and "
                    "will be labelled once it loads (next try in %.0f s)",
                    exc,
                    self._retry_delay,
                )
                self._retry_at = loop.time() + self._retry_delay
                self._retry_delay = min(self._retry_delay * 2, MAX_RETRY_SECONDS)
            return None
        if self._classifier is None:
            self._classifier = classifier
            self._ready.set()
            self._loading = None
            self.load_error = None
            log.info(
                "sentiment model loaded: %s (version %s)",
                classifier.model_id,
                classifier.model_version,
            )
        return self._classifier

    def _label_batch(self, classifier: SentimentClassifier) -> BatchResult:
        """One batch: read pending answers, classify outside any transaction, store results."""
        with transaction(self._db) as session:
            pending = unscored_answers(
                session,
                model_version=classifier.model_version,
                limit=self._settings.sentiment.batch_size,
            )
        if not pending:
            return BatchResult(0, 0)
        predictions = classifier.classify([p.text for p in pending])
        scored = flagged = 0
        with transaction(self._db) as session:
            for item, prediction in zip(pending, predictions, strict=True):
                if not add_score_if_new(
                    session,
                    answer_id=item.answer_id,
                    label=prediction.label.value,
                    confidence=prediction.confidence,
                    # The model that labelled this text (the router names it); the version is
                    # the whole configuration's, which is what "already labelled" is judged by.
                    model_id=prediction.model_id or classifier.model_id,
                    model_version=classifier.model_version,
                    language=prediction.language,
                ):
                    continue  # another process labelled it with this model meanwhile
                scored += 1
                if self._flag(session, item, prediction.label.value, prediction.confidence):
                    flagged += 1
        return BatchResult(scored, flagged)

    def _flag(self, session: Session, item: PendingText, label: str, confidence: float) -> bool:
        answers = conversation_answers(session, conversation_id=item.conversation_id)
        scores = {a.question_type: a.value_int for a in answers if a.value_int is not None}
        question_id = next(a.question_id for a in answers if a.id == item.answer_id)
        reasons = sentiment_flags(
            question_id=question_id,
            answer_id=item.answer_id,
            label=label,
            confidence=confidence,
            nps=scores.get("nps"),
            csat=scores.get("csat"),
            settings=self._settings.flags,
        )
        if not reasons:
            return False
        review = flag_labelled_answer(session, item=item, reasons=reasons)
        self._webhooks.flagged(session, review=review, reasons=reasons)
        return True
