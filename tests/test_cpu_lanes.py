"""The CPU's lane forms (8 rows, products or jets side by side, one per vector lane) and the vector
``exp`` polynomial, against torch: softmax_lanes, bmm(loop_order="lanes"), attention_lanes and the
frontend rewrite that picks the attention form for JetFormer on target="llvm" (and never for HLS)."""
import numpy as np
import pytest
import torch

import allo_ext
from allo_ext import float32
from allo_ext.lang import Fixed, exp
from allo_ext.kernels import nn as K
from allo_ext.lang.errors import AlloError


def build(k, **kw):
    return allo_ext.customize(k).build(target="llvm", **kw)


# ------------------------------------------------------------------------------------ vector exp
def vexp(N):
    def vexp(X: float32[N]) -> float32[N]:
        Z: float32[N]
        for i in range(N):
            Z[i] = exp(X[i])
        return Z

    return vexp


def test_vector_exp_against_torch_over_the_float_range():
    xs = np.concatenate([
        np.linspace(-110.0, 90.0, 200_001, dtype=np.float32),     # underflow .. overflow
        np.array([0.0, -0.0, 1e-8, -1e-8, 88.72283, 88.72284, 88.7229, -87.33655, -87.3366, -103.97, -104.0,
                  -1e30, 1e30, -np.inf, np.inf, np.nan, 0.5 * np.log(2), -0.5 * np.log(2)], np.float32),
        np.random.default_rng(0).standard_normal(4000).astype(np.float32) * 5,
    ])
    xs = np.concatenate([xs, np.zeros((-len(xs)) % 8, np.float32)])
    m = build(vexp(len(xs)))
    assert "__allo_exp_v8f32" in m.lowered_ir, "the loop was vectorised and its exp replaced"
    got = m(xs)
    want = torch.exp(torch.from_numpy(xs)).numpy()
    normal = np.isfinite(want) & (want >= np.finfo(np.float32).tiny)
    rel = np.abs(got[normal].astype(np.float64) - want[normal]) / want[normal]
    assert rel.max() <= 3e-7, f"max relative error {rel.max():.3g} at x={xs[normal][rel.argmax()]}"
    # below the normal range: absolute error under the smallest normal float
    sub = np.isfinite(want) & ~normal
    assert np.abs(got[sub] - want[sub]).max(initial=0) < np.finfo(np.float32).tiny
    assert np.array_equal(np.isinf(got), np.isinf(want)) and np.all(got[np.isinf(want)] > 0)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert got[xs == -np.inf].tolist() == [0.0] and got[xs == 0].min() == 1.0


def test_scalar_exp_stays_libm():
    m = build(vexp(5))  # 5 lanes: not vectorised
    assert "__allo_exp" not in m.lowered_ir
    x = np.array([-100, -1, 0, 1, 80], np.float32)
    # libm's expf is correctly rounded on these: the float64 exp rounded once
    np.testing.assert_array_equal(m(x), np.exp(x.astype(np.float64)).astype(np.float32))


# ------------------------------------------------------------------------------------ softmax_lanes
def _softmax_ref(x):
    return torch.softmax(torch.from_numpy(x), dim=-1).numpy()


@pytest.mark.parametrize("R,C", [(8, 1), (8, 9), (24, 9), (16, 17), (264, 5)])
def test_softmax_lanes_against_torch(R, C):
    rng = np.random.default_rng(R * 100 + C)
    x = rng.standard_normal((R, C)).astype(np.float32) * 4
    x[0] = -1e30                     # every logit very negative
    x[1, 0] = 1e4                    # one huge logit
    x[2] = 3.25                      # ties
    x[3, ::2] = -1e38                # -inf-like logits next to normal ones
    x[4] = np.linspace(-200, 0, C)   # exp underflows for most of the row
    m = build(K.softmax_lanes(float32, R, C))
    assert "vector<8xf32>" in m.lowered_ir
    got, want = m(x), _softmax_ref(x)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-6)


def test_softmax_lanes_all_minus_inf_row_is_nan_like_torch():
    x = np.zeros((8, 4), np.float32)
    x[5] = -np.inf
    got = build(K.softmax_lanes(float32, 8, 4))(x)
    assert np.isnan(got[5]).all() and np.isnan(_softmax_ref(x)[5]).all()
    np.testing.assert_allclose(got[:5], 0.25)


def test_softmax_lanes_refuses_partial_groups_and_fixed_point():
    with pytest.raises(AlloError, match="not a multiple of lanes=8"):
        K.softmax_lanes(float32, 12, 9)
    with pytest.raises(AlloError, match="fixed point"):
        K.softmax_lanes(Fixed(16, 10), 8, 9)


