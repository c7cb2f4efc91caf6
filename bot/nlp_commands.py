"""`cxbot nlp …`: classify texts, evaluate on a labelled file, retrain, label stored answers."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from bot.app import build_app, command_settings
from bot.config import Settings
from bot.errors import CxbotError
from bot.sentiment_worker import SentimentWorker, default_loader
from nlp.classifier import SentimentClassifier
from nlp.errors import NlpError


class SentimentError(CxbotError):
    """The sentiment model or an evaluation file could not be used."""


def _classifier(settings: Settings) -> SentimentClassifier:
    try:
        return default_loader(settings.sentiment)()
    except (NlpError, ImportError, OSError) as exc:
        raise SentimentError(str(exc)) from None


def _classify(settings: Settings, args: argparse.Namespace) -> int:
    classifier = _classifier(settings)
    for text, prediction in zip(args.texts, classifier.classify(args.texts), strict=True):
        if args.json:
            row = {"text": text, "label": prediction.label.value, **_rounded(prediction.scores)}
            row["confidence"] = round(prediction.confidence, 4)
            print(json.dumps(row, ensure_ascii=False))
        else:
            print(f"{prediction.label.value:<8}\t{prediction.confidence:.3f}\t{text}")
    return 0


def _rounded(scores: dict[str, float]) -> dict[str, dict[str, float]]:
    return {"scores": {k: round(v, 4) for k, v in scores.items()}}


def _eval(settings: Settings, args: argparse.Namespace) -> int:
    from nlp.evaluation import evaluate, read_eval_file

    try:
        rows = read_eval_file(args.file)
    except (NlpError, OSError) as exc:
        raise SentimentError(str(exc)) from None
    classifier = _classifier(settings)
    print(f"evaluating {len(rows)} texts from {args.file} …", file=sys.stderr)
    report = evaluate(classifier, rows)
    if args.json:
        data = {
            "file": str(args.file),
            "model_id": classifier.model_id,
            "model_version": classifier.model_version,
            **report.to_dict(),
        }
        print(json.dumps(data, ensure_ascii=False))
        return 0
    kind = "binary (neutral excluded)" if report.binary else "3-class"
    print(f"file        {args.file} ({report.n} texts, {kind})")
    print(f"model       {classifier.model_id} ({classifier.model_version})")
    print(f"accuracy    {report.accuracy:.3f}")
    print(f"macro-F1    {report.macro_f1:.3f}")
    print(f"throughput  {report.texts_per_second:.0f} texts/s")
    print(f"{'class':<10} {'precision':>9} {'recall':>7} {'f1':>6} {'n':>6}")
    for name, m in report.per_class.items():
        print(f"{name:<10} {m.precision:>9.3f} {m.recall:>7.3f} {m.f1:>6.3f} {m.support:>6}")
    return 0


def _train(settings: Settings, args: argparse.Namespace) -> int:
    from nlp.training import train

    output = args.output or settings.general.data_dir / "models" / time.strftime("%Y%m%d-%H%M%S")
    report = train(Path(output), seed=args.seed, log=lambda line: print(line, file=sys.stderr))
    print(
        json.dumps(
            {
                "output_dir": report.output_dir,
                "model_version": report.model_version,
                "best_epoch": report.best_epoch,
                "dev": report.dev,
                "seconds": round(report.seconds, 1),
            }
        )
    )
    print(
        f"trained model written to {report.output_dir}; use it with "
        f'[sentiment] model = "{report.output_dir}" or copy it over nlp/model/ to ship it',
        file=sys.stderr,
    )
    return 0


def _score(settings: Settings) -> int:
    app = build_app(settings)
    try:
        worker = SentimentWorker(db=app.db, settings=settings)
        labelled = asyncio.run(_load_and_drain(worker))
    finally:
        app.close()
    if worker.load_error is not None:
        raise SentimentError(worker.load_error)
    print(f"labelled {labelled} text answer(s)")
    return 0


async def _load_and_drain(worker: SentimentWorker) -> int:
    # Load even when every answer has some label: a new model version re-labels them all.
    if not await worker.preload():
        return 0
    return await worker.drain()


def nlp_command(args: argparse.Namespace) -> int:
    """Run `cxbot nlp ACTION`."""
    settings = command_settings(getattr(args, "config", None))
    if args.nlp_command == "classify":
        return _classify(settings, args)
    if args.nlp_command == "eval":
        return _eval(settings, args)
    if args.nlp_command == "train":
        return _train(settings, args)
    return _score(settings)
