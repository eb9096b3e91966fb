"""Building blocks of the transformer models: token norms, attention, feed-forward, block.

Everything here is written with plain view/transpose/matmul/softmax and no data-dependent
control flow, so ``torch.export`` gives a small high-level ATen graph (linear, batch_norm,
matmul, softmax and layout ops) that the frontend maps onto kernels.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

NORMS = ("batch", "layer")
ACTS = ("relu", "silu")

LinearFactory = Callable[..., nn.Linear]


class TokenBatchNorm(nn.BatchNorm1d):
    """BatchNorm1d over the channels of a (B, L, C) token tensor.

    BatchNorm1d normalises dim 1, so the tokens are transposed to (B, C, L) and back; statistics
    are per channel, over batch and tokens. This is the hardware-friendly replacement for
    LayerNorm: in eval it is a per-channel affine map.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.num_features:
            raise ValueError(
                f"TokenBatchNorm({self.num_features}) expects (B, L, {self.num_features}) tokens, "
                f"got {tuple(x.shape)}"
            )
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


def make_norm(kind: str, dim: int, tokens: bool) -> nn.Module:
    """'batch' -> BatchNorm over channels (TokenBatchNorm for (B, L, C), BatchNorm1d for (B, C));
    'layer' -> LayerNorm over the last dim."""
    if kind == "batch":
        return TokenBatchNorm(dim) if tokens else nn.BatchNorm1d(dim)
    if kind == "layer":
        return nn.LayerNorm(dim)
    raise ValueError(f"unknown norm {kind!r}; choose one of {NORMS}")


def make_act(kind: str) -> nn.Module:
    if kind == "relu":
        return nn.ReLU()
    if kind == "silu":
        return nn.SiLU()
    raise ValueError(f"unknown activation {kind!r}; choose one of {ACTS}")


def make_dropout(p: float) -> nn.Module:
    # Identity rather than Dropout(0): keeps aten.dropout out of exported graphs by default.
    return nn.Dropout(p) if p > 0 else nn.Identity()


class SelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention, ``softmax(Q K^T / sqrt(C/H)) V``.

    q, k and v have no bias; ``out`` has one. ``forward(x, return_attention=True)`` also returns
    the attention probabilities (B, H, L, L); the default call builds no extra outputs.
    """

    # The JetFormer reference code creates an unused BatchNorm1d(L * L) in every attention block;
    # counting.count() adds its parameters to `paper_params` for modules with this flag.
    reference_dead_bn = True

    def __init__(self, dim: int, n_heads: int, linear: LinearFactory = nn.Linear) -> None:
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"attention dim {dim} is not divisible by n_heads {n_heads}")
        self.n_heads = n_heads
        self.head_dim = dim // n_heads
        self.q = linear(dim, dim, bias=False)
        self.k = linear(dim, dim, bias=False)
        self.v = linear(dim, dim, bias=False)
        self.out = linear(dim, dim, bias=True)

    def split_heads(self, t: torch.Tensor) -> torch.Tensor:
        """(B, L, C) -> (B, H, L, C/H)."""
        b, l, _ = t.shape
        return t.view(b, l, self.n_heads, self.head_dim).transpose(1, 2)

    def keys_t(self, x: torch.Tensor) -> torch.Tensor:
        """K^T per head, (B, H, C/H, L_k)."""
        return self.split_heads(self.k(x)).transpose(-2, -1)

    def values(self, x: torch.Tensor) -> torch.Tensor:
        """V per head, (B, H, L_k, C/H)."""
        return self.split_heads(self.v(x))

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        b, l, _ = x.shape
        q = self.split_heads(self.q(x))
        scores = torch.matmul(q, self.keys_t(x)) / math.sqrt(self.head_dim)
        attn = torch.softmax(scores, dim=-1)
        # Heads x head_dim rather than x's width C: they differ once pruning narrows the heads.
        y = torch.matmul(attn, self.values(x)).transpose(1, 2).reshape(b, l, self.n_heads * self.head_dim)
        y = self.out(y)
        return (y, attn) if return_attention else y


class LinformerSelfAttention(SelfAttention):
    """Self-attention whose keys and values are projected along the token axis from L to k.

    ``e_proj`` and ``f_proj`` are the Linformer paper's E and F: learned (k, L) matrices without
    bias, shared by all heads. They are applied as linears over the token axis of the
    (B, C, L) transposed keys/values, before the head split, so the frontend sees plain 3-D
    linears. Attention maps are (B, H, L, k).
    """

    # Its attention maps are L x k, so the reference code's BatchNorm1d(L * L) has no counterpart.
    reference_dead_bn = False

    def __init__(self, dim: int, n_heads: int, seq_len: int, k: int,
                 linear: LinearFactory = nn.Linear) -> None:
        super().__init__(dim, n_heads, linear)
        self.seq_len = seq_len
        self.k_proj_len = k
        self.e_proj = nn.Linear(seq_len, k, bias=False)
        self.f_proj = nn.Linear(seq_len, k, bias=False)

    def _project(self, t: torch.Tensor, proj: nn.Linear) -> torch.Tensor:
        """(B, L, C) -> (B, C, k) by projecting the token axis."""
        if t.shape[1] != self.seq_len:
            raise ValueError(
                f"Linformer attention was built for {self.seq_len} tokens "
                f"(n_particles + class token), got {t.shape[1]}"
            )
        return proj(t.transpose(1, 2))

    def keys_t(self, x: torch.Tensor) -> torch.Tensor:
        kp = self._project(self.k(x), self.e_proj)  # (B, C, k), channels are head-major
        b = kp.shape[0]
        return kp.view(b, self.n_heads, self.head_dim, self.k_proj_len)

    def values(self, x: torch.Tensor) -> torch.Tensor:
        vp = self._project(self.v(x), self.f_proj)
        b = vp.shape[0]
        return vp.view(b, self.n_heads, self.head_dim, self.k_proj_len).transpose(-2, -1)


class FeedForward(nn.Module):
    """``linear_1(act(norm_1(linear_0(act(norm_0(x))))))`` with C -> hidden -> C, no biases."""

    def __init__(self, dim: int, hidden: int, norm: str, act: str,
                 linear: LinearFactory = nn.Linear) -> None:
        super().__init__()
        self.norm_0 = make_norm(norm, dim, tokens=True)
        self.act_0 = make_act(act)
        self.linear_0 = linear(dim, hidden, bias=False)
        self.norm_1 = make_norm(norm, hidden, tokens=True)
        self.act_1 = make_act(act)
        self.linear_1 = linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.linear_0(self.act_0(self.norm_0(x)))
        return self.linear_1(self.act_1(self.norm_1(h)))


class TransformerBlock(nn.Module):
    """Pre-norm block: ``x + attn(norm_attn(x))`` then ``x + ffn(x)`` (the FFN starts with a norm)."""

    def __init__(self, attn: SelfAttention, dim: int, norm: str, act: str, dropout: float,
                 linear: LinearFactory = nn.Linear) -> None:
        super().__init__()
        self.norm_attn = make_norm(norm, dim, tokens=True)
        self.attn = attn
        self.drop_attn = make_dropout(dropout)
        self.ffn = FeedForward(dim, 2 * dim, norm, act, linear)
        self.drop_ffn = make_dropout(dropout)

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        if return_attention:
            a, attn = self.attn(self.norm_attn(x), return_attention=True)
        else:
            a, attn = self.attn(self.norm_attn(x)), None
        x = x + self.drop_attn(a)
        x = x + self.drop_ffn(self.ffn(x))
        return (x, attn) if return_attention else x