# ------------------------------------------------------------------------------------ bmm lanes
@pytest.mark.parametrize("B,M,Kd,N", [(8, 9, 4, 9), (16, 9, 9, 4), (24, 1, 3, 1), (520, 2, 5, 3)])
def test_bmm_lanes_equals_the_ikj_order_and_torch(B, M, Kd, N):
    rng = np.random.default_rng(B + M)
    a = rng.standard_normal((B, M, Kd)).astype(np.float32)
    b = rng.standard_normal((B, Kd, N)).astype(np.float32)
    lanes = build(K.bmm(float32, B, M, Kd, N, loop_order="lanes"))
    assert "vector<8xf32>" in lanes.lowered_ir
    got = lanes(a, b)
    # the same sums in the same order as the scalar ikj form: identical bits
    np.testing.assert_array_equal(got, build(K.bmm(float32, B, M, Kd, N, loop_order="ikj"))(a, b))
    np.testing.assert_allclose(got, (torch.from_numpy(a) @ torch.from_numpy(b)).numpy(), rtol=1e-5, atol=1e-5)


def test_bmm_lanes_refuses_partial_groups():
    with pytest.raises(ValueError, match="multiple of 8"):
        K.bmm(float32, 12, 9, 4, 9, loop_order="lanes")


# ------------------------------------------------------------------------------------ attention_lanes
def _attention_ref(q, k, v, H, scale):
    b, lq, c = q.shape
    split = [torch.from_numpy(t).view(b, t.shape[1], H, c // H).transpose(1, 2) for t in (q, k, v)]
    p = torch.softmax(split[0] @ split[1].transpose(-2, -1) * scale, dim=-1)
    return (p @ split[2]).transpose(1, 2).reshape(b, lq, c).numpy()


@pytest.mark.parametrize("B,L,S,C,H", [(8, 9, 9, 8, 2), (264, 9, 9, 8, 2), (16, 3, 5, 4, 1), (8, 1, 1, 6, 3)])
def test_attention_lanes_against_torch(B, L, S, C, H):
    rng = np.random.default_rng(B + L + S)
    q = rng.standard_normal((B, L, C)).astype(np.float32) * 3
    k = rng.standard_normal((B, S, C)).astype(np.float32) * 3
    v = rng.standard_normal((B, S, C)).astype(np.float32)
    q[0] *= 1e3  # scores of thousands: exp underflows for all but the row maximum
    scale = 0.5
    m = build(K.attention_lanes(float32, B, L, S, C, H, scale))
    assert "__allo_exp_v8f32" in m.lowered_ir
    np.testing.assert_allclose(m(q, k, v), _attention_ref(q, k, v, H, scale), rtol=1e-5, atol=1e-5)


def test_attention_lanes_refuses_what_it_cannot_do():
    with pytest.raises(AlloError, match="not a multiple of 8"):
        K.attention_lanes(float32, 12, 9, 9, 8, 2, 0.5)
    with pytest.raises(AlloError, match="cannot be split into H=3"):
        K.attention_lanes(float32, 8, 9, 9, 8, 3, 0.5)


# ------------------------------------------------------------------------------------ the rewrite
@pytest.fixture(scope="module")
def tiny():
    from allo_ext.models import JetFormer

    torch.manual_seed(0)
    model = JetFormer.tiny().eval()
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm1d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
    return model


def test_jetformer_attention_runs_fused_on_the_cpu(tiny):
    from allo_ext.frontend import from_pytorch

    f = from_pytorch(tiny, torch.randn(2, 8, 3), batch_size=16)
    assert f.module.lowered_ir.count("call @attention_lanes") == 4  # one per block
    assert "call @bmm" not in f.module.lowered_ir and "call @softmax" not in f.module.lowered_ir
    x = torch.randn(16 + 13, 8, 3, generator=torch.Generator().manual_seed(3)) * 3  # [16, 8, 4, 1]
    with torch.inference_mode():
        want = tiny(x).numpy()
    got = f(x.numpy())
    assert f.last_plan == [16, 8, 4, 1]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert "attention_lanes" not in f.module_for(4).lowered_ir, "4 jets: no whole group of lanes, unfused"


def test_attention_weights_returned_keep_the_unfused_chain(tiny):
    from allo_ext.frontend import from_pytorch

    class Both(torch.nn.Module):
        def __init__(self, attn):
            super().__init__()
            self.attn = attn

        def forward(self, x):
            y, p = self.attn(x, return_attention=True)
            return y + p.sum(dim=(1, 3)).unsqueeze(-1)  # per jet: no mixing across the batch

    m = Both(tiny.blocks[0].attn).eval()
    f = from_pytorch(m, torch.randn(2, 9, 8), batch_size=8)
    assert "attention_lanes" not in f.module.lowered_ir
    x = torch.randn(8, 9, 8)
    with torch.inference_mode():
        np.testing.assert_allclose(f(x.numpy()), m(x).numpy(), rtol=1e-4, atol=1e-4)


def test_hls_never_gets_the_cpu_forms(tiny, tmp_path):
    from allo_ext.frontend import trace

    s = trace(tiny, torch.randn(8, 8, 3), target="vhls")
    text = str(s.module)
    assert "attention_lanes" not in text and "softmax_lanes" not in text and "@softmax" in text
