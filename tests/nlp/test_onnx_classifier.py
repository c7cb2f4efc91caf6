"""The ONNX Runtime path: the export cache (atomic, verified, rebuilt when damaged), the runtime
classifier (same contract, chat-text preparation, temperature), which backend runs what, and
agreement with the torch path on real exports."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from nlp import onnx_classifier, transformer
from nlp.classifier import Label, SentimentClassifier
from nlp.errors import ModelLoadError
from nlp.onnx_classifier import (
    OnnxClassifier,
    ensure_export,
    load_onnx_classifier,
    load_sentiment_model,
)
from nlp.onnx_export import (
    EXPORT_FORMAT,
    INFO_FILE,
    ONNX_FILE,
    TOKENIZER_FILE,
    ExportInfo,
    check_export,
    default_cache_dir,
    export_folder,
    store_export,
)
from nlp.transformer import TransformerClassifier, load_classifier
from tests.fakes.handmade_onnx import handmade_adapter, write_handmade_model
from tests.fakes.tiny_adapter import tiny_adapter
from tests.fakes.tiny_model import tiny_bert

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cached(tmp_path: Path) -> tuple[Path, Path]:
    """(adapter folder, cache folder) with the adapter's export already in the cache."""
    adapter = handmade_adapter(tmp_path / "adapter")
    cache = tmp_path / "cache"
    store_export(cache, "hand-1", write_handmade_model, source="handmade")
    return adapter, cache


def test_a_cached_export_is_used_as_it_is(cached: tuple[Path, Path]) -> None:
    adapter, cache = cached
    info, rebuilt = ensure_export(adapter, cache_dir=cache)
    assert (info.folder, info.model_version, rebuilt) == (
        export_folder(cache, "hand-1"),
        "hand-1",
        False,
    )
    classifier = load_onnx_classifier(str(adapter), cache_dir=cache)
    assert isinstance(classifier, SentimentClassifier)
    assert (classifier.model_id, classifier.model_version) == (str(adapter), "hand-1")
    texts = ["awful service", "great", "", "service", "great great awful"]
    predictions = classifier.classify(texts)
    assert [p.label for p in predictions] == [
        Label.NEGATIVE,
        Label.POSITIVE,
        Label.NEUTRAL,
        Label.NEUTRAL,
        Label.POSITIVE,
    ]
    for p in predictions:
        assert set(p.scores) == {"negative", "neutral", "positive"}
        assert math.isclose(sum(p.scores.values()), 1.0, rel_tol=1e-6)
        assert p.confidence == max(p.scores.values()) == p.scores[p.label]
    # "great": softmax of the mean of [CLS] (0, 1, 0) and "great" (-2, 0, 3).
    expected = math.exp(1.5) / (math.exp(-1) + math.exp(0.5) + math.exp(1.5))
    assert math.isclose(predictions[1].confidence, expected, rel_tol=1e-5)
    with pytest.raises(TypeError):
        classifier.classify("great")


@pytest.mark.parametrize("lanes", [1, 2, 3])
def test_batches_keep_the_input_order_on_any_number_of_lanes(
    cached: tuple[Path, Path], lanes: int
) -> None:
    adapter, cache = cached
    one = load_onnx_classifier(str(adapter), cache_dir=cache, batch_size=32, num_threads=1)
    classifier = load_onnx_classifier(
        str(adapter), cache_dir=cache, batch_size=2, num_threads=lanes
    )
    assert classifier.lanes == lanes
    texts = ["great " * 5, "awful", "service service", "great", "awful awful awful"] * 3
    predictions = classifier.classify(texts)
    labels = [p.label.value for p in predictions]
    assert labels == ["positive", "negative", "neutral", "positive", "negative"] * 3
    # Batches run side by side give the very probabilities of one batch of everything.
    for a, b in zip(one.classify(texts), predictions, strict=True):
        for name in a.scores:
            assert math.isclose(a.scores[name], b.scores[name], abs_tol=1e-6)


def test_chat_text_preparation_runs_before_tokenisation(cached: tuple[Path, Path]) -> None:
    adapter, cache = cached
    classifier = load_onnx_classifier(str(adapter), cache_dir=cache)
    # 👍 → "thumbs up", which the handmade vocabulary reads as positive; raw, it is [UNK].
    assert classifier.classify(["👍"])[0].label is Label.POSITIVE
    classifier.prepare = None
    assert classifier.classify(["👍"])[0].label is Label.NEUTRAL


