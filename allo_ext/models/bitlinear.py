"""BitLinear: the 1-bit-weight, 8-bit-activation linear layer of BitNet, as used for 1-bit QAT."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Largest |x * gamma| after quantisation, and the clamp range of the int8 activations.
ACT_QMAX = 127.0
ACT_QMIN = -128.0
# Floor of max|x| per row, so an all-zero row gives gamma = 127e5 instead of inf.
ACT_EPS = 1e-5
# float32 represents every integer below 2**24 exactly.
_FLOAT32_EXACT_INT = 2**24


def weight_signs_beta(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Signs (+1/-1, in weight's dtype) of ``weight - mean(weight)`` with 0 -> +1, and mean|weight|."""
    alpha = weight.mean()
    signs = (weight - alpha >= 0).to(weight.dtype) * 2 - 1
    beta = weight.abs().mean()
    return signs, beta


def quantize_activations(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row (last dim) absmax int8 quantisation: returns (xq as float integers, gamma).

    gamma = 127 / max(max|x|, 1e-5); xq = clamp(round(x * gamma), -128, 127), where
    torch.round rounds half to even.
    """
    absmax = x.abs().amax(dim=-1, keepdim=True).clamp(min=ACT_EPS)
    # `127.0 / tensor` is evaluated by torch as reciprocal() * 127 (two roundings, up to 1 ulp
    # off); a tensor numerator gives the single correctly rounded division the kernel does.
    gamma = torch.full_like(absmax, ACT_QMAX) / absmax
    xq = torch.round(x * gamma).clamp(ACT_QMIN, ACT_QMAX)
    return xq, gamma


class BitLinear(nn.Linear):
    """Drop-in replacement for ``nn.Linear`` with 1-bit weights and 8-bit absmax activations.

    It subclasses ``nn.Linear`` so that constructors, ``weight``/``bias``, state-dict keys and
    pruning tools work unchanged; note that ``isinstance(m, nn.Linear)`` is therefore True, so
    test for ``BitLinear`` first when the two must be told apart.

    Eval forward, exactly (the compiler's ``bitlinear`` kernel computes the same thing):

    - weights ``W`` (out, in): ``alpha = mean(W)``; ``s = +1 where (W - alpha) >= 0 else -1``
      (an entry equal to the mean maps to +1); ``beta = mean(|W|)`` of the original ``W``;
    - activations, per row of the last dim: ``gamma = 127 / max(max|x|, 1e-5)``;
      ``xq = clamp(round_half_even(x * gamma), -128, 127)``;
    - ``acc = xq @ s^T``, an integer. It is computed in float32, where it is exact because
      ``|acc| <= 128 * in_features < 2**24`` (the constructor rejects larger ``in_features``);
    - ``y = (acc * beta) / gamma`` in float32, evaluated left to right, then ``+ bias`` if any.

    Training forward: the same quantisers with a straight-through estimator,
    ``W + (s * beta - W).detach()`` and ``x + (xq / gamma - x).detach()``, so gradients reach
    ``W`` and ``x`` as if the layer were a plain linear. Its value equals the eval formula up to
    float rounding (the product is grouped differently), not bit for bit.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device=None, dtype=None) -> None:
        if 128 * in_features >= _FLOAT32_EXACT_INT:
            raise ValueError(
                f"BitLinear in_features={in_features} is too large: the int8 x 1-bit accumulator "
                f"(up to 128 * in_features) must stay below 2**24 to be exact in float32; "
                f"use in_features < {_FLOAT32_EXACT_INT // 128}"
            )
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> "BitLinear":
        """A BitLinear with a copy of ``linear``'s weight and bias (for QAT from a trained model)."""
        new = cls(linear.in_features, linear.out_features, bias=linear.bias is not None,
                  device=linear.weight.device, dtype=linear.weight.dtype)
        with torch.no_grad():
            new.weight.copy_(linear.weight)
            if linear.bias is not None:
                new.bias.copy_(linear.bias)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        signs, beta = weight_signs_beta(self.weight)
        xq, gamma = quantize_activations(x)
        if self.training:
            w_ste = self.weight + (signs * beta - self.weight).detach()
            x_ste = x + (xq / gamma - x).detach()
            return F.linear(x_ste, w_ste, self.bias)
        acc = F.linear(xq, signs)
        y = acc * beta / gamma
        if self.bias is not None:
            y = y + self.bias
        return y

    @torch.no_grad()
    def quantized_weights(self) -> tuple[torch.Tensor, float]:
        """(signs as an int8 (out, in) tensor of +1/-1, beta) for the compiler's kernel.

        beta is the float32 value the forward uses, returned as a Python float (exact).
        """
        signs, beta = weight_signs_beta(self.weight)
        return signs.to(torch.int8), float(beta)
