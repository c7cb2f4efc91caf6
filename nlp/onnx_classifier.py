"""The shipped model on ONNX Runtime, and :func:`load_sentiment_model` (backend choice).

``backend = "onnx"`` (the default) runs the shipped model — and any adapter folder written by
``cxbot nlp train`` — with ONNX Runtime on the CPU: the fp32 export of ``nlp/onnx_export.py``
(made on first need and cached) and the base encoder's fast tokenizer from ``tokenizers``.
That path imports neither torch nor transformers once the export is cached, which is what
makes it start faster and hold less memory. The logits are the torch path's to ~1e-6, so the
labels are the same and the ``model_version`` recorded with each label stays the same too.

``backend = "torch"``, any Hugging Face sequence-classification model and ``quantize`` use the
torch path (``nlp/transformer.py``), which training also uses.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from nlp.batched import BatchedClassifier
from nlp.chat_text import prepare as prepare_chat_text
from nlp.classifier import SENTIMENT_LABELS, SentimentClassifier
from nlp.errors import ModelLoadError
from nlp.onnx_export import (
    INPUT_NAMES,
    ONNX_FILE,
    OUTPUT_NAME,
    TOKENIZER_FILE,
    ExportInfo,
    check_export,
    default_cache_dir,
    export_adapter_model,
    export_folder,
    read_meta,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# nlp/transformer.py's SHIPPED_MODEL_DIR and DEFAULT_MODEL_ID, repeated here because importing
# that module imports torch (tests/nlp/test_onnx_classifier.py checks that they agree).
SHIPPED_MODEL_DIR = Path(__file__).resolve().parent / "model"
DEFAULT_MODEL_ID = "cxbot/sentiment-minilm-l6"
MAX_LENGTH = 256
Backend = Literal["onnx", "torch"]
_LABELS = SENTIMENT_LABELS


def is_adapter_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds a cxbot adapter (``nlp.training`` output) rather than a full model."""
    folder = Path(path).expanduser()
    return (folder / "adapter.safetensors").is_file() and (folder / "meta.json").is_file()


def _threads(num_threads: int | None) -> int:
    if num_threads:
        return num_threads
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)  # operators sharing a machine between processes set these
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    # As for torch: beyond ~8 threads small-batch BERT inference stops getting faster.
    return max(1, min(available, 8))


class OnnxClassifier(BatchedClassifier):
    """An ONNX Runtime session plus tokenizer; :meth:`classify` takes any number of texts."""

    def __init__(
        self,
        *,
        session: Any,
        tokenizer: Any,
        index_to_label: Sequence[str],
        model_id: str,
        model_version: str,
        batch_size: int = 32,
        max_length: int = MAX_LENGTH,
        temperature: float = 1.0,
        prepare: Callable[[str], str] | None = prepare_chat_text,
        source: str = "",
        lanes: int = 1,
    ) -> None:
        super().__init__(
            index_to_label=index_to_label,
            model_id=model_id,
            model_version=model_version,
            batch_size=batch_size,
            max_length=max_length,
            source=source,
            prepare=prepare,
            temperature=temperature,
        )
        self._session = session
        self._tokenizer = tokenizer
        self.lanes = max(1, lanes)
        self._pool: ThreadPoolExecutor | None = None

    def _probabilities(self, texts: list[str]) -> list[list[float]]:
        return self._run(self._encode(texts))

    def _batch_probabilities(self, batches: list[list[str]]) -> list[list[list[float]]]:
        """Several batches run side by side, one core each (``lanes``).

        A run releases the interpreter lock, and one session may run from several threads at
        once. For the short texts of chat replies, one batch per core outruns one batch at a
        time on every core (+20-40 % texts/s on 2 cores): each layer's matrices are small, so
        splitting them between threads costs more in waiting than it saves. Texts are
        tokenised first, in this thread.
        """
        encoded = [self._encode(batch) for batch in batches]
        if self.lanes == 1 or len(encoded) == 1:
            return [self._run(feed) for feed in encoded]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.lanes, thread_name_prefix="cxbot-onnx")
        return list(self._pool.map(self._run, encoded))

    def _encode(self, texts: list[str]) -> dict[str, Any]:
        import numpy as np

        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        return {INPUT_NAMES[0]: ids, INPUT_NAMES[1]: mask}

    def _run(self, feed: dict[str, Any]) -> list[list[float]]:
        (logits,) = self._session.run([OUTPUT_NAME], feed)
        rows: list[list[float]] = _softmax(logits / self.temperature).tolist()
        return rows


