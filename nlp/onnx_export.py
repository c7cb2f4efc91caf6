"""Exporting a cxbot adapter model to ONNX, and the cache of exported models.

The shipped model (and any folder written by ``cxbot nlp train``) is the packaged base encoder
with the project's trained tensors merged in (``nlp/transformer.py``). For inference it is
exported once, whole — encoder, attention-masked mean pooling and the linear head, input ids
and attention mask in, logits out — in fp32 with ``torch.onnx.export`` (the TorchScript
exporter, over the encoder's eager attention), then fused by ONNX Runtime's own transformer
optimizer (``onnxruntime.transformers.optimizer``: one Attention, SkipLayerNormalization and
BiasGelu node per layer — the patterns it recognises in that exporter's graph, not in the dynamo
exporter's). Still fp32, so ONNX Runtime computes the same logits as torch (to ~1e-5) and the
labels do not change.

An export is ~90 MB, so it is not shipped in git: it is built on first need (about 15-20 s)
into a cache folder keyed by the model's ``model_version``::

    <cache>/onnx/<model_version>-f<EXPORT_FORMAT>/
        model.onnx       the network (fp32, dynamic batch and sequence length)
        tokenizer.json   the base encoder's fast tokenizer, so the folder stands alone
        info.json        model_version, export format, SHA-256 of both files, versions used

A folder is built under a temporary name and renamed into place (atomic on one filesystem), and
``info.json`` records the files' hashes: a partial, damaged or stale folder is detected at load
(:func:`check_export`) and rebuilt, never used. Two processes exporting at once each build their
own temporary folder; the first rename wins and the other copy is discarded.

Only the export needs torch (and onnx / onnxscript); using a cached export needs neither.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Bump when the exported graph or the folder layout changes: old cache folders are then ignored.
EXPORT_FORMAT = 2
ONNX_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
INFO_FILE = "info.json"
INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAME = "logits"
# The TorchScript exporter's opset; 17 has LayerNormalization, which the fusions start from.
OPSET = 17


def default_cache_dir() -> Path:
    """Where exports are cached when none is configured.

    ``$CXBOT_CACHE_DIR``, else ``$XDG_CACHE_HOME/cxbot``, else ``~/.cache/cxbot``: a cache (it
    can be deleted at any time and is rebuilt), shared by every data directory of one user.
    """
    explicit = os.environ.get("CXBOT_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "cxbot"


def read_meta(artefact_dir: Path) -> dict[str, Any]:
    """The ``meta.json`` of an adapter folder; ModelLoadError-free: raises OSError/ValueError."""
    meta = json.loads((artefact_dir / "meta.json").read_text(encoding="utf-8"))
    if not isinstance(meta, dict) or not isinstance(meta.get("model_version"), str):
        raise ValueError(f"{artefact_dir / 'meta.json'} has no model_version")
    return meta


def export_folder(cache_dir: Path, model_version: str) -> Path:
    """The cache folder of one model version (it may not exist yet)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_version)
    return cache_dir / "onnx" / f"{safe}-f{EXPORT_FORMAT}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ExportInfo:
    """What ``info.json`` of a verified export folder says."""

    folder: Path
    model_version: str
    onnx_sha256: str
    exported_at: str


def check_export(folder: Path, model_version: str) -> ExportInfo | str:
    """The verified export in ``folder``, or why it cannot be used (missing, stale, damaged).

    Hashes both files (~0.1 s for the 90 MB model), so a truncated or altered file is caught
    before ONNX Runtime reads it.
    """
    info_path = folder / INFO_FILE
    if not info_path.is_file():
        return "not exported yet"
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"{INFO_FILE} unreadable ({type(exc).__name__})"
    if not isinstance(info, dict):
        return f"{INFO_FILE} is not an object"
    if info.get("format") != EXPORT_FORMAT:
        return f"export format {info.get('format')!r}, expected {EXPORT_FORMAT}"
    if info.get("model_version") != model_version:
        return f"exported from {info.get('model_version')!r}, expected {model_version!r}"
    hashes = info.get("sha256")
    if not isinstance(hashes, dict):
        return f"{INFO_FILE} has no hashes"
    for name in (ONNX_FILE, TOKENIZER_FILE):
        path = folder / name
        if not path.is_file():
            return f"{name} missing"
        if _sha256(path) != hashes.get(name):
            return f"{name} does not match its recorded SHA-256 (partial or damaged file)"
    return ExportInfo(
        folder=folder,
        model_version=model_version,
        onnx_sha256=str(hashes[ONNX_FILE]),
        exported_at=str(info.get("exported_at", "")),
    )


