"""Torch custom ops that keep library layers whole through ``torch.export``.

Exported as-is, a BitLinear becomes a dozen quantiser ops (mean, abs, amax, round, clamp, ...)
whose pattern would have to be recognised again. Instead, before export each BitLinear is swapped
for a module that calls one custom op, ``allo_ext::bitlinear``, with the precomputed signs and
beta; the op's eager implementation is BitLinear's own eval formula, so the swapped model computes
exactly what the original did.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..models.bitlinear import BitLinear, quantize_activations, weight_signs_beta


@torch.library.custom_op("allo_ext::bitlinear", mutates_args=())
def bitlinear_op(x: torch.Tensor, signs: torch.Tensor, beta: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    xq, gamma = quantize_activations(x)
    acc = xq @ signs.to(x.dtype).t()
    y = (acc * beta) / gamma
    return y + bias if bias is not None else y


@bitlinear_op.register_fake
def _(x, signs, beta, bias):
    return x.new_empty((*x.shape[:-1], signs.shape[0]))


class _ExportBitLinear(nn.Module):
    def __init__(self, layer: BitLinear):
        super().__init__()
        signs, beta = weight_signs_beta(layer.weight.detach())
        self.register_buffer("signs", signs.to(torch.int8))
        self.register_buffer("beta", beta.reshape(1).to(layer.weight.dtype))
        self.register_buffer("bias", None if layer.bias is None else layer.bias.detach().clone())

    def forward(self, x):
        return bitlinear_op(x, self.signs, self.beta, self.bias)


def prepare_for_export(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with library layers replaced by their custom-op form."""
    model = copy.deepcopy(model)
    for name, mod in list(model.named_modules()):
        for child_name, child in list(mod.named_children()):
            if isinstance(child, BitLinear):
                setattr(mod, child_name, _ExportBitLinear(child))
    return model
