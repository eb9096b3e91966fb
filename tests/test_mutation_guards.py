"""Tests drawn where bugs show: each one fails on a deliberate mutation that the rest of the suite let
pass (bench/mutate.py applies them to a copy of the code and runs these).

- BatchNorm folding without epsilon, or with epsilon fixed at 1e-5: running variances near 1e-4 and a
  non-default eps, where epsilon is not invisible;
- softmax/log_softmax with the running max starting at 0 instead of -inf: rows like [-200, -201, -199];
- ``alpha`` ignored in add/sub;
- the transpose-BatchNorm-transpose matcher accepting any transpose, or a tensor of another rank;
- the estimator pricing an integer divider as free; the C++ `max` helper dropping NaNs.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

import allo_ext
from allo_ext import float32
from allo_ext.frontend import from_pytorch
from allo_ext.kernels import nn as K

torch.manual_seed(0)


def _tiny_variance_bn(c: int, eps: float, g: torch.Generator) -> nn.BatchNorm1d:
    bn = nn.BatchNorm1d(c, eps=eps)
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(c, generator=g) * 0.05)
        bn.running_var.copy_(torch.empty(c).uniform_(0.5e-4, 2e-4, generator=g))
        bn.weight.copy_(torch.randn(c, generator=g))
        bn.bias.copy_(torch.randn(c, generator=g))
    return bn.eval()


class _LinearBN(nn.Module):
    """Linear then BatchNorm on 2-D: folded backward into the linear."""

    def __init__(self, eps, g):
        super().__init__()
        self.lin = nn.Linear(5, 6)
        self.bn = _tiny_variance_bn(6, eps, g)
        with torch.no_grad():
            self.lin.weight.mul_(0.01)
            self.lin.bias.mul_(0.01)

    def forward(self, x):
        return self.bn(self.lin(x))


class _TokensBN(nn.Module):
    """(B, N, C) tokens, BatchNorm over channels (transpose-BN-transpose), then a linear: folded forward."""

    def __init__(self, eps, g):
        super().__init__()
        self.bn = _tiny_variance_bn(4, eps, g)
        self.lin = nn.Linear(4, 3)

    def forward(self, x):
        return self.lin(self.bn(x.transpose(1, 2)).transpose(1, 2))


class _LoneBN(nn.Module):
    """BatchNorm with no linear to fold into: the kernel itself."""

    def __init__(self, eps, g):
        super().__init__()
        self.bn = _tiny_variance_bn(4, eps, g)

    def forward(self, x):
        return torch.relu(self.bn(x.transpose(1, 2)).transpose(1, 2))


@pytest.mark.parametrize("eps", [1e-3, 1e-5])
@pytest.mark.parametrize("model_cls, shape", [(_LinearBN, (5,)), (_TokensBN, (8, 4)), (_LoneBN, (8, 4))])
def test_batchnorm_with_tiny_running_variance(model_cls, shape, eps):
    g = torch.Generator().manual_seed(1)
    model = model_cls(eps, g).eval()
    x = torch.randn((32,) + shape, generator=g) * 0.01
    if model_cls is not _LinearBN:
        x = x + model.bn.running_mean  # around the running mean: (x - mean) ~ sqrt(var)
    with torch.no_grad():
        ref = model(x).numpy()
    assert np.abs(ref).max() > 0.1  # the data are where epsilon matters, not swamped
    got = from_pytorch(model, x[:1], target="llvm")(x.numpy())
    np.testing.assert_allclose(got, ref, rtol=2e-4, atol=2e-4)


ROWS = np.array([[-200.0, -201.0, -199.0], [-1e4, -1e4 - 3, -1e4 + 1], [0.0, 1.0, 2.0], [50.0, -50.0, 0.0]],
                np.float32)


@pytest.mark.parametrize("target", ["llvm", pytest.param("csim", marks=pytest.mark.csim)])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_of_very_negative_rows(target, name):
    s = allo_ext.customize(getattr(K, name)(float32, ROWS.shape))
    f = s.build(target="vitis_hls", mode="csim") if target == "csim" else s.build(target=target)
    ref = getattr(torch, name)(torch.from_numpy(ROWS), dim=-1).numpy()
    got = f(ROWS)
    assert np.isfinite(got).all(), got
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_attention_softmax_of_very_negative_scores():
    """The attention kernel's own softmax: queries anti-aligned with keys give scores far below zero."""
    from allo_ext.kernels.nn.attention import _heads

    B, L, C, H = 2, 5, 4, 2
    g = np.random.default_rng(0)
    # Every query is positive and every key negative: each row of scores lies far below zero.
    q = (np.abs(g.normal(size=(B, L, C))) * 10 + 10).astype(np.float32)
    k = -(np.abs(g.normal(size=(B, L, C))) * 10 + 10).astype(np.float32)
    v = g.normal(size=(B, L, C)).astype(np.float32)
    f = allo_ext.customize(_heads(float32, B, L, L, C, H)).build(target="llvm")
    tq, tk, tv = (torch.from_numpy(a).view(B, L, H, C // H).transpose(1, 2) for a in (q, k, v))
    ref = torch.softmax(tq @ tk.transpose(-1, -2) / np.sqrt(C // H), -1) @ tv
    ref = ref.transpose(1, 2).reshape(B, L, C).numpy()
    got = f(q, k, v)
    assert np.isfinite(got).all(), got
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


class _AddAlpha(nn.Module):
    def forward(self, x):
        return torch.sub(torch.add(x, x * x, alpha=2.5), torch.relu(x), alpha=-0.75)


def test_add_and_sub_honour_alpha():
    m = _AddAlpha().eval()
    x = torch.randn(4, 6)
    got = from_pytorch(m, x[:1], target="llvm")(x.numpy())
    np.testing.assert_allclose(got, (x + 2.5 * x * x + 0.75 * torch.relu(x)).numpy(), rtol=1e-6, atol=1e-6)


class _BatchAxisBN(nn.Module):
    """BatchNorm between two transposes that are NOT (1, 2): channels are the particle axis here."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.bn = _tiny_variance_bn(4, 1e-3, g)

    def forward(self, x):  # x (B, 4, 4)
        return self.bn(x.transpose(0, 2)).transpose(0, 2)


def test_transpose_bn_transpose_matcher_needs_dims_1_2():
    from allo_ext.frontend.compile import export
    from allo_ext.frontend.fusion import fuse_channels_last_batchnorm

    ep = export(_BatchAxisBN().eval(), torch.zeros(2, 4, 4))
    assert fuse_channels_last_batchnorm(ep.graph_module.graph) == 0
    ep = export(_LoneBN(1e-3, torch.Generator().manual_seed(0)).eval(), torch.zeros(2, 8, 4))
    assert fuse_channels_last_batchnorm(ep.graph_module.graph) == 1
    # End to end: either refused (the batch axis moves) or right, never silently normalised over the wrong axis.
    m = _BatchAxisBN().eval()
    x = torch.randn(3, 4, 4) * 0.01
    with torch.no_grad():
        ref = m(x).numpy()
    try:
        got = from_pytorch(m, x, target="llvm", batch_size=3)(x.numpy())
    except allo_ext.AlloError:
        return
    np.testing.assert_allclose(got, ref, rtol=2e-4, atol=2e-4)


class _RankFourBN(nn.Module):
    """transpose(1, 2) -> BatchNorm2d -> transpose(1, 2) on a 4-D tensor: the same shape of pattern as the
    3-D channels-last BatchNorm, but the channels-last kernel is 3-D only."""

    def __init__(self, g: torch.Generator):
        super().__init__()
        self.bn = nn.BatchNorm2d(4, eps=1e-3)
        with torch.no_grad():
            self.bn.running_mean.copy_(torch.randn(4, generator=g))
            self.bn.running_var.copy_(torch.empty(4).uniform_(0.01, 2.0, generator=g))
            self.bn.weight.copy_(torch.randn(4, generator=g))
            self.bn.bias.copy_(torch.randn(4, generator=g))

    def forward(self, x):  # x (B, 3, 4, 2)
        return self.bn(x.transpose(1, 2)).transpose(1, 2)


def test_transpose_bn_transpose_matcher_needs_rank_3():
    from allo_ext.frontend.compile import export
    from allo_ext.frontend.fusion import fuse_channels_last_batchnorm

    m = _RankFourBN(torch.Generator().manual_seed(1)).eval()
    ep = export(m, torch.zeros(2, 3, 4, 2))
    assert fuse_channels_last_batchnorm(ep.graph_module.graph) == 0
    x = torch.randn(5, 3, 4, 2)
    with torch.no_grad():
        ref = m(x).numpy()
    got = from_pytorch(m, x, target="llvm", batch_size=5)(x.numpy())
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


def _fmax(A: float32[6], B: float32[6]) -> float32[6]:
    C: float32[6] = 0.0
    for i in range(6):
        C[i] = max(A[i], B[i])
    return C


@pytest.mark.csim
@pytest.mark.parametrize("target", ["llvm", "csim"])
def test_max_propagates_nan(target):
    # torch.maximum: a NaN on either side wins; std::fmax would silently drop it. (Signed zeros are not
    # compared: torch leaves maximum(-0, +0) to the order of its operands.)
    a = np.array([np.nan, 1.0, -3.0, 0.0, -0.0, 2.0], dtype=np.float32)
    b = np.array([1.0, np.nan, np.nan, -0.0, 0.0, -5.0], dtype=np.float32)
    s = allo_ext.customize(_fmax)
    f = s.build(target="llvm") if target == "llvm" else s.build(target="vitis_hls", mode="csim")
    got = f(a, b)
    ref = torch.maximum(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_array_equal(got[~np.isnan(ref)], ref[~np.isnan(ref)])