def _softmax(logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    import numpy as np

    shifted = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    out: npt.NDArray[np.float64] = exp / exp.sum(axis=-1, keepdims=True)
    return out


def _tokenizer(path: Path, max_length: int) -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    # The packaged tokenizer.json pads and truncates to a fixed 128; use the torch path's
    # settings instead: truncate at max_length, pad to the longest text of each batch.
    tokenizer.no_padding()
    tokenizer.no_truncation()
    tokenizer.enable_truncation(max_length=max_length)
    pad_id = tokenizer.token_to_id("[PAD]")
    tokenizer.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")
    return tokenizer


def ensure_export(
    artefact_dir: Path,
    *,
    cache_dir: Path | None = None,
    encoder_path: str | os.PathLike[str] | None = None,
    allow_download: bool = False,
) -> tuple[ExportInfo, bool]:
    """The verified ONNX export of ``artefact_dir``, exporting it when missing or damaged.

    Returns the export and whether it was (re)built now.
    """
    try:
        meta = read_meta(artefact_dir)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            "the sentiment model is missing or damaged",
            [(str(artefact_dir), f"{type(exc).__name__}: {exc}")],
        ) from exc
    cache = cache_dir if cache_dir is not None else default_cache_dir()
    folder = export_folder(cache, str(meta["model_version"]))
    checked = check_export(folder, str(meta["model_version"]))
    if isinstance(checked, ExportInfo):
        return checked, False
    exported = export_adapter_model(
        artefact_dir, cache_dir=cache, encoder_path=encoder_path, allow_download=allow_download
    )
    return exported, True


def load_onnx_classifier(
    model: str | None = None,
    *,
    cache_dir: Path | None = None,
    encoder_path: str | os.PathLike[str] | None = None,
    allow_download: bool = False,
    batch_size: int = 32,
    num_threads: int | None = None,
    temperature: float | None = None,
) -> OnnxClassifier:
    """The shipped model (``model`` None) or an adapter folder on ONNX Runtime.

    Exports the model on first need (see :func:`ensure_export`). ``temperature`` overrides the
    calibration temperature of ``meta.json`` (as ``load_classifier``'s does). Raises
    ModelLoadError when the model cannot be read, exported or opened.
    """
    artefact_dir = SHIPPED_MODEL_DIR if model is None else Path(model).expanduser()
    info, _ = ensure_export(
        artefact_dir, cache_dir=cache_dir, encoder_path=encoder_path, allow_download=allow_download
    )
    meta = read_meta(artefact_dir)
    max_length = int(meta.get("max_length", MAX_LENGTH))
    try:
        import onnxruntime as ort
        from onnxruntime.capi import onnxruntime_pybind11_state as ort_state
    except ImportError as exc:
        raise ModelLoadError(
            "ONNX Runtime is not installed", [("onnxruntime", f"{exc} (or: backend = 'torch')")]
        ) from exc
    # ONNX Runtime's own errors derive from Exception only.
    ort_errors = (ort_state.Fail, ort_state.InvalidProtobuf, ort_state.InvalidGraph)
    try:
        options = ort.SessionOptions()
        # One core per run, and as many runs side by side as cores (OnnxClassifier.lanes).
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # The arena keeps the peak of every batch shape seen (~105 MiB more after one batch of
        # 32 dev texts: +230 vs +125 MiB over the session alone), for no measurable speed.
        options.enable_cpu_mem_arena = False
        session = ort.InferenceSession(
            str(info.folder / ONNX_FILE), options, providers=["CPUExecutionProvider"]
        )
        tokenizer = _tokenizer(info.folder / TOKENIZER_FILE, max_length)
    except (*ort_errors, OSError, RuntimeError, ValueError) as exc:
        raise ModelLoadError(
            "cannot open the ONNX export of the sentiment model",
            [(str(info.folder), f"{type(exc).__name__}: {exc}")],
        ) from exc
    return OnnxClassifier(
        session=session,
        tokenizer=tokenizer,
        index_to_label=[str(x) for x in meta.get("labels", _LABELS)],
        model_id=DEFAULT_MODEL_ID if model is None else str(model),
        model_version=str(meta["model_version"]),
        batch_size=batch_size,
        max_length=max_length,
        temperature=float(meta.get("temperature", 1.0)) if temperature is None else temperature,
        source=f"ONNX export {info.folder} of {artefact_dir}",
        lanes=_threads(num_threads),
    )


def load_sentiment_model(
    model: str | None = None,
    *,
    backend: Backend = "onnx",
    cache_dir: Path | None = None,
    allow_download: bool = False,
    batch_size: int = 32,
    num_threads: int | None = None,
) -> SentimentClassifier:
    """The configured model on the configured backend (module doc says which runs where).

    ``onnx`` applies to the shipped model and adapter folders; any other model (a Hugging Face
    folder or hub id) runs on torch whatever ``backend`` says.
    """
    if backend == "onnx" and (model is None or is_adapter_dir(model)):
        return load_onnx_classifier(
            model,
            cache_dir=cache_dir,
            allow_download=allow_download,
            batch_size=batch_size,
            num_threads=num_threads,
        )
    from nlp.transformer import load_classifier

    return load_classifier(
        model,
        allow_download=allow_download,
        batch_size=batch_size,
        num_threads=num_threads,
    )
