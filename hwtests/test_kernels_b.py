"""Kernel library part B (shape, attention, pool, bitlinear) on the llvm backend, against plain torch.

Every reference is computed by torch (functional ops, nn.MultiheadAttention, or the formula written
out below), never by the kernels under test.
"""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st

import allo_ext
from allo_ext import AlloError, float32
from allo_ext.kernels import apply_schedules
from allo_ext.kernels.nn import (attention, bitlinear, bitlinear_int, bitlinear_weights, concat, linformer_attention,
                                 mean_pool, repeat_cls, reshape, select, slice as slice_k, transpose)

TOL = dict(rtol=1e-5, atol=1e-5)
PROFILES = st.sampled_from([None, "default", "latency"])


def build(k, profile=None):
    s = allo_ext.customize(k)
    if profile is not None:
        apply_schedules(s, profile)
    return s.build(target="llvm")


def randn(seed, *shape, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def linear_weights(seed, n, k):
    """torch.nn.Linear's init range, so products stay O(1) and float32 error stays far below 1e-5."""
    bound = 1.0 / math.sqrt(k)
    return np.random.default_rng(seed).uniform(-bound, bound, (n, k)).astype(np.float32)


shapes = st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple)
seeds = st.integers(0, 2**32 - 1)


# ---------------------------------------------------------------------------------------------- shape kernels
@given(shape=shapes, data=st.data(), seed=seeds, profile=PROFILES)
def test_transpose_matches_torch_permute(shape, data, seed, profile):
    perm = data.draw(st.permutations(range(len(shape))))
    # torch accepts negative dims in a permutation; so must the kernel.
    perm = [p - len(shape) if data.draw(st.booleans()) else p for p in perm]
    x = randn(seed, *shape)
    y = build(transpose(float32, shape, perm), profile)(x)
    np.testing.assert_array_equal(y, torch.from_numpy(x).permute(*perm).numpy())


def _factor(data, n, rank):
    dims = []
    for _ in range(rank - 1):
        d = data.draw(st.sampled_from([d for d in range(1, n + 1) if n % d == 0]))
        dims.append(d)
        n //= d
    return tuple(dims + [n])


@given(shape=shapes, data=st.data(), seed=seeds, profile=PROFILES)
def test_reshape_matches_torch(shape, data, seed, profile):
    out = _factor(data, int(np.prod(shape)), data.draw(st.integers(1, 4)))
    x = randn(seed, *shape)
    y = build(reshape(float32, shape, out), profile)(x)
    np.testing.assert_array_equal(y, torch.from_numpy(x).reshape(out).numpy())


@given(shape=shapes, data=st.data(), seed=seeds, profile=PROFILES)
def test_concat_matches_torch_cat(shape, data, seed, profile):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    shape_b = list(shape)
    shape_b[dim] = data.draw(st.integers(1, 4))
    a, b = randn(seed, *shape), randn(seed + 1, *shape_b)
    y = build(concat(float32, shape, shape_b, dim), profile)(a, b)
    np.testing.assert_array_equal(y, torch.cat([torch.from_numpy(a), torch.from_numpy(b)], dim).numpy())


@given(B=st.integers(1, 5), C=st.integers(1, 8), seed=seeds, profile=PROFILES)
def test_repeat_cls_matches_torch_expand(B, C, seed, profile):
    cls = randn(seed, 1, 1, C)
    y = build(repeat_cls(float32, B, C), profile)(cls)
    np.testing.assert_array_equal(y, torch.from_numpy(cls).expand(B, -1, -1).numpy())


bounds = st.one_of(st.none(), st.integers(-6, 6))


@given(shape=shapes, data=st.data(), start=bounds, stop=bounds, step=st.integers(1, 3), seed=seeds,
       profile=PROFILES)
def test_slice_matches_python_slicing_of_torch(shape, data, start, stop, step, seed, profile):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    assume(len(range(*slice(start, stop, step).indices(shape[dim]))) > 0)
    x = randn(seed, *shape)
    y = build(slice_k(float32, shape, dim, start, stop, step), profile)(x)
    ref = torch.from_numpy(x)[(slice(None),) * (dim % len(shape)) + (slice(start, stop, step),)]
    np.testing.assert_array_equal(y, ref.numpy())


