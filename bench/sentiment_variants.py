"""Compare trained sentiment models on one footing (figures, not assertions).

    python bench/sentiment_variants.py MODEL_DIR [MODEL_DIR ...] [--wise A,B] [--eval F.jsonl ...]

Each ``MODEL_DIR`` is a folder written by ``python -m nlp.training`` (``nlp/model`` is the shipped
one). Prints macro-F1 on the hand-written part of the project's own dev split ("hand": the only
score to choose by) and on each ``--eval`` file, for every model, for the mean of their
probabilities (an ensemble, at N times the inference cost) and, with ``--wise``, for WiSE-FT
interpolations of the first model: ``alpha`` of its weights plus ``1 - alpha`` of its starting
point (the packaged encoder with the linear-probed head, refitted here as training fits it).
These are the figures of the "Tried and not shipped" table in ``nlp/model/README.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from nlp.evaluation import read_eval_file, score  # noqa: E402
from nlp.modeling import LABEL_ORDER, MeanPoolClassifier  # noqa: E402
from nlp.resolve import resolve_base_encoder  # noqa: E402
from nlp.training import (  # noqa: E402
    DATA_DIR,
    TrainConfig,
    fit_probe,
    hand_written_rows,
    predict_probabilities,
)

Rows = list[tuple[str, str]]


def _hand_dev() -> Rows:
    path = DATA_DIR / "dev.jsonl"
    rows = read_eval_file(path)
    return [rows[i] for i in hand_written_rows(path)]


def _macro_f1(rows: Rows, probs: list[list[float]]) -> float:
    return round(score([label for _, label in rows], probs, seconds=0.0).macro_f1, 4)


def _report(name: str, sets: dict[str, Rows], probs: dict[str, list[list[float]]]) -> None:
    print(name, json.dumps({s: _macro_f1(rows, probs[s]) for s, rows in sets.items()}), flush=True)


def _probe_start(model: MeanPoolClassifier, tokenizer: Any) -> dict[str, torch.Tensor]:
    """The weights fine-tuning starts from: packaged encoder + head probed on frozen features."""
    cfg = TrainConfig()
    rows = read_eval_file(DATA_DIR / "train.jsonl")
    index = {name: i for i, name in enumerate(LABEL_ORDER)}
    labels = torch.tensor([index[label] for _, label in rows])
    encoded = tokenizer([t for t, _ in rows], truncation=True, max_length=cfg.max_length)
    fit_probe(model, tokenizer, encoded, labels, cfg, lambda m: print(m, flush=True))
    return {k: v.detach().clone().float() for k, v in model.state_dict().items()}


def main() -> None:
    """Score the models, their ensemble and the requested interpolations; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--eval", nargs="*", type=Path, default=[], help="labelled JSONL files")
    parser.add_argument("--wise", default="", help="comma-separated alphas, e.g. 0.8,0.9")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    sets: dict[str, Rows] = {"hand": _hand_dev()}
    for path in args.eval:
        sets[path.stem] = read_eval_file(path)
    base = resolve_base_encoder(None)
    tokenizer = AutoTokenizer.from_pretrained(base)
    encoder = AutoModel.from_pretrained(base, add_pooling_layer=False)
    model = MeanPoolClassifier(encoder, encoder.config.hidden_size, len(LABEL_ORDER))
    plain = {k: v.detach().clone().float() for k, v in model.state_dict().items()}

    def run(weights: dict[str, torch.Tensor]) -> dict[str, list[list[float]]]:
        model.load_state_dict(weights)
        started = time.perf_counter()
        out = {
            s: predict_probabilities(model, tokenizer, [t for t, _ in rows], 256)
            for s, rows in sets.items()
        }
        print(f"  ({sum(map(len, sets.values()))} texts in {time.perf_counter() - started:.0f}s)")
        return out

    trained: list[dict[str, torch.Tensor]] = []
    every: list[dict[str, list[list[float]]]] = []
    for folder in args.models:
        state = {k: v.float() for k, v in load_file(str(folder / "adapter.safetensors")).items()}
        unknown = sorted(set(state) - set(plain))
        if unknown:
            parser.error(f"{folder}: not a full fine-tune artefact (e.g. {unknown[0]})")
        trained.append(state)
        every.append(run({**plain, **state}))
        _report(str(folder), sets, every[-1])
    if len(every) > 1:
        mean = {
            s: [
                [sum(p[s][i][c] for p in every) / len(every) for c in range(len(LABEL_ORDER))]
                for i in range(len(rows))
            ]
            for s, rows in sets.items()
        }
        _report(f"mean of {len(every)} models' probabilities", sets, mean)
    if args.wise:
        model.load_state_dict(plain)  # the probe sees the packaged encoder, as in training
        start = _probe_start(model, tokenizer)
        for alpha in (float(a) for a in args.wise.split(",")):
            mixed = {k: (1 - alpha) * start[k] + alpha * v for k, v in trained[0].items()}
            _report(f"WiSE-FT alpha={alpha}", sets, run({**start, **mixed}))


if __name__ == "__main__":
    main()