def test_the_temperature_in_meta_json_softens_confidence_not_labels(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    store_export(cache, "hand-1", write_handmade_model, source="handmade")
    plain = load_onnx_classifier(str(handmade_adapter(tmp_path / "plain")), cache_dir=cache)
    warm = load_onnx_classifier(
        str(handmade_adapter(tmp_path / "warm", temperature=2.0)), cache_dir=cache
    )
    texts = ["great", "awful service"]
    for a, b in zip(plain.classify(texts), warm.classify(texts), strict=True):
        assert a.label is b.label
        assert b.confidence < a.confidence
    expected = math.exp(0.75) / (math.exp(-0.5) + math.exp(0.25) + math.exp(0.75))
    assert math.isclose(warm.classify(["great"])[0].confidence, expected, rel_tol=1e-5)


def _truncate(folder: Path) -> None:
    data = (folder / ONNX_FILE).read_bytes()
    (folder / ONNX_FILE).write_bytes(data[: len(data) // 2])


def _info(folder: Path, **changes: object) -> None:
    info = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
    info.update(changes)
    (folder / INFO_FILE).write_text(json.dumps(info), encoding="utf-8")


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_truncate, "model.onnx does not match its recorded SHA-256"),
        (lambda f: (f / TOKENIZER_FILE).write_text("{}"), "tokenizer.json does not match"),
        (lambda f: (f / ONNX_FILE).unlink(), "model.onnx missing"),
        (lambda f: (f / INFO_FILE).unlink(), "not exported yet"),
        (lambda f: (f / INFO_FILE).write_text("{trunc"), "info.json unreadable"),
        (lambda f: _info(f, model_version="hand-0"), "exported from 'hand-0'"),
        (lambda f: _info(f, format=EXPORT_FORMAT + 1), "export format"),
    ],
    ids=["truncated", "tokenizer", "no-model", "partial", "bad-info", "stale", "old-format"],
)
def test_damaged_or_stale_exports_are_detected_and_replaced(
    cached: tuple[Path, Path], damage: object, reason: str
) -> None:
    _, cache = cached
    folder = export_folder(cache, "hand-1")
    damage(folder)  # type: ignore[operator]
    problem = check_export(folder, "hand-1")
    assert isinstance(problem, str) and reason in problem
    # Storing again (what ensure_export does after such a check) replaces the folder.
    stored = store_export(cache, "hand-1", write_handmade_model, source="handmade")
    assert isinstance(check_export(folder, "hand-1"), ExportInfo)
    assert stored.folder == folder
    assert sorted(p.name for p in (cache / "onnx").iterdir()) == [folder.name]


def test_an_export_that_fails_half_way_leaves_nothing_behind(tmp_path: Path) -> None:
    cache = tmp_path / "cache"

    def crash(folder: Path) -> dict[str, str]:
        (folder / ONNX_FILE).write_bytes(b"half a model")
        raise RuntimeError("exporter crashed")

    with pytest.raises(ModelLoadError, match="exporter crashed"):
        store_export(cache, "hand-1", crash, source="handmade")
    assert list((cache / "onnx").iterdir()) == []


def test_an_export_onnx_runtime_cannot_open_is_a_load_error(tmp_path: Path) -> None:
    adapter = handmade_adapter(tmp_path / "adapter")
    cache = tmp_path / "cache"

    def not_onnx(folder: Path) -> dict[str, str]:
        write_handmade_model(folder)
        (folder / ONNX_FILE).write_bytes(b"not a model at all")
        return {}

    store_export(cache, "hand-1", not_onnx, source="handmade")  # hashes match: it verifies
    with pytest.raises(ModelLoadError, match="cannot open the ONNX export"):
        load_onnx_classifier(str(adapter), cache_dir=cache)