@given(shape=shapes, data=st.data(), seed=seeds, profile=PROFILES)
def test_select_matches_torch_select(shape, data, seed, profile):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    index = data.draw(st.integers(-shape[dim], shape[dim] - 1))
    x = randn(seed, *shape)
    y = build(select(float32, shape, dim, index), profile)(x)
    np.testing.assert_array_equal(y, torch.select(torch.from_numpy(x), dim, index).numpy())


@given(shape=shapes, data=st.data(), seed=seeds, profile=PROFILES)
def test_mean_pool_matches_torch_mean(shape, data, seed, profile):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = randn(seed, *shape, scale=3.0)
    y = build(mean_pool(float32, shape, dim), profile)(x)
    np.testing.assert_allclose(y, torch.from_numpy(x).mean(dim).numpy(), **TOL)


def test_class_token_path_composes_three_kernels():
    """repeat_cls + concat + select called from one kernel: the JetFormer class-token path."""
    B, N, C = 3, 4, 5
    rep, cat = repeat_cls(float32, B, C), concat(float32, (B, 1, C), (B, N, C), 1)
    sel = select(float32, (B, N + 1, C), 1, 0)

    def cls_path(cls: float32[1, 1, C], X: float32[B, N, C]) -> float32[B, C]:
        R = rep(cls)
        Y = cat(R, X)
        Z = sel(Y)
        return Z

    s = allo_ext.customize(cls_path)
    assert sorted(apply_schedules(s, "default")) == ["concat", "repeat_cls", "select"]
    cls, x = randn(1, 1, 1, C), randn(2, B, N, C)
    ref = torch.cat([torch.from_numpy(cls).expand(B, -1, -1), torch.from_numpy(x)], 1)[:, 0]
    np.testing.assert_array_equal(s.build(target="llvm")(cls, x), ref.numpy())


def test_equal_arguments_give_one_kernel_instance():
    assert transpose(float32, (2, 3), (1, 0)) is transpose(float32, [2, 3], [-1, np.int64(0)])
    assert attention(float32, 2, 3, 4, 2) is attention(float32, 2, 3, 4, 2, qkv_bias=False)


# ---------------------------------------------------------------------------------------------- attention
def _attention_inputs(seed, B, L, C, qkv_bias):
    X = randn(seed, B, L, C)
    Wq, Wk, Wv, Wo = (linear_weights(seed + k, C, C) for k in range(1, 5))
    bq, bk, bv, bo = (randn(seed + k, C, scale=0.5) for k in range(5, 9))
    return X, Wq, Wk, Wv, Wo, (bq, bk, bv) if qkv_bias else None, bo


def _mha_reference(X, Wq, Wk, Wv, Wo, qkv_b, bo, H):
    C = X.shape[-1]
    mha = torch.nn.MultiheadAttention(C, H, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.from_numpy(np.concatenate([Wq, Wk, Wv])))
        mha.in_proj_bias.copy_(torch.from_numpy(np.concatenate(qkv_b)) if qkv_b else torch.zeros(3 * C))
        mha.out_proj.weight.copy_(torch.from_numpy(Wo))
        mha.out_proj.bias.copy_(torch.from_numpy(bo))
        x = torch.from_numpy(X)
        return mha(x, x, x, need_weights=False)[0].numpy()


