"""JetFormer and its Linformer and 1-bit (BitLinear) variants."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .base import JetModel, check_choice, check_positive
from .bitlinear import BitLinear
from .layers import ACTS, NORMS, LinformerSelfAttention, SelfAttention, TransformerBlock, make_norm


@dataclass
class JetFormerConfig:
    """Shape of a JetFormer. Defaults are the paper's HPO winner (JetFormer-tiny).

    The input is (B, n_particles, n_features). ``norm="batch"``/``act="relu"`` is the
    hardware-friendly variant; ``norm="layer"``/``act="silu"`` the original one.
    """

    n_particles: int = 8
    n_features: int = 3
    n_blocks: int = 4
    dim: int = 8
    n_heads: int = 2
    n_classes: int = 5
    dropout: float = 0.0
    norm: str = "batch"
    act: str = "relu"

    def __post_init__(self) -> None:
        check_positive(self, "n_particles", "n_features", "n_blocks", "dim", "n_heads", "n_classes")
        check_choice(self, "norm", NORMS)
        check_choice(self, "act", ACTS)
        if self.dim % self.n_heads:
            raise ValueError(
                f"{type(self).__name__}: dim {self.dim} must be divisible by n_heads {self.n_heads}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"{type(self).__name__}.dropout must be in [0, 1), got {self.dropout}")


@dataclass
class LinformerConfig(JetFormerConfig):
    """JetFormerConfig plus ``k``, the projected length of keys and values."""

    k: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "k")


class JetFormer(JetModel):
    """Encoder-only transformer over particles, without positional encoding.

    ``embed`` Linear(F, C) -> class token (``cls_token``, (1, 1, C)) expanded over the batch and
    concatenated in front -> ``blocks`` -> the class token's output -> ``head_norm`` ->
    ``head`` Linear(C, n_classes) -> log_softmax.

    ``forward(x, return_attention=True)`` returns ``(log_probs, maps)`` with one (B, H, L, L)
    attention map per block (L = N + 1, token 0 is the class token); ``attention_maps(x)``
    returns only the maps. The default ``forward(x)`` graph is unchanged by this option.
    """

    config_class: ClassVar[type] = JetFormerConfig
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": dict(n_blocks=4, dim=8, n_heads=2),
        "hls4ml150": dict(n_blocks=3, dim=64, n_heads=2),
        "jetclass": dict(n_blocks=10, dim=128, n_heads=8),
    }
    # The layer used for q/k/v/out and the FFN; BitJetFormer swaps in BitLinear.
    linear_class: ClassVar[type[nn.Linear]] = nn.Linear

    def __init__(self, config: JetFormerConfig | None = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        c = self.config
        self.embed = nn.Linear(c.n_features, c.dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.dim))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.blocks = nn.ModuleList(
            TransformerBlock(self.make_attention(), c.dim, c.norm, c.act, c.dropout,
                             self.linear_class)
            for _ in range(c.n_blocks)
        )
        self.head_norm = make_norm(c.norm, c.dim, tokens=False)
        self.head = nn.Linear(c.dim, c.n_classes)

    def make_attention(self) -> SelfAttention:
        return SelfAttention(self.config.dim, self.config.n_heads, self.linear_class)

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        self.check_input(x)
        h = self.embed(x)
        cls = self.cls_token.expand(h.shape[0], -1, -1)
        h = torch.cat([cls, h], dim=1)
        maps = []
        for block in self.blocks:
            if return_attention:
                h, attn = block(h, return_attention=True)
                maps.append(attn)
            else:
                h = block(h)
        logp = F.log_softmax(self.head(self.head_norm(h[:, 0])), dim=-1)
        return (logp, maps) if return_attention else logp

    def attention_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Attention probabilities of every block, each (B, H, L, L_k); rows sum to 1."""
        return self.forward(x, return_attention=True)[1]


class LinformerJetFormer(JetFormer):
    """JetFormer whose attention projects keys and values along the token axis to length k.

    The projections are (k, N + 1) matrices, so the particle count is fixed by the weights.
    Attention maps are (B, H, N + 1, k).
    """

    config_class: ClassVar[type] = LinformerConfig
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {**JetFormer.presets["tiny"], "k": 4},
        "hls4ml150": {**JetFormer.presets["hls4ml150"], "k": 32},
        "jetclass": {**JetFormer.presets["jetclass"], "k": 32},
    }
    fixed_particles: ClassVar[bool] = True

    def make_attention(self) -> SelfAttention:
        c = self.config
        return LinformerSelfAttention(c.dim, c.n_heads, c.n_particles + 1, c.k, self.linear_class)


class BitJetFormer(JetFormer):
    """JetFormer whose q/k/v/out and FFN linears are BitLinear (1-bit QAT).

    The input embedding and the classification head stay full-precision ``nn.Linear``.
    """

    linear_class: ClassVar[type[nn.Linear]] = BitLinear
