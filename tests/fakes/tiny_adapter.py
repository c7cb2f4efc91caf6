"""A tiny cxbot adapter model (what ``cxbot nlp train`` writes) on a tiny base encoder."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from tests.fakes.tiny_model import tiny_bert

WORDS = ["great", "awful", "fine", "service", "the", "was", "slow", "thanks", "never", "again"]


def tiny_adapter(folder: Path, *, version: str = "tiny-1", seed: int = 0) -> tuple[Path, Path]:
    """Save a base encoder and an adapter for it under ``folder``; return (encoder, adapter).

    The adapter replaces the head and one encoder weight (as a fine-tuned artefact does), so a
    backend that ignored the adapter would give other logits.
    """
    encoder = tiny_bert(folder / "encoder", WORDS)
    adapter = folder / "adapter"
    adapter.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    state = {
        "head.weight": torch.randn(3, 32, generator=generator),
        "head.bias": torch.randn(3, generator=generator),
        "encoder.encoder.layer.0.intermediate.dense.weight": torch.randn(
            64, 32, generator=generator
        ),
    }
    save_file(
        {k: v.half().contiguous() for k, v in state.items()}, str(adapter / "adapter.safetensors")
    )
    meta = {
        "model_version": version,
        "format": "cxbot-lora-v1",
        "mode": "full",
        "labels": ["negative", "neutral", "positive"],
        "lora_scale": 2.0,
        "max_length": 32,
    }
    (adapter / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return encoder, adapter