def _sdpa_reference(X, Wq, Wk, Wv, Wo, qkv_b, bo, H):
    B, L, C = X.shape
    t = torch.from_numpy
    bq, bk, bv = (t(b) for b in qkv_b) if qkv_b else (None, None, None)
    x = t(X)
    heads = [F.linear(x, t(W), b).view(B, L, H, C // H).transpose(1, 2) for W, b in ((Wq, bq), (Wk, bk), (Wv, bv))]
    o = F.scaled_dot_product_attention(*heads).transpose(1, 2).reshape(B, L, C)
    return F.linear(o, t(Wo), t(bo)).numpy()


@given(B=st.integers(1, 3), L=st.integers(1, 9), CH=st.sampled_from([(4, 1), (4, 2), (8, 1), (8, 2)]),
       qkv_bias=st.booleans(), seed=seeds, profile=PROFILES)
def test_attention_matches_multihead_attention_and_sdpa(B, L, CH, qkv_bias, seed, profile):
    C, H = CH
    X, Wq, Wk, Wv, Wo, qkv_b, bo = _attention_inputs(seed % 2**31, B, L, C, qkv_bias)
    f = build(attention(float32, B, L, C, H, qkv_bias=qkv_bias), profile)
    args = (X, Wq, Wk, Wv, *qkv_b, Wo, bo) if qkv_bias else (X, Wq, Wk, Wv, Wo, bo)
    y = f(*args)
    np.testing.assert_allclose(y, _mha_reference(X, Wq, Wk, Wv, Wo, qkv_b, bo, H), **TOL)
    np.testing.assert_allclose(y, _sdpa_reference(X, Wq, Wk, Wv, Wo, qkv_b, bo, H), **TOL)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_attention_softmax_is_stable_for_large_scores(sign):
    """Every score about +-1e3: exp() overflows (+) or underflows to 0/0 (-) unless the row max is
    subtracted first."""
    B, L, C, H = 2, 4, 4, 2
    X = np.random.default_rng(7).uniform(0.5, 1.5, (B, L, C)).astype(np.float32)
    eye = np.eye(C, dtype=np.float32)
    Wq, Wk, Wv, Wo = 30 * eye, sign * 30 * eye, linear_weights(8, C, C), linear_weights(9, C, C)
    bo = randn(10, C)
    y = build(attention(float32, B, L, C, H))(X, Wq, Wk, Wv, Wo, bo)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y, _sdpa_reference(X, Wq, Wk, Wv, Wo, None, bo, H), rtol=1e-4, atol=1e-4)


def _linformer_reference(X, Wq, Wk, Wv, E, Fm, Wo, bo, H):
    """Linformer written out: per batch and head k' = E k, v' = F v, then softmax(q k'^T / sqrt(D)) v'."""
    B, L, C = X.shape
    D = C // H
    x = torch.from_numpy(X).double()
    q, k, v = (x @ torch.from_numpy(W).double().T for W in (Wq, Wk, Wv))
    split = lambda t: t.view(B, -1, H, D).transpose(1, 2)  # noqa: E731  (B, H, len, D)
    q, k, v = split(q), split(k), split(v)
    kp = torch.from_numpy(E).double() @ k
    vp = torch.from_numpy(Fm).double() @ v
    p = torch.softmax(q @ kp.transpose(-2, -1) / math.sqrt(D), dim=-1)
    o = (p @ vp).transpose(1, 2).reshape(B, L, C)
    return (o @ torch.from_numpy(Wo).double().T + torch.from_numpy(bo).double()).numpy()


@given(B=st.integers(1, 3), L=st.integers(1, 9), K=st.integers(1, 5),
       CH=st.sampled_from([(4, 1), (4, 2), (8, 1), (8, 2)]), seed=seeds, profile=PROFILES)
def test_linformer_attention_matches_torch(B, L, K, CH, seed, profile):
    C, H = CH
    seed %= 2**31
    X, Wq, Wk, Wv, Wo, _, bo = _attention_inputs(seed, B, L, C, False)
    E, Fm = linear_weights(seed + 20, K, L), linear_weights(seed + 21, K, L)
    y = build(linformer_attention(float32, B, L, C, H, K), profile)(X, Wq, Wk, Wv, E, Fm, Wo, bo)
    np.testing.assert_allclose(y, _linformer_reference(X, Wq, Wk, Wv, E, Fm, Wo, bo, H), **TOL)


# ---------------------------------------------------------------------------------------------- bitlinear
def _bitlinear_reference(X, S, beta):
    """The BitLinear formula in torch: absmax int8 activations, int32 accumulation."""
    x = torch.from_numpy(X)
    absmax = x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-5)
    # tensor / tensor: one correctly rounded division (``127.0 / t`` is reciprocal-then-multiply in torch).
    gamma = torch.full_like(absmax, 127.0) / absmax
    xq = torch.round(x * gamma).clamp(-128, 127).to(torch.int32)
    acc = xq @ torch.from_numpy(S).to(torch.int32).T
    return acc, gamma[:, 0], acc.to(torch.float32) * torch.from_numpy(beta) / gamma


def _bitlinear_case(seed, M, K, N):
    rng = np.random.default_rng(seed)
    X = (rng.standard_normal((M, K)) * rng.uniform(0.01, 10)).astype(np.float32)
    if M > 1 and rng.random() < 0.3:
        X[0] = 0.0  # an all-zero row takes the 1e-5 floor
    W = rng.standard_normal((N, K)).astype(np.float32)
    S, beta = bitlinear_weights(W)
    return X, W, S, beta, rng.standard_normal(N).astype(np.float32)


