"""`cxbot nlp …`: classify texts, evaluate on a labelled file, retrain (with people's label
corrections), export those corrections, label stored answers."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from datetime import time as dt_time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.app import build_app, command_settings
from bot.config import SentimentSettings, Settings
from bot.errors import CxbotError
from bot.sentiment_worker import SentimentWorker, default_loader, model_loader
from nlp.classifier import SentimentClassifier
from nlp.errors import NlpError
from storage.correction_export import export_corrections
from storage.database import transaction

if TYPE_CHECKING:
    from nlp.corrections import FoldedCorrections
    from nlp.evaluation import EvalReport


class SentimentError(CxbotError):
    """The sentiment model or an evaluation file could not be used."""


def _classifier(settings: Settings) -> SentimentClassifier:
    return _classifier_for(settings.sentiment)


def _classifier_for(sentiment: SentimentSettings) -> SentimentClassifier:
    try:
        return default_loader(sentiment)()
    except (NlpError, ImportError, OSError, ValueError) as exc:
        raise SentimentError(str(exc)) from None


def _language_model(sentiment: SentimentSettings, language: str | None) -> SentimentClassifier:
    """The model configured for one language (default: the default language's), no router:
    what evaluation and retraining measure."""
    from nlp.routing import SHIPPED_NAMES

    code = language or sentiment.default_language
    models = sentiment.language_models()
    if code not in models:
        raise SentimentError(
            f"no model is configured for language {code!r} "
            f"([sentiment] models has {', '.join(sorted(models))})"
        )
    name = models[code]
    try:
        return model_loader(sentiment)(None if name.strip().lower() in SHIPPED_NAMES else name)
    except (NlpError, ImportError, OSError) as exc:
        raise SentimentError(str(exc)) from None


def _classify(settings: Settings, args: argparse.Namespace) -> int:
    classifier = _classifier(settings)
    for text, prediction in zip(args.texts, classifier.classify(args.texts), strict=True):
        if args.json:
            row = {"text": text, "label": prediction.label.value, **_rounded(prediction.scores)}
            row["confidence"] = round(prediction.confidence, 4)
            row["language"] = prediction.language
            # The model that labelled this text ("none" when its language has no model).
            row["model"] = prediction.model_id or classifier.model_id
            row["model_version"] = classifier.model_version
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
    language = args.language or settings.sentiment.default_language
    classifier = _language_model(settings.sentiment, language)
    print(f"evaluating {len(rows)} texts from {args.file} …", file=sys.stderr)
    report = evaluate(classifier, rows)
    calibration = report.calibration
    if args.json:
        data = {
            "file": str(args.file),
            "model_id": classifier.model_id,
            "model_version": classifier.model_version,
            "language": language,
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
    if calibration is not None:
        print(
            f"calibration ECE {calibration.ece_before:.3f} before → {calibration.ece_after:.3f}"
            f" after (temperature {calibration.temperature:g})"
        )
    print(f"{'class':<10} {'precision':>9} {'recall':>7} {'f1':>6} {'n':>6}")
    for name, m in report.per_class.items():
        print(f"{name:<10} {m.precision:>9.3f} {m.recall:>7.3f} {m.f1:>6.3f} {m.support:>6}")
    return 0


def _train(settings: Settings, args: argparse.Namespace) -> int:
    from nlp.training import DATA_DIR, TrainConfig, train

    corpus = args.corpus or DATA_DIR
    train_file, dev_file = corpus / "train.jsonl", corpus / "dev.jsonl"
    for needed in (train_file, dev_file):
        if not needed.is_file():
            raise SentimentError(
                f"{needed}: no such file (--corpus needs train.jsonl and dev.jsonl)"
            )
    sets: list[tuple[str, list[tuple[str, str]]]] = []
    folded: FoldedCorrections | None = None
    before: list[EvalReport] = []
    if args.with_corrections is not None or args.eval:
        # Read every input and measure the model in use before the long training run, so a bad
        # file or an unloadable model fails in seconds, not after half an hour.
        sets = [("dev", _rows(dev_file)), *((str(f), _rows(f)) for f in args.eval)]
        if args.with_corrections is not None:
            folded = _folded(args.with_corrections, sets)
        before = _measure(settings.sentiment, sets, "the model in use")
    output = args.output or settings.general.data_dir / "models" / time.strftime("%Y%m%d-%H%M%S")
    config = TrainConfig(
        seed=args.seed,
        epochs=args.epochs or TrainConfig.epochs,
        max_train_examples=args.max_train_examples or 0,
    )
    report = train(
        Path(output),
        seed=args.seed,
        config=config,
        train_path=train_file,
        dev_path=dev_file,
        extra_rows=folded.rows if folded is not None else (),
        log=_log,
    )
    summary: dict[str, Any] = {
        "output_dir": report.output_dir,
        "model_version": report.model_version,
        "best_epoch": report.best_epoch,
        "dev": report.dev,
        "seconds": round(report.seconds, 1),
        "train_examples": report.train_examples,
    }
    if folded is not None:
        summary["corrections"] = {
            "file": str(args.with_corrections),
            "trained": len(folded.train),
            "refused": [c.source for c in folded.refused],
        }
    if sets:
        sentiment = settings.sentiment
        others = {k: v for k, v in sentiment.models.items() if k != sentiment.default_language}
        new_model = sentiment.model_copy(update={"model": report.output_dir, "models": others})
        after = _measure(new_model, sets, "the new model")
        summary["figures"] = [
            {"file": name, "n": b.n, "before": _figures(b), "after": _figures(a)}
            for (name, _), b, a in zip(sets, before, after, strict=True)
        ]
        _log_figures(sets, before, after)
    print(json.dumps(summary, ensure_ascii=False))
    _log(
        f"trained model written to {report.output_dir}; use it with "
        f'[sentiment] model = "{report.output_dir}" or copy it over nlp/model/ to ship it'
    )
    return 0


def _log(line: str) -> None:
    # Progress and the human summary go to stderr; stdout keeps one JSON object for scripts.
    print(line, file=sys.stderr, flush=True)


def _rows(path: Path) -> list[tuple[str, str]]:
    from nlp.evaluation import read_eval_file

    try:
        return read_eval_file(path)
    except NlpError as exc:
        raise SentimentError(str(exc)) from None


def _folded(path: Path, sets: list[tuple[str, list[tuple[str, str]]]]) -> FoldedCorrections:
    """The corrections to train on: those whose text no held-out file has."""
    from nlp.corrections import fold_corrections, read_corrections

    try:
        corrections = read_corrections(path)
    except NlpError as exc:
        raise SentimentError(str(exc)) from None
    folded = fold_corrections(corrections, (text for _, rows in sets for text, _ in rows))
    _log(f"corrections: {len(corrections)} read from {path}, {len(folded.train)} to train on")
    for c in folded.refused:
        _log(
            f"  refused {c.source} (line {c.line}): its text is in the dev split or an --eval file"
        )
    if not folded.train:
        raise SentimentError(
            f"{path}: every correction repeats a dev or --eval text; nothing left to train on"
        )
    return folded


def _measure(
    sentiment: SentimentSettings, sets: list[tuple[str, list[tuple[str, str]]]], what: str
) -> list[EvalReport]:
    from nlp.evaluation import evaluate

    classifier = _language_model(sentiment, None)
    _log(f"measuring {what}: {classifier.model_id} ({classifier.model_version}) …")
    return [evaluate(classifier, rows) for _, rows in sets]


def _figures(report: EvalReport) -> dict[str, float]:
    return {"accuracy": round(report.accuracy, 4), "macro_f1": round(report.macro_f1, 4)}


def _log_figures(
    sets: list[tuple[str, list[tuple[str, str]]]],
    before: list[EvalReport],
    after: list[EvalReport],
) -> None:
    _log("before (the model in use) → after (the new model):")
    width = max(len(name) for name, _ in sets)
    for (name, _), b, a in zip(sets, before, after, strict=True):
        _log(
            f"{name:<{width}}  n={b.n:<6} accuracy {b.accuracy:.3f} → {a.accuracy:.3f}"
            f"   macro-F1 {b.macro_f1:.3f} → {a.macro_f1:.3f}"
        )


def _export(settings: Settings, args: argparse.Namespace) -> int:
    since = datetime.combine(args.since, dt_time(), UTC) if args.since else None
    app = build_app(settings)
    try:
        with transaction(app.db) as session:
            found = export_corrections(session, since=since)
    finally:
        app.close()
    lines = [
        json.dumps(
            {"text": r.text, "label": r.label, "source": f"correction:{r.correction_id}"},
            ensure_ascii=False,
        )
        for r in found.rows
    ]
    body = "".join(line + "\n" for line in lines)
    if args.output is None:
        sys.stdout.write(body)
        sys.stdout.flush()
        where = "standard output"
    else:
        _write_file(args.output, body)
        where = str(args.output)
    _log(
        f"exported {len(lines)} correction(s) to {where}"
        + (f"; {found.blank} left out: their text is blank or erased" if found.blank else "")
    )
    return 0


def _write_file(path: Path, body: str) -> None:
    # Write beside the target, then rename: a failed export never leaves half a file behind.
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(body, encoding="utf-8")
        partial.replace(path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise SentimentError(f"{path}: cannot write: {exc.strerror or exc}") from None


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
    if args.nlp_command == "corrections":
        return _export(settings, args)
    if args.nlp_command == "export-onnx":
        from bot.onnx_commands import export_onnx

        return export_onnx(settings)
    return _score(settings)
