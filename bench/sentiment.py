"""Sentiment throughput and latency benchmark (figures, not assertions).

    python bench/sentiment.py [--texts FILE.jsonl] [--n 400] [--model M] [--threads N]

Prints, for the classifier that cxbot uses (shipped default unless ``--model``):
batched texts/s, single-short-text latency p50/p95, and peak RSS; then runs the transformers
``pipeline("text-classification")`` one text at a time on the same texts and the same model
weights as a baseline, and prints the speed ratio. Texts default to the held-out dev split of
the project's own corpus (``nlp/data/dev.jsonl``).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from nlp.transformer import is_adapter_dir, load_classifier  # noqa: E402


def _peak_rss_mib() -> float:
    # ru_maxrss is KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _texts(path: Path, n: int) -> list[str]:
    rows = [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()]
    rows = [t for t in rows if t.strip()]
    return (rows * (n // max(1, len(rows)) + 1))[:n]


def _export_for_pipeline(clf: object, folder: Path) -> None:
    """Save the default model as a plain sequence-classification model for the baseline."""
    from transformers import BertConfig, BertForSequenceClassification

    model = clf._model  # type: ignore[attr-defined]
    encoder = model.encoder
    config = BertConfig(**encoder.config.to_dict())
    config.num_labels = 3
    config.id2label = {0: "negative", 1: "neutral", 2: "positive"}
    config.label2id = {v: k for k, v in config.id2label.items()}
    seq = BertForSequenceClassification(config)
    seq.bert.load_state_dict(encoder.state_dict(), strict=False)
    seq.classifier.load_state_dict(model.head.state_dict())
    seq.save_pretrained(folder)
    clf._tokenizer.save_pretrained(folder)  # type: ignore[attr-defined]


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", default=str(ROOT / "nlp" / "data" / "dev.jsonl"))
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--model", default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--quantize", action="store_true", help="dynamic int8 (CPU)")
    args = parser.parse_args()

    texts = _texts(Path(args.texts), args.n)
    started = time.perf_counter()
    clf = load_classifier(
        args.model, num_threads=args.threads, batch_size=args.batch_size, quantize=args.quantize
    )
    load_s = time.perf_counter() - started
    print(f"model: {clf.model_id} version {clf.model_version} (loaded in {load_s:.1f}s)")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; {len(texts)} texts, "
        f"mean {statistics.mean(len(t) for t in texts):.0f} chars"
    )

    clf.classify(texts[:64])  # warm-up: first calls allocate and pick kernels
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        clf.classify(texts)
        runs.append(time.perf_counter() - t0)
    batched = len(texts) / min(runs)
    print(f"batched (batch {clf.batch_size}): {batched:.0f} texts/s (best of 3)")

    short = [t for t in texts if len(t) <= 60][:200] or texts[:200]
    latencies = []
    for t in short:
        t0 = time.perf_counter()
        clf.classify([t])
        latencies.append((time.perf_counter() - t0) * 1000)
    latencies.sort()
    p50 = statistics.median(latencies)
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    print(f"single short text ({len(short)} texts ≤60 chars): p50 {p50:.1f} ms, p95 {p95:.1f} ms")
    print(f"peak RSS: {_peak_rss_mib():.0f} MiB")

    if args.skip_baseline or args.quantize:  # the export below needs fp32 weights
        return
    import tempfile

    from transformers import pipeline

    with tempfile.TemporaryDirectory() as tmp:
        source = args.model
        # The shipped model and folders written by `cxbot nlp train` are not plain HF models:
        # export the loaded (merged) weights so the pipeline runs exactly the same network.
        if source is None or is_adapter_dir(source):
            _export_for_pipeline(clf, Path(tmp))
            source = tmp
        pipe = pipeline(
            "text-classification",
            model=source,
            tokenizer=source,
            device="cpu",
            top_k=None,
            truncation=True,
            max_length=256,
        )
        pipe(texts[:8])
        t0 = time.perf_counter()
        for t in texts:
            pipe(t)
        baseline = len(texts) / (time.perf_counter() - t0)
    print(f"baseline pipeline one-at-a-time: {baseline:.0f} texts/s")
    print(f"ratio batched / baseline: {batched / baseline:.1f}x")
    print(f"peak RSS after baseline: {_peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