@given(M=st.integers(1, 6), K=st.integers(1, 40), N=st.integers(1, 6), seed=seeds, profile=PROFILES)
def test_bitlinear_int_is_exact(M, K, N, seed, profile):
    X, _, S, beta, _ = _bitlinear_case(seed, M, K, N)
    acc, gamma = build(bitlinear_int(float32, M, K, N), profile)(X, S)
    ref_acc, ref_gamma, _ = _bitlinear_reference(X, S, beta)
    assert acc.dtype == np.int32
    np.testing.assert_array_equal(acc, ref_acc.numpy())
    np.testing.assert_array_equal(gamma, ref_gamma.numpy())


@given(M=st.integers(1, 6), K=st.integers(1, 40), N=st.integers(1, 6), bias=st.booleans(), seed=seeds,
       profile=PROFILES)
def test_bitlinear_matches_torch_formula(M, K, N, bias, seed, profile):
    X, _, S, beta, b = _bitlinear_case(seed, M, K, N)
    f = build(bitlinear(float32, M, K, N, bias=bias), profile)
    y = f(X, S, beta, b) if bias else f(X, S, beta)
    ref = _bitlinear_reference(X, S, beta)[2] + (torch.from_numpy(b) if bias else 0)
    np.testing.assert_allclose(y, ref.numpy(), rtol=1e-6, atol=0)


def test_bitlinear_rounds_half_to_even():
    # max|x| = 127 makes gamma exactly 1, so x * gamma = x hits the .5 ties exactly.
    X = np.array([[127.0, 0.5, 1.5, 2.5, -0.5, -2.5, 3.49]], dtype=np.float32)
    eye = np.eye(7, dtype=np.int8)
    acc, gamma = build(bitlinear_int(float32, 1, 7, 7))(X, eye)
    np.testing.assert_array_equal(acc[0], [127, 0, 2, 2, 0, -2, 3])
    assert gamma[0] == 1.0


def test_bitlinear_weights_match_torch():
    W = randn(3, 6, 9)
    W[0, 0] = W.mean(dtype=np.float64)  # an entry at the mean maps to +1
    S, beta = bitlinear_weights(W)
    w = torch.from_numpy(W)
    ref_s = torch.where(w - w.double().mean().float() >= 0, 1, -1).to(torch.int8)
    assert S.dtype == np.int8 and beta.dtype == np.float32 and beta.shape == (1,)
    np.testing.assert_array_equal(S, ref_s.numpy())
    assert S[0, 0] == 1
    np.testing.assert_allclose(beta[0], w.abs().mean().item(), rtol=1e-6)


