"""The shipped model's architecture: a BERT-style encoder, mean pooling and a linear head.

The project ships only what training changed relative to the packaged base encoder: either the
fine-tuned transformer layers and the head (full mode, the shipped default, ~21 MB in fp16), or
low-rank (LoRA) updates of the encoder's linear layers, its LayerNorm parameters and the head
(LoRA mode, 2.7 MB). At load time the tensors replace or, for LoRA, are merged into the base
weights, so inference costs exactly what the plain encoder costs. The packaged embeddings are
never retrained, which keeps the artefact well below the ~90 MB of a whole model.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

LABEL_ORDER = ("negative", "neutral", "positive")
# Linear layers of a BERT layer that get a low-rank update, by their module-name suffix.
LORA_TARGETS = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)


class LoRALinear(nn.Module):
    """``base(x) + scale * B(A(dropout(x)))`` with ``base`` frozen; B starts at zero."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float) -> None:
        super().__init__()
        self.base = base
        self.rank = rank
        self.scale = alpha / rank
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout)
        for p in self.base.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the frozen layer plus the low-rank update."""
        update = (self.dropout(x) @ self.lora_A.T) @ self.lora_B.T
        out: torch.Tensor = self.base(x) + update * self.scale
        return out


class MeanPoolClassifier(nn.Module):
    """Encoder → attention-masked mean of token states → dropout → linear head."""

    def __init__(
        self, encoder: nn.Module, hidden_size: int, num_labels: int = 3, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, num_labels)

    def pool(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **extra: Any
    ) -> torch.Tensor:
        """Return the attention-masked mean of the encoder's token states, (batch, hidden)."""
        states = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, **extra
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        pooled: torch.Tensor = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return pooled

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **extra: Any
    ) -> torch.Tensor:
        """Return logits of shape (batch, num_labels)."""
        pooled = self.pool(input_ids, attention_mask, **extra)
        logits: torch.Tensor = self.head(self.dropout(pooled))
        return logits


def _lora_sites(encoder: nn.Module) -> Iterator[tuple[nn.Module, str, str]]:
    """Yield (parent module, attribute name, full name) for every LoRA target layer."""
    for name, _module in list(encoder.named_modules()):
        for target in LORA_TARGETS:
            if name.endswith(target) and ".layer." in f".{name}":
                parent_name, _, attr = name.rpartition(".")
                yield encoder.get_submodule(parent_name), attr, name
                break


def add_lora(encoder: nn.Module, rank: int, alpha: float, dropout: float) -> int:
    """Freeze ``encoder`` except LayerNorms and wrap target linears with LoRA; return count."""
    for p in encoder.parameters():
        p.requires_grad_(False)
    count = 0
    for parent, attr, _ in _lora_sites(encoder):
        base = getattr(parent, attr)
        if isinstance(base, nn.Linear):
            setattr(parent, attr, LoRALinear(base, rank, alpha, dropout))
            count += 1
    for name, p in encoder.named_parameters():
        if "LayerNorm" in name:
            p.requires_grad_(True)
    return count


def trained_state(model: MeanPoolClassifier) -> dict[str, torch.Tensor]:
    """What training changed: LoRA factors, LayerNorm parameters and the head."""
    state: dict[str, torch.Tensor] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            state[name] = p.detach().clone().contiguous()
    return state


def merge_into_base(
    model: MeanPoolClassifier, state: dict[str, torch.Tensor], scale: float
) -> None:
    """Apply a shipped state to a model built on the *plain* base encoder.

    LoRA pairs ``…<layer>.base`` is absent here: the factors are merged into the plain linear
    as ``W += scale * B @ A``; every other tensor replaces the parameter of the same name.
    """
    params = dict(model.named_parameters())
    pending_a: dict[str, torch.Tensor] = {}
    pending_b: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for key, value in state.items():
            if key.endswith(".lora_A"):
                pending_a[key.removesuffix(".lora_A")] = value
            elif key.endswith(".lora_B"):
                pending_b[key.removesuffix(".lora_B")] = value
            else:
                target = params.get(key)
                if target is None or target.shape != value.shape:
                    raise KeyError(f"shipped tensor {key} does not fit the base model")
                target.copy_(value.to(target.dtype))
        if set(pending_a) != set(pending_b):
            raise KeyError("shipped LoRA factors are incomplete")
        for site, a in pending_a.items():
            weight = params.get(f"{site}.weight")
            if weight is None:
                raise KeyError(f"shipped LoRA factors for {site} do not fit the base model")
            delta = (pending_b[site].float() @ a.float()) * scale
            if delta.shape != weight.shape:
                raise KeyError(f"shipped LoRA factors for {site} have the wrong shape")
            weight.add_(delta.to(weight.dtype))


def plain_state_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a training state (``…query.base.weight`` style) to plain-model names."""
    return {k.replace(".base.", "."): v for k, v in state.items()}
