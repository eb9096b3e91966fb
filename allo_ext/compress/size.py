"""Model size with the JetFormer paper's Table 6 convention.

- Full precision: 4 bytes for every parameter and every buffer (BatchNorm's running mean and
  variance and its ``num_batches_tracked`` counter included), divided by 1024: KB.
- 1-bit: each BitLinear weight matrix of n entries takes ceil(n / 8) bytes, and the BitLinear
  biases are dropped (the reference BitLinear ignores them); every other parameter and buffer
  (embedding, class token, norms, head) stays at 4 bytes.

For (3 blocks, C=64, 2 heads) on 8 x 3 this gives 400.31 KB and 27.56 KB. The paper prints
404.12 and 31.37 KB: its reference code carries an unused ``BatchNorm1d((P+1)^2)`` per attention
block (2 x 81 parameters, 2 x 81 running statistics and a counter: 325 x 4 bytes = 1.27 KB per
block), the same dead module that ``count()``'s ``paper_params`` adds back.
"""
from __future__ import annotations

import math

import torch

BYTES_FP = 4


def _bit_linears(model: torch.nn.Module) -> list:
    from ..models.bitlinear import BitLinear

    return [m for m in model.modules() if isinstance(m, BitLinear)]


def size_kb(model: torch.nn.Module, one_bit: bool = False) -> float:
    """Size in KB (1024 bytes); ``one_bit`` applies the 1-bit rule to every BitLinear."""
    tensors = {id(t): t for t in list(model.parameters()) + list(model.buffers())}
    total = 0
    if one_bit:
        for layer in _bit_linears(model):
            tensors.pop(id(layer.weight))
            total += math.ceil(layer.weight.numel() / 8)
            if layer.bias is not None:
                tensors.pop(id(layer.bias))
    total += BYTES_FP * sum(t.numel() for t in tensors.values())
    return total / 1024


def size_report(model: torch.nn.Module) -> dict:
    """Full-precision and 1-bit sizes (KB) and the compression ratio."""
    fp = size_kb(model)
    bit = size_kb(model, one_bit=True)
    return {"full_precision_kb": fp, "one_bit_kb": bit, "ratio": fp / bit,
            "bitlinear_layers": len(_bit_linears(model))}