def test_bitlinear_matches_the_model_layer():
    """The compiled kernel against allo_ext.models' BitLinear in eval mode (an independent torch module)."""
    models = pytest.importorskip("allo_ext.models.bitlinear")
    M, K, N = 4, 12, 5
    layer = models.BitLinear(K, N).eval()
    X = randn(11, M, K)
    S, beta = bitlinear_weights(layer.weight.detach().numpy())
    y = build(bitlinear(float32, M, K, N), "default")(X, S, beta, layer.bias.detach().numpy())
    with torch.no_grad():
        ref = layer(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------------------------- schedules
def _assert_every_loop_scheduled(s):
    from torch_mlir import ir

    def loops_in(root):
        found = []

        def cb(o):
            if o.name == "affine.for":
                found.append(o)
            return ir.WalkResult.ADVANCE

        root.walk(cb)
        return found

    loops = loops_in(s.module.operation)
    assert loops
    for op in loops:
        ok = "hls.unroll" in op.attributes or any("hls.pipeline_ii" in o.attributes for o in loops_in(op))
        assert ok, f"loop {op.attributes['loop_name']} is neither unrolled nor pipelined, nor holds a pipeline"


def _cases():
    x234 = randn(0, 2, 3, 4)
    X, Wq, Wk, Wv, Wo, _, bo = _attention_inputs(5, 2, 5, 8, False)
    E, Fm = linear_weights(6, 3, 5), linear_weights(7, 3, 5)
    Xb, _, S, beta, b = _bitlinear_case(8, 3, 10, 4)
    t = torch.from_numpy
    return {
        "transpose": (transpose(float32, (2, 3, 4), (2, 0, 1)), (x234,), t(x234).permute(2, 0, 1), False),
        "reshape": (reshape(float32, (2, 3, 4), (6, 4)), (x234,), t(x234).reshape(6, 4), False),
        "concat": (concat(float32, (2, 3, 4), (2, 3, 4), -1), (x234, x234), torch.cat([t(x234)] * 2, -1), False),
        "slice": (slice_k(float32, (2, 3, 4), 2, None, -1, 2), (x234,), t(x234)[..., :-1:2], False),
        "select": (select(float32, (2, 3, 4), 1, 0), (x234,), t(x234)[:, 0], False),
        "mean_pool": (mean_pool(float32, (2, 3, 4), 1), (x234,), t(x234).mean(1), True),
        "attention": (attention(float32, 2, 5, 8, 2), (X, Wq, Wk, Wv, Wo, bo),
                      t(_sdpa_reference(X, Wq, Wk, Wv, Wo, None, bo, 2)), True),
        "linformer_attention": (linformer_attention(float32, 2, 5, 8, 2, 3), (X, Wq, Wk, Wv, E, Fm, Wo, bo),
                                t(_linformer_reference(X, Wq, Wk, Wv, E, Fm, Wo, bo, 2)), True),
        "bitlinear": (bitlinear(float32, 3, 10, 4), (Xb, S, beta, b),
                      _bitlinear_reference(Xb, S, beta)[2] + t(b), True),
    }


@pytest.mark.parametrize("profile", ["default", "latency"])
@pytest.mark.parametrize("name", list(_cases()))
def test_schedules_mark_loops_and_keep_results(name, profile):
    k, args, ref, has_reduction = _cases()[name]
    s = allo_ext.customize(k)
    scheduled = apply_schedules(s, profile)
    assert scheduled, "no kernel instance was scheduled"
    ir_text = str(s.module)
    if profile == "default":  # pipelines the inner loops and never unrolls
        assert "hls.pipeline_ii = 1" in ir_text and "hls.unroll" not in ir_text
    else:  # schedule_latency: small buffers become registers; each loop is unrolled, pipelined or holds a pipeline
        assert 'kind = "complete"' in ir_text
        _assert_every_loop_scheduled(s)
    y = s.build(target="llvm")(*args)
    np.testing.assert_allclose(y, ref.numpy(), **TOL)


# ---------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("make, match", [
    (lambda: transpose(float32, (2, 3), (0, 0)), r"perm \(0, 0\) is not a permutation of the 2 dims"),
    (lambda: transpose(float32, (2, 3), (0, 1, 2)), r"not a permutation"),
    (lambda: transpose(float32, (2, 3), (0, 2)), r"not a permutation"),
    (lambda: transpose(float32, (2, 3), (1.0, 0)), r"perm entry must be an int, got 1.0"),
    (lambda: reshape(float32, (2, 3), (4, 2)), r"cannot reshape \(2, 3\) \(6 elements\) to \(4, 2\) \(8 elements\)"),
    (lambda: concat(float32, (2, 3), (3, 3), 1), r"differ in dim 0 \(2 vs 3\)"),
    (lambda: concat(float32, (2, 3), (2, 3, 1), 0), r"same rank"),
    (lambda: concat(float32, (2, 3), (2, 3), 2), r"dim 2 is out of range for a tensor of rank 2"),
    (lambda: select(float32, (2, 3), 1, 3), r"index 3 is out of range for dim 1 of shape \(2, 3\)"),
    (lambda: select(float32, (2, 3), 1, -4), r"index -4 is out of range"),
    (lambda: slice_k(float32, (2, 3), 1, 0, 3, 0), r"step must be an int >= 1"),
    (lambda: slice_k(float32, (2, 3), 1, 2, 1), r"is empty"),
    (lambda: mean_pool(float32, (2, 3), -3), r"dim -3 is out of range"),
    (lambda: transpose(float32, (2, 0), (1, 0)), r"every dimension of shape must be an int >= 1"),
    (lambda: attention(float32, 1, 3, 6, 4), r"C=6 channels cannot be split into H=4 heads"),
    (lambda: bitlinear_weights(np.ones(3, np.float32)), r"2-D \(out, in\) matrix"),
])
def test_bad_arguments_raise_clear_errors(make, match):
    with pytest.raises(AlloError, match=match) as info:
        make()
    assert isinstance(info.value, ValueError)
