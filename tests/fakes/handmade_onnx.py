"""A hand-built ONNX "sentiment model" and tokenizer: the ONNX path's cache and runtime tested in
milliseconds, without torch exporting anything.

The network looks each token up in a table of per-token logits and averages them over the
attention mask — the same inputs, output and pooling as the real export.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace
from tokenizers.processors import TemplateProcessing

from nlp.onnx_export import ONNX_FILE, TOKENIZER_FILE

# Token → logits (negative, neutral, positive); "thumbs up" is what chat-text preparation
# makes of 👍.
VOCAB: dict[str, tuple[float, float, float]] = {
    "[PAD]": (0.0, 0.0, 0.0),
    "[UNK]": (0.0, 1.0, 0.0),
    "[CLS]": (0.0, 1.0, 0.0),  # starts every text, as in BERT: an empty text reads neutral
    "great": (-2.0, 0.0, 3.0),
    "awful": (3.0, 0.0, -2.0),
    "thumbs": (-1.0, 0.0, 2.0),
    "up": (-1.0, 0.0, 2.0),
    "service": (0.0, 0.5, 0.0),
}


def write_handmade_model(folder: Path) -> dict[str, str]:
    """Write ``model.onnx`` and ``tokenizer.json`` into ``folder`` (an export writer)."""
    table = np.array(list(VOCAB.values()), dtype=np.float32)
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["token_logits"]),
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask_f", "last"], ["mask_3d"]),
        helper.make_node("Mul", ["token_logits", "mask_3d"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "seq_axis"], ["summed"], keepdims=0),
        helper.make_node("ReduceSum", ["mask_3d", "seq_axis"], ["count"], keepdims=0),
        helper.make_node("Div", ["summed", "count"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "handmade-sentiment",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info(
                "attention_mask", TensorProto.INT64, ["batch", "sequence"]
            ),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
        initializer=[
            numpy_helper.from_array(table, "table"),
            numpy_helper.from_array(np.array([-1], dtype=np.int64), "last"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "seq_axis"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(folder / ONNX_FILE))
    tokenizer = Tokenizer(WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()
    tokenizer.post_processor = TemplateProcessing(
        single="[CLS] $A", special_tokens=[("[CLS]", list(VOCAB).index("[CLS]"))]
    )
    tokenizer.save(str(folder / TOKENIZER_FILE))
    return {"handmade": "1"}


def handmade_adapter(
    folder: Path, *, version: str = "hand-1", temperature: float | None = None
) -> Path:
    """An adapter folder (meta.json, placeholder weights) whose export is the handmade model."""
    folder.mkdir(parents=True, exist_ok=True)
    meta: dict[str, object] = {
        "model_version": version,
        "labels": ["negative", "neutral", "positive"],
        "max_length": 16,
    }
    if temperature is not None:
        meta["temperature"] = temperature
    (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    (folder / "adapter.safetensors").write_bytes(b"")  # never read on the ONNX path
    return folder
