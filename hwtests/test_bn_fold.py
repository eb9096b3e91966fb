"""Fixed-point BatchNorm with constant statistics: ``Z = T(X * scale + offset)``, scale and offset folded
at compile time in float64 from the full-precision statistics (``allo_ext.kernels.nn.norm.bn_fold``).

The statistics are drawn where the previous form (the scale computed from gamma and var first quantised
to T, then ``(X - T(mean)) * scale + T(beta)``) was wrong by thousands of LSB: variances of 1e-4 (0 in
ap_fixed<16,6>, so the scale was gamma / sqrt(eps)), means far from T's grid and offsets
``beta - mean * scale`` of about 2,500, far outside T's range. Against float64 torch on the same
(quantised) inputs, llvm and csim (g++ on the emitted C++) are bit-identical and within one LSB of T
plus the scale's and offset's own rounding; the emitted C++ is one multiply-add per element.
"""
import re

import numpy as np
import pytest
import torch
import torch.nn as nn

from allo_ext import Fixed
from allo_ext.frontend import from_pytorch
from allo_ext.kernels.nn.norm import bn_fold, offset_type
from allo_ext.lang.errors import AlloError

pytestmark = pytest.mark.csim

T = Fixed(16, 10)  # ap_fixed<16,6>
S_FRAC = 20  # the default scale type Fixed(32, 20)
MEAN = [20.0003, -15.1234, 0.3, 7.77]
VAR = [1e-4, 3e-4, 0.5, 2e-4]
GAMMA = [1.3, 0.7, 1.1, 0.9]
BETA = [0.5, 1.25, -0.1, 2.0]


class Norm(nn.Module):
    """A BatchNorm with no linear to fold into (the kernel itself), in the three layouts the frontend
    lowers: (B, C), (B, C, L) and (B, L, C) through transpose-BatchNorm-transpose."""

    def __init__(self, layout):
        super().__init__()
        self.layout = layout
        self.bn = nn.BatchNorm1d(len(MEAN))
        with torch.no_grad():
            for buf, v in ((self.bn.running_mean, MEAN), (self.bn.running_var, VAR), (self.bn.weight, GAMMA),
                           (self.bn.bias, BETA)):
                buf.copy_(torch.tensor(v))

    def forward(self, x):
        if self.layout == "channels_last":
            return self.bn(x.transpose(1, 2)).transpose(1, 2)
        return self.bn(x)


SHAPES = {"2d": (4,), "3d": (4, 5), "channels_last": (5, 4)}


def _inputs(layout, n=16):
    g = torch.Generator().manual_seed(3)
    shape = (n,) + SHAPES[layout]
    mean = torch.tensor(MEAN).reshape((1, 4, 1) if layout == "3d" else (1,) * (len(shape) - 1) + (4,))
    return mean + torch.randn(shape, generator=g) * 0.02


def _torch_f64(model, x):
    """float64 BatchNorm of the inputs as T holds them (TRN), from the float32 statistics."""
    xq = torch.from_numpy(np.floor(np.ldexp(x.numpy().astype(np.float64), T.frac)) * 2.0 ** -T.frac)
    bn = model.bn
    d = (lambda t: t.detach().double().reshape(1, -1, 1)) if model.layout == "3d" else (lambda t: t.detach().double())
    y = (xq - d(bn.running_mean)) / torch.sqrt(d(bn.running_var) + bn.eps) * d(bn.weight) + d(bn.bias)
    return xq.numpy(), y.numpy()


def _previous_form(model, xq):
    """The form before the fold, as a numpy model (for the test's own premise): gamma, var, mean and beta
    quantised to T, the scale in float32 then truncated into Fixed(32, 20)."""
    bn = model.bn

    def q(v, frac):
        return np.floor(np.ldexp(np.asarray(v, np.float64), frac)) * 2.0 ** -frac

    g, m, v, b = (q(t.detach().numpy(), T.frac) for t in (bn.weight, bn.running_mean, bn.running_var, bn.bias))
    scale = q((g.astype(np.float32) / np.sqrt(v.astype(np.float32) + np.float32(bn.eps))).astype(np.float64), S_FRAC)
    shape = (1, -1, 1) if model.layout == "3d" else (1,) * (xq.ndim - 1) + (-1,)
    return q((xq - m.reshape(shape)) * scale.reshape(shape) + b.reshape(shape), T.frac)