def export_adapter_model(
    artefact_dir: Path,
    *,
    cache_dir: Path,
    encoder_path: str | os.PathLike[str] | None = None,
    allow_download: bool = False,
) -> ExportInfo:
    """Export the adapter model in ``artefact_dir`` to ONNX into the cache; return its info.

    Loads the model with torch exactly as the torch path does (``load_classifier``) and exports
    it fp32 (see :func:`store_export` for how the folder is written). Raises ModelLoadError when
    the model cannot be loaded or exported.
    """

    def write(folder: Path) -> dict[str, str]:
        return _export_into(
            folder,
            artefact_dir=artefact_dir,
            encoder_path=encoder_path,
            allow_download=allow_download,
        )

    meta = read_meta(artefact_dir)
    return store_export(cache_dir, str(meta["model_version"]), write, source=str(artefact_dir))


def store_export(
    cache_dir: Path,
    model_version: str,
    write: Callable[[Path], dict[str, str]],
    *,
    source: str,
) -> ExportInfo:
    """Build one cache folder: ``write(folder)`` writes ``model.onnx`` and ``tokenizer.json``
    into a temporary folder beside the destination (and returns the tool versions it used);
    ``info.json`` with both files' hashes is written last, then the folder is renamed into
    place. A damaged or stale folder already there is replaced; a valid one that another
    process stored meanwhile is kept. Raises ModelLoadError when writing fails.
    """
    from nlp.errors import ModelLoadError

    dest = export_folder(cache_dir, model_version)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        try:
            versions = write(tmp)
        except ModelLoadError:
            raise
        except (RuntimeError, ValueError, ImportError, OSError) as exc:
            raise ModelLoadError(
                "cannot export the sentiment model to ONNX",
                [(source, f"{type(exc).__name__}: {exc}")],
            ) from exc
        info = {
            "format": EXPORT_FORMAT,
            "model_version": model_version,
            "source": source,
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "sha256": {name: _sha256(tmp / name) for name in (ONNX_FILE, TOKENIZER_FILE)},
            "versions": versions,
        }
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is readable like any other
        _move_into_place(tmp, dest, model_version)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    verified = check_export(dest, model_version)
    if isinstance(verified, str):
        raise ModelLoadError("the ONNX export did not verify", [(str(dest), verified)])
    return verified


def _move_into_place(tmp: Path, dest: Path, model_version: str) -> None:
    if dest.exists():
        if isinstance(check_export(dest, model_version), ExportInfo):
            return  # another process finished the same export first: keep theirs
        # A damaged or stale folder: move it aside first so the rename below is atomic.
        aside = dest.with_name(f".{dest.name}.{os.getpid()}.stale")
        os.replace(dest, aside)
        shutil.rmtree(aside, ignore_errors=True)
    try:
        os.rename(tmp, dest)
    except OSError:
        # Lost a race with another process between the check and the rename: theirs is as good.
        if not isinstance(check_export(dest, model_version), ExportInfo):
            raise


