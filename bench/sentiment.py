"""Sentiment inference benchmark: ONNX Runtime vs the torch path vs ``pipeline()`` (figures only).

    python bench/sentiment.py [--quick] [--n 512] [--singles 200] [--repeats 5] [--threads N]
                              [--eval FILE.jsonl ...] [--no-serve] [--no-pipeline]

In one run, on the same texts (the project's dev split, ``nlp/data/dev.jsonl``, unless
``--texts``) and the same thread count:

* **onnx** — the shipped model on ONNX Runtime (``nlp/onnx_classifier.py``; the export is made
  first if the cache has none), what ``cxbot`` runs by default;
* **torch** — the same weights on the torch path (``nlp/transformer.py``, ``backend = "torch"``);
* **pipeline** — transformers ``pipeline("text-classification")`` on the same encoder weights
  saved as a plain ``BertForSequenceClassification`` (CLS pooler + head, so its labels are not
  compared: it is the speed baseline a team would reach for first).

Each is measured one text at a time (latency p50 / p99 per text) and in batches of
``--batch-size`` (texts/s), in rounds that interleave the three (the order rotates each round)
so that a noisy neighbour slows all of them alike; the medians over rounds are printed, with
the ratio to the torch path's batched throughput and the issue's targets (ONNX ≥ 1.5× torch
batched, single-text p50 ≤ 10 ms).

Then the label agreement of ONNX vs torch on each ``--eval`` file (default: every
``../shared/eval/*.jsonl`` when that folder exists; evaluation only), and the resident memory
(RSS) of a real ``cxbot serve`` on a throwaway SQLite database: sentiment off, idle with the
model not loaded yet, and after its first classification (on each backend) — the text stored by
``cxbot chat`` with sentiment off, labelled by serve's worker.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nlp.evaluation import read_eval_file  # noqa: E402
from nlp.onnx_classifier import ensure_export, load_onnx_classifier  # noqa: E402
from nlp.transformer import SHIPPED_MODEL_DIR, TransformerClassifier, load_classifier  # noqa: E402

TARGET_RATIO = 1.5
TARGET_P50_MS = 10.0
CHAT_LINES = ["3", "The courier was rude and two days late", "2", "1", "no"]


def _texts(path: Path, n: int) -> list[str]:
    rows = [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()]
    rows = [t for t in rows if t.strip()]
    return (rows * (n // max(1, len(rows)) + 1))[:n]


def _export_for_pipeline(clf: TransformerClassifier, folder: Path) -> None:
    """Save the shipped encoder + head as a plain sequence-classification model."""
    from transformers import BertConfig, BertForSequenceClassification

    model: Any = clf._model
    config = BertConfig(**model.encoder.config.to_dict())
    config.num_labels = 3
    config.id2label = {0: "negative", 1: "neutral", 2: "positive"}
    config.label2id = {v: k for k, v in config.id2label.items()}
    seq = BertForSequenceClassification(config)
    seq.bert.load_state_dict(model.encoder.state_dict(), strict=False)
    seq.classifier.load_state_dict(model.head.state_dict())
    seq.save_pretrained(folder)
    clf._tokenizer.save_pretrained(folder)


class Runner:
    """One backend: a batched call and a single-text call."""

    def __init__(
        self, name: str, batched: Callable[[list[str]], Any], single: Callable[[str], Any]
    ) -> None:
        self.name = name
        self.batched = batched
        self.single = single
        self.rates: list[float] = []
        self.p50s: list[float] = []
        self.p99s: list[float] = []

    def round(self, texts: list[str], singles: list[str]) -> None:
        """One batched pass over ``texts`` and one single-text pass over ``singles``."""
        started = time.perf_counter()
        self.batched(texts)
        self.rates.append(len(texts) / (time.perf_counter() - started))
        latencies = []
        for text in singles:
            t0 = time.perf_counter()
            self.single(text)
            latencies.append((time.perf_counter() - t0) * 1000)
        latencies.sort()
        self.p50s.append(statistics.median(latencies))
        self.p99s.append(latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))])


def _speed(runners: list[Runner], texts: list[str], singles: list[str], repeats: int) -> None:
    for runner in runners:  # warm-up: first calls allocate memory and pick kernels
        runner.batched(texts[:64])
        for text in singles[:10]:
            runner.single(text)
    for r in range(repeats):
        order = runners[r % len(runners) :] + runners[: r % len(runners)]
        for runner in order:
            runner.round(texts, singles)
        print(
            f"  round {r + 1}/{repeats}: "
            + ", ".join(f"{x.name} {x.rates[-1]:.0f}/s p50 {x.p50s[-1]:.1f} ms" for x in runners),
            flush=True,
        )
    torch_rate = statistics.median(next(x for x in runners if x.name == "torch").rates)
    print(f"\n{'backend':<10} {'batched texts/s':>16} {'vs torch':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for x in runners:
        rate = statistics.median(x.rates)
        print(
            f"{x.name:<10} {rate:>16.0f} {rate / torch_rate:>8.2f}x "
            f"{statistics.median(x.p50s):>8.1f} {statistics.median(x.p99s):>8.1f}"
        )
    onnx = next(x for x in runners if x.name == "onnx")
    ratio = statistics.median(onnx.rates) / torch_rate
    p50 = statistics.median(onnx.p50s)
    print(
        f"target: ONNX batched >= {TARGET_RATIO}x torch batched: {ratio:.2f}x "
        f"({'met' if ratio >= TARGET_RATIO else 'NOT met'})"
    )
    print(
        f"target: ONNX single-text p50 <= {TARGET_P50_MS:.0f} ms: {p50:.1f} ms "
        f"({'met' if p50 <= TARGET_P50_MS else 'NOT met'})"
    )


def _agreement(onnx: Any, torch_path: Any, files: Sequence[Path]) -> None:
    print("\nlabel agreement, ONNX Runtime vs torch (same weights, fp32):")
    total = same = 0
    for path in files:
        texts = [text for text, _ in read_eval_file(path)]
        a, b = onnx.classify(texts), torch_path.classify(texts)
        agree = sum(x.label == y.label for x, y in zip(a, b, strict=True))
        worst = max(
            (abs(x.scores[k] - y.scores[k]) for x, y in zip(a, b, strict=True) for k in x.scores),
            default=0.0,
        )
        total, same = total + len(texts), same + agree
        print(
            f"  {path.name:<36} {agree}/{len(texts)} = {agree / max(1, len(texts)):.2%} "
            f"(largest probability difference {worst:.1e})"
        )
    if total:
        print(f"  all {same}/{total} = {same / total:.2%}")


# --- cxbot serve's memory ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise SystemExit(f"bench: timed out waiting for {what}")


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def _labels(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM sentimentscore").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def _serve_memory(settle: float, *, backend: str, sentiment: bool) -> tuple[float, float | None]:
    """(idle RSS, RSS after the first label or None) of one `cxbot serve`, in MiB."""
    cxbot = [sys.executable, "-c", "from bot.cli import main; raise SystemExit(main())"]
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        env = {
            **os.environ,
            "CXBOT_GENERAL__DATA_DIR": tmp,
            "CXBOT_SERVER__PORT": str(port),
            "CXBOT_SENTIMENT__ENABLED": "true" if sentiment else "false",
            "CXBOT_SENTIMENT__BACKEND": backend,
            "CXBOT_SENTIMENT__POLL_SECONDS": "0.5",
        }
        env.pop("CXBOT_CONFIG", None)
        serve = subprocess.Popen(
            [*cxbot, "serve"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            _wait(lambda: _healthy(port), 60, "cxbot serve to answer /healthz")
            time.sleep(settle)  # let start-up garbage settle, and a few polls run
            idle = _rss_mib(serve.pid)
            if not sentiment:
                return idle, None
            # A text answer stored by another process with sentiment off: serve's worker finds
            # it at its next poll, loads the model and labels it.
            subprocess.run(
                [*cxbot, "chat"],
                cwd=ROOT,
                env={**env, "CXBOT_SENTIMENT__ENABLED": "false"},
                input="\n".join(CHAT_LINES) + "\n",
                capture_output=True,
                text=True,
                check=True,
            )
            db = Path(tmp) / "cxbot.db"
            _wait(lambda: _labels(db) > 0, 180, "serve to label the text")
            time.sleep(settle)
            return idle, _rss_mib(serve.pid)
        finally:
            serve.terminate()
            try:
                serve.wait(timeout=30)
            except subprocess.TimeoutExpired:
                serve.kill()


def _memory(settle: float, backends: Sequence[str]) -> None:
    print("\ncxbot serve resident memory (RSS, MiB; SQLite, no channels):")
    off, _ = _serve_memory(settle, backend="onnx", sentiment=False)
    print(f"  sentiment off                                {off:6.0f}")
    for backend in backends:
        idle, loaded = _serve_memory(settle, backend=backend, sentiment=True)
        print(f"  backend {backend:<6} idle, model not loaded yet     {idle:6.0f}")
        print(f"  backend {backend:<6} after the first classification {loaded or 0:6.0f}")


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=Path, default=ROOT / "nlp" / "data" / "dev.jsonl")
    parser.add_argument("--n", type=int, default=512, help="texts per batched pass")
    parser.add_argument("--singles", type=int, default=200, help="texts per single-text pass")
    parser.add_argument("--repeats", type=int, default=5, help="rounds (medians are printed)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--eval", type=Path, nargs="*", default=None, metavar="FILE.jsonl")
    parser.add_argument("--no-pipeline", action="store_true", help="skip the pipeline() baseline")
    parser.add_argument("--no-serve", action="store_true", help="skip serve's memory")
    parser.add_argument("--no-speed", action="store_true", help="skip the speed rounds")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before reading RSS")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that it runs")
    args = parser.parse_args()
    if args.quick:
        args.n, args.singles, args.repeats, args.settle = 64, 10, 1, 0.5
    eval_dir = ROOT.parent / "shared" / "eval"
    files = args.eval if args.eval is not None else sorted(eval_dir.glob("*.jsonl"))

    import onnxruntime
    import torch

    started = time.perf_counter()
    _, exported = ensure_export(SHIPPED_MODEL_DIR)
    export_s = time.perf_counter() - started
    started = time.perf_counter()
    onnx = load_onnx_classifier(num_threads=args.threads, batch_size=args.batch_size)
    onnx_s = time.perf_counter() - started
    started = time.perf_counter()
    torch_path = load_classifier(num_threads=args.threads, batch_size=args.batch_size)
    torch_s = time.perf_counter() - started
    texts = _texts(args.texts, args.n)
    singles = texts[: args.singles]
    print(f"model {onnx.model_id} version {onnx.model_version}")
    print(
        f"ONNX export {'made now in ' + format(export_s, '.1f') + ' s' if exported else 'cached'}; "
        f"load: onnx {onnx_s:.1f} s, torch {torch_s:.1f} s"
    )
    print(
        f"onnxruntime {onnxruntime.__version__}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; {len(texts)} texts per batched pass "
        f"(batch {args.batch_size}), {len(singles)} single texts, mean "
        f"{statistics.mean(len(t) for t in texts):.0f} chars; {args.repeats} rounds"
    )
    runners = [
        Runner("onnx", onnx.classify, lambda t: onnx.classify([t])),
        Runner("torch", torch_path.classify, lambda t: torch_path.classify([t])),
    ]
    tmp = tempfile.TemporaryDirectory()
    if not args.no_pipeline and not args.no_speed:
        from transformers import pipeline

        _export_for_pipeline(torch_path, Path(tmp.name))
        pipe = pipeline(
            "text-classification",
            model=tmp.name,
            tokenizer=tmp.name,
            device="cpu",
            top_k=None,
            truncation=True,
            max_length=256,
        )
        runners.append(
            Runner("pipeline", lambda ts: pipe(ts, batch_size=args.batch_size), lambda t: pipe(t))
        )
    if not args.no_speed:
        _speed(runners, texts, singles, args.repeats)
    tmp.cleanup()
    if files:
        _agreement(onnx, torch_path, files)
    if not args.no_serve:
        _memory(args.settle, ["onnx"] if args.quick else ["onnx", "torch"])


if __name__ == "__main__":
    main()