@pytest.mark.parametrize("layout", sorted(SHAPES))
def test_folded_batchnorm_within_one_lsb_where_the_previous_form_was_not(layout):
    model = Norm(layout).eval()
    x = _inputs(layout)
    xq, want = _torch_f64(model, x)
    lsb = 2.0 ** -T.frac
    # one truncation into T, plus the scale's rounding times |x - mean| and the offset's rounding
    bound = lsb + (np.abs(xq - np.array(MEAN).reshape((1, 4, 1) if layout == "3d" else (-1,))).max() + 1) \
        * 2.0 ** -(S_FRAC + 1)
    assert np.abs(_previous_form(model, xq) - want).max() > 100 * lsb  # the premise: the old form failed here
    got = {t: np.asarray(from_pytorch(model, x[:1], precision="ap_fixed<16,6>", batch_size=16, **kw)(x.numpy()))
           for t, kw in (("llvm", dict(target="llvm")), ("csim", dict(target="vitis_hls", mode="csim")))}
    np.testing.assert_array_equal(got["llvm"], got["csim"])
    err = np.abs(got["llvm"] - want).max()
    assert err <= bound, f"{layout}: |y - torch| = {err / lsb:.3f} LSB > {bound / lsb:.3f} LSB"


def test_folded_batchnorm_cpp_is_one_multiply_add_per_element():
    model = Norm("channels_last").eval()
    x = _inputs("channels_last")
    f = from_pytorch(model, x[:1], target="vitis_hls", mode="csim", precision="ap_fixed<16,6>")
    code = f.hls.code
    m = re.search(r"\nvoid batchnorm_channels_last\((.*?)\) \{\n(.*?)\n\}\n", code, re.S)
    assert m, code
    params, body = m.groups()
    assert "mean" not in params and "beta" not in params and "offset" in params, params
    stores = [ln.strip() for ln in body.splitlines() if re.match(r"\s*Z\[", ln)]
    assert stores == ["Z[i0][i1][i2] = ap_fixed<16, 6>(X[i0][i1][i2] * scale[i2] + offset[i2]);"], stores
    assert " - " not in body and "sqrt" not in body and "float" not in body, body
    np.testing.assert_array_equal(f(x.numpy()), from_pytorch(model, x[:1], precision="ap_fixed<16,6>")(x.numpy()))


def test_fold_values_and_offset_type():
    gamma, beta, mean, var = (np.float32(v) for v in (GAMMA, BETA, MEAN, VAR))
    fold = bn_fold(T, None, gamma, beta, mean, var, 1e-5)
    exact = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + 1e-5)
    step = 2.0 ** -S_FRAC
    assert np.all(np.abs(fold.scale - exact) <= step / 2) and np.all(fold.scale * 2 ** S_FRAC % 1 == 0)
    off = beta.astype(np.float64) - mean.astype(np.float64) * fold.scale  # from the ROUNDED scale
    assert np.all(np.abs(fold.offset - off) <= step / 2) and np.all(fold.offset * 2 ** S_FRAC % 1 == 0)
    # the narrowest signed type with the scale's fraction bits: offsets reach -2478.9 -> 12 integer bits + sign
    assert fold.offset_t == Fixed(13 + S_FRAC, S_FRAC)
    assert fold.offset_t.min <= fold.offset.min() and fold.offset.max() <= fold.offset_t.max
    # at the edges of a type: an enumeration of widths, not the formula
    for raw in ([-(2 ** 7)], [2 ** 7 - 1], [2 ** 7], [-(2 ** 7) - 1], [0], [-1], [1], [3, -4]):
        vals = np.ldexp(np.array(raw, np.float64), -4)
        want = next(n for n in range(2, 40) if Fixed(n, 4).min <= vals.min() and vals.max() <= Fixed(n, 4).max)
        assert offset_type(vals, 4) == Fixed(want, 4), raw


def test_scale_outside_its_type_is_an_error():
    with pytest.raises(AlloError, match=r"bn1: the BatchNorm scale .* channel 1 .* outside its type .*accum"):
        bn_fold(T, Fixed(16, 12), np.float32([1, 20]), np.zeros(2), np.zeros(2), np.float32([1, 1]), 1e-5, where="bn1")