def test_a_valid_export_stored_meanwhile_by_another_process_is_kept(
    cached: tuple[Path, Path],
) -> None:
    _, cache = cached
    folder = export_folder(cache, "hand-1")
    before = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))

    def other(folder: Path) -> dict[str, str]:
        write_handmade_model(folder)
        return {"handmade": "2"}

    store_export(cache, "hand-1", other, source="handmade")
    assert json.loads((folder / INFO_FILE).read_text(encoding="utf-8")) == before


def test_the_runtime_path_imports_neither_torch_nor_transformers(cached: tuple[Path, Path]) -> None:
    adapter, cache = cached
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from nlp.onnx_classifier import load_onnx_classifier\n"
        f"c = load_onnx_classifier({str(adapter)!r}, cache_dir=Path({str(cache)!r}))\n"
        "print(c.classify(['great'])[0].label.value)\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines() == ["positive", "[]"]


def test_default_cache_dir_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CXBOT_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "cxbot"
    monkeypatch.setenv("CXBOT_CACHE_DIR", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"


def test_other_models_run_on_torch_whatever_the_backend(tmp_path: Path) -> None:
    folder = tiny_bert(tmp_path / "hf", ["great", "awful"])
    assert isinstance(load_sentiment_model(str(folder), backend="onnx"), TransformerClassifier)


def test_adapter_folders_follow_the_backend(cached: tuple[Path, Path]) -> None:
    adapter, cache = cached
    chosen = load_sentiment_model(str(adapter), backend="onnx", cache_dir=cache)
    assert isinstance(chosen, OnnxClassifier)


def test_the_shipped_model_constants_agree_with_the_torch_path() -> None:
    assert onnx_classifier.SHIPPED_MODEL_DIR == transformer.SHIPPED_MODEL_DIR
    assert onnx_classifier.DEFAULT_MODEL_ID == transformer.DEFAULT_MODEL_ID
    assert onnx_classifier.is_adapter_dir(transformer.SHIPPED_MODEL_DIR)


# --- Real exports (torch.onnx.export takes 10-20 s even for a tiny model) -----------------------

TEXTS = [
    "The delivery was super fast and the driver was lovely, thank you!",
    "Still waiting for my refund after six weeks. Terrible.",
    "Oh wonderful, it crashed again.",
    "none",
    "n/a",
    "👍",
    "😡😡😡",
    "ok i guess :/",
    "x " * 400,
    "",
]


@pytest.mark.slow
def test_a_tiny_adapter_exported_for_real_agrees_with_torch_and_is_rebuilt_when_damaged(
    tmp_path: Path,
) -> None:
    encoder, adapter = tiny_adapter(tmp_path / "tiny")
    cache = tmp_path / "cache"
    info, rebuilt = ensure_export(adapter, cache_dir=cache, encoder_path=encoder)
    assert rebuilt
    words = ["great service", "awful, never again", "the service was slow", "thanks", ""]
    torch_path = load_classifier(str(adapter), encoder_path=encoder).classify(words)
    onnx_path = load_onnx_classifier(str(adapter), cache_dir=cache, encoder_path=encoder)
    for a, b in zip(torch_path, onnx_path.classify(words), strict=True):
        assert a.label is b.label
        for name in a.scores:
            assert math.isclose(a.scores[name], b.scores[name], abs_tol=1e-4)
    _truncate(info.folder)
    again, rebuilt = ensure_export(adapter, cache_dir=cache, encoder_path=encoder)
    assert rebuilt and isinstance(check_export(again.folder, "tiny-1"), ExportInfo)


@pytest.mark.slow
def test_the_shipped_model_on_onnx_runtime_agrees_with_torch(
    default_classifier: TransformerClassifier,
) -> None:
    onnx_path = load_onnx_classifier()  # the user's cache: exported once, then reused
    assert onnx_path.model_id == default_classifier.model_id
    assert onnx_path.model_version == default_classifier.model_version
    for a, b in zip(default_classifier.classify(TEXTS), onnx_path.classify(TEXTS), strict=True):
        assert a.label is b.label
        for name in a.scores:
            assert math.isclose(a.scores[name], b.scores[name], abs_tol=1e-4)
    # The speed comes from ONNX Runtime's fused transformer nodes: one Attention per layer.
    folder = export_folder(default_cache_dir(), onnx_path.model_version)
    fused = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))["versions"]["fused"]
    assert "Attention 6" in fused and "SkipLayerNormalization 12" in fused