def _export_into(
    folder: Path,
    *,
    artefact_dir: Path,
    encoder_path: str | os.PathLike[str] | None,
    allow_download: bool,
) -> dict[str, str]:
    import onnx
    import torch

    from nlp.transformer import load_classifier

    classifier = load_classifier(
        str(artefact_dir), encoder_path=encoder_path, allow_download=allow_download
    )
    model = classifier._model

    class Logits(torch.nn.Module):
        """Positional (input_ids, attention_mask) → logits, as the exporter wants it."""

        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            """Logits of the wrapped model (no dropout: eval mode)."""
            logits: torch.Tensor = self.inner(input_ids, attention_mask)
            return logits

    # eval() on the wrapper too: a fresh Module is in training mode, and the exporter restores
    # the wrapper's mode recursively afterwards, which would switch dropout on in `model`.
    wrapper = Logits(model).eval()
    # Eager attention traces to the MatMul/Softmax pattern that ONNX Runtime fuses into one
    # Attention node; SDPA traces to a graph it leaves unfused (~1.3x slower on CPU).
    for module in model.modules():
        config = getattr(module, "config", None)
        if config is not None and hasattr(config, "_attn_implementation"):
            config._attn_implementation = "eager"
    sample = classifier._tokenizer(
        ["a short one", "a somewhat longer example sentence"], padding=True, return_tensors="pt"
    )
    raw = folder / "unfused.onnx"
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    with warnings.catch_warnings():
        # The tracer warns about Python values it records as constants (padding checks that
        # do not change the graph: the export is checked against torch at every batch shape
        # in tests/nlp/test_onnx_classifier.py); errors still raise.
        warnings.simplefilter("ignore")
        exporter_log.setLevel(logging.ERROR)
        try:
            torch.onnx.export(
                wrapper,
                (sample["input_ids"], sample["attention_mask"]),
                str(raw),
                input_names=list(INPUT_NAMES),
                output_names=[OUTPUT_NAME],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "sequence"},
                    "attention_mask": {0: "batch", 1: "sequence"},
                    OUTPUT_NAME: {0: "batch"},
                },
                opset_version=OPSET,
                dynamo=False,
                verbose=False,  # else it prints its progress on stdout, mixed with CLI output
            )
        finally:
            exporter_log.setLevel(level)
    encoder: Any = model.encoder
    config = encoder.config
    fused = fuse_transformer(
        raw,
        folder / ONNX_FILE,
        num_heads=int(config.num_attention_heads),
        hidden_size=int(config.hidden_size),
    )
    raw.unlink()
    classifier._tokenizer.backend_tokenizer.save(str(folder / TOKENIZER_FILE))
    return {
        "torch": str(torch.__version__),
        "onnx": str(onnx.__version__),
        "onnxruntime": _ort_version(),
        "fused": ", ".join(f"{op} {n}" for op, n in sorted(fused.items()) if n) or "none",
    }


def fuse_transformer(
    source: Path, dest: Path, *, num_heads: int, hidden_size: int
) -> dict[str, int]:
    """Fuse a BERT-style ONNX graph with ONNX Runtime's transformer optimizer; return the counts.

    Offline and fp32 (``opt_level=0``: only the transformer fusions, no hardware-specific
    rewrites, so the file runs on any CPU). Writes ``dest`` as one file (no external data).
    """
    from onnxruntime.transformers import optimizer

    # Its modules log every fusion pass at INFO under their bare module names (onnx_model,
    # fusion_attention…), which would fill serve's log on a first-need export: the root
    # handlers drop those records while it runs (other records pass).
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(_quiet_optimizer)
    try:
        model = optimizer.optimize_model(
            str(source),
            model_type="bert",
            num_heads=num_heads,
            hidden_size=hidden_size,
            opt_level=0,
        )
        model.save_model_to_file(str(dest), use_external_data_format=False)
        stats: dict[str, int] = model.get_fused_operator_statistics()
    finally:
        for handler in handlers:
            handler.removeFilter(_quiet_optimizer)
    return stats


def _quiet_optimizer(record: logging.LogRecord) -> bool:
    """False for the transformer optimizer's progress records (below WARNING)."""
    noisy = record.name.startswith(("onnx_model", "fusion_", "onnxruntime.transformers"))
    return not noisy or record.levelno >= logging.WARNING


def _ort_version() -> str:
    import onnxruntime

    return str(onnxruntime.__version__)
