"""`cxbot nlp export-onnx`: build (or check) the ONNX exports of the configured models now.

The ONNX backend exports the shipped model on first need (15-20 s, torch in memory meanwhile).
Deployments that would rather pay that at install time — a container build, a deploy step — run
this once; later processes find the verified export in the cache and never import torch.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bot.config import Settings
from bot.errors import CxbotError
from nlp.errors import NlpError


class OnnxExportError(CxbotError):
    """A configured model could not be exported to ONNX."""


def add_export_onnx_command(
    nlp_sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register `cxbot nlp export-onnx`."""
    nlp_sub.add_parser(
        "export-onnx",
        parents=[common],
        help="export the shipped (and trained) models for ONNX Runtime into the cache now",
    )


def export_onnx(settings: Settings) -> int:
    """Export every configured model that runs on ONNX Runtime; one line per model."""
    from nlp.onnx_classifier import SHIPPED_MODEL_DIR, ensure_export, is_adapter_dir
    from nlp.routing import SHIPPED_NAMES

    sentiment = settings.sentiment
    cache = Path(sentiment.onnx_cache_dir).expanduser() if sentiment.onnx_cache_dir else None
    for language, model in sorted(sentiment.language_models().items()):
        shipped = model in SHIPPED_NAMES
        if not shipped and not is_adapter_dir(model):
            print(f"{language}\t{model}\truns on torch (not a cxbot model): nothing to export")
            continue
        if sentiment.backend != "onnx":
            print(f"{language}\t{model}\t[sentiment] backend = {sentiment.backend!r}: skipped")
            continue
        started = time.perf_counter()
        try:
            info, rebuilt = ensure_export(
                SHIPPED_MODEL_DIR if shipped else Path(model).expanduser(),
                cache_dir=cache,
                allow_download=sentiment.allow_download,
            )
        except (NlpError, OSError) as exc:
            raise OnnxExportError(f"{language} model {model!r}: {exc}") from None
        what = f"exported in {time.perf_counter() - started:.0f} s" if rebuilt else "up to date"
        print(f"{language}\t{model}\t{info.model_version}\t{what}\t{info.folder}")
    return 0
