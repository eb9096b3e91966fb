"""target="vitis_hls", mode="csim": every library kernel through g++ against the llvm backend and torch.

CASES holds one small fixed instance per library kernel with a torch reference written out here
(torch.nn.functional and tensor ops, never the kernels' code). A kernel registered in
allo_ext.kernels.KERNELS without an entry here fails test_every_kernel_has_a_case, so the table
stays complete as kernels are added.
"""
import math
import os
import subprocess
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import allo_ext
from allo_ext import AlloError, CallError, Fixed, ToolNotFoundError, UFixed, float32, grid, int8, int32, uint8
from allo_ext.backends.hls import csim
from allo_ext.backends.hls.csim import CSimCompileError, CSimModule
from allo_ext.kernels import KERNELS, apply_schedules
from allo_ext.kernels import nn as K

pytestmark = pytest.mark.csim

T = torch.from_numpy


def randn(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def uniform(rng, lo, hi, *shape):
    return rng.uniform(lo, hi, shape).astype(np.float32)


@dataclass
class Case:
    make: Callable          # () -> kernel function
    args: Callable          # rng -> tuple of numpy inputs
    ref: Callable           # *inputs -> torch tensor(s) or numpy array(s)


# ---------------------------------------------------------------------- torch references
def sdpa_attention(X, Wq, Wk, Wv, Wo, bo, H):
    B, L, C = X.shape
    heads = [F.linear(T(X), T(W)).view(B, L, H, C // H).transpose(1, 2) for W in (Wq, Wk, Wv)]
    o = F.scaled_dot_product_attention(*heads).transpose(1, 2).reshape(B, L, C)
    return F.linear(o, T(Wo), T(bo))


def heads_attention(q, k, v, H, scale):
    """softmax(q k^T * scale) v per head; q (B, L, C), k and v (B, S, C), head h = channels h*D..."""
    B, L, C = q.shape
    split = lambda t: T(t).view(B, t.shape[1], H, C // H).transpose(1, 2)  # noqa: E731
    p = torch.softmax(split(q) @ split(k).transpose(-2, -1) * scale, dim=-1)
    return (p @ split(v)).transpose(1, 2).reshape(B, L, C)


def linformer(X, Wq, Wk, Wv, E, Fm, Wo, bo, H):
    """Keys and values projected along the sequence (k' = E k, v' = F v), then scaled dot product."""
    B, L, C = X.shape
    x = T(X).double()
    q, k, v = (x @ T(W).double().T for W in (Wq, Wk, Wv))
    split = lambda t: t.view(B, -1, H, C // H).transpose(1, 2)  # noqa: E731
    q, k, v = split(q), T(E).double() @ split(k), T(Fm).double() @ split(v)
    p = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(C // H), dim=-1)
    return ((p @ v).transpose(1, 2).reshape(B, L, C) @ T(Wo).double().T + T(bo).double()).float()


def bitlinear_parts(X, S):
    """absmax int8 activations (round half to even), int32 products with the +-1 weights."""
    x = T(X)
    gamma = torch.full((X.shape[0], 1), 127.0) / x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-5)
    xq = torch.round(x * gamma).clamp(-128, 127).to(torch.int32)
    return xq @ T(S).to(torch.int32).T, gamma[:, 0]


def bitlinear_ref(X, S, beta, b):
    acc, gamma = bitlinear_parts(X, S)
    return acc.to(torch.float32) * T(beta) / gamma[:, None] + T(b)


def batch_norm(x, g, be, mu, var):
    return F.batch_norm(T(x), T(mu), T(var), T(g), T(be), training=False, eps=1e-5)


def _signs(rng, n, k):
    return np.where(rng.standard_normal((n, k)) >= 0, 1, -1).astype(np.int8)


CASES = {
    "transpose": Case(lambda: K.transpose(float32, (2, 3, 4), (2, 0, 1)), lambda r: (randn(r, 2, 3, 4),),
                      lambda x: T(x).permute(2, 0, 1)),
    "reshape": Case(lambda: K.reshape(float32, (2, 3, 4), (6, 4)), lambda r: (randn(r, 2, 3, 4),),
                    lambda x: T(x).reshape(6, 4)),
    "concat": Case(lambda: K.concat(float32, (2, 3, 4), (2, 2, 4), 1), lambda r: (randn(r, 2, 3, 4), randn(r, 2, 2, 4)),
                   lambda a, b: torch.cat([T(a), T(b)], 1)),
    "repeat_cls": Case(lambda: K.repeat_cls(float32, 3, 4), lambda r: (randn(r, 1, 1, 4),),
                       lambda c: T(c).expand(3, -1, -1)),
    "slice": Case(lambda: K.slice(float32, (2, 5, 3), 1, 1, 5, 2), lambda r: (randn(r, 2, 5, 3),),
                  lambda x: T(x)[:, 1:5:2]),
    "select": Case(lambda: K.select(float32, (2, 3, 4), 1, 2), lambda r: (randn(r, 2, 3, 4),),
                   lambda x: torch.select(T(x), 1, 2)),
    "add": Case(lambda: K.add(float32, (2, 3), (3,)), lambda r: (randn(r, 2, 3), randn(r, 3)),
                lambda a, b: T(a) + T(b)),
    "sub": Case(lambda: K.sub(float32, (2, 3), (2, 1)), lambda r: (randn(r, 2, 3), randn(r, 2, 1)),
                lambda a, b: T(a) - T(b)),
    "mul": Case(lambda: K.mul(float32, (3,), (2, 3)), lambda r: (randn(r, 3), randn(r, 2, 3)),
                lambda a, b: T(a) * T(b)),
    "div": Case(lambda: K.div(float32, (2, 3), (3,)), lambda r: (randn(r, 2, 3), uniform(r, 0.5, 2.0, 3)),
                lambda a, b: T(a) / T(b)),
    "relu2d": Case(lambda: K.relu2d(float32, 2, 3), lambda r: (randn(r, 2, 3),), lambda x: F.relu(T(x))),
    "relu3d": Case(lambda: K.relu3d(float32, 2, 3, 4), lambda r: (randn(r, 2, 3, 4),), lambda x: F.relu(T(x))),
    "relu": Case(lambda: K.relu(float32, (5,)), lambda r: (randn(r, 5),), lambda x: F.relu(T(x))),
    "silu": Case(lambda: K.silu(float32, (2, 5)), lambda r: (randn(r, 2, 5, scale=3.0),), lambda x: F.silu(T(x))),
    "gelu": Case(lambda: K.gelu(float32, (2, 5)), lambda r: (randn(r, 2, 5, scale=2.0),), lambda x: F.gelu(T(x))),
    "softmax": Case(lambda: K.softmax(float32, (3, 4)), lambda r: (randn(r, 3, 4, scale=3.0),),
                    lambda x: F.softmax(T(x), dim=-1)),
    "softmax_lanes": Case(lambda: K.softmax_lanes(float32, 8, 3), lambda r: (randn(r, 8, 3, scale=3.0),),
                          lambda x: F.softmax(T(x), dim=-1)),
    "attention_lanes": Case(lambda: K.attention_lanes(float32, 8, 3, 2, 4, 2, 0.5),
                            lambda r: (randn(r, 8, 3, 4, scale=2.0), randn(r, 8, 2, 4, scale=2.0), randn(r, 8, 2, 4)),
                            lambda q, k, v: heads_attention(q, k, v, 2, 0.5)),
    "log_softmax": Case(lambda: K.log_softmax(float32, (3, 4), dim=0), lambda r: (randn(r, 3, 4, scale=3.0),),
                        lambda x: F.log_softmax(T(x), dim=0)),
    "attention": Case(lambda: K.attention(float32, 2, 3, 4, 2),
                      lambda r: (randn(r, 2, 3, 4), *(uniform(r, -0.5, 0.5, 4, 4) for _ in range(4)), randn(r, 4)),
                      lambda X, Wq, Wk, Wv, Wo, bo: sdpa_attention(X, Wq, Wk, Wv, Wo, bo, 2)),
    "linformer_attention": Case(lambda: K.linformer_attention(float32, 1, 4, 4, 2, 2),
                                lambda r: (randn(r, 1, 4, 4), *(uniform(r, -0.5, 0.5, 4, 4) for _ in range(3)),
                                           uniform(r, -0.5, 0.5, 2, 4), uniform(r, -0.5, 0.5, 2, 4),
                                           uniform(r, -0.5, 0.5, 4, 4), randn(r, 4)),
                                lambda *a: linformer(*a, H=2)),
    "bitlinear_int": Case(lambda: K.bitlinear_int(float32, 3, 6, 4), lambda r: (randn(r, 3, 6), _signs(r, 4, 6)),
                          bitlinear_parts),
    "bitlinear": Case(lambda: K.bitlinear(float32, 3, 6, 4),
                      lambda r: (randn(r, 3, 6), _signs(r, 4, 6), uniform(r, 0.2, 1.0, 1), randn(r, 4)),
                      bitlinear_ref),
    "bitlinear_core": Case(lambda: K.bitlinear_core(3, 6, 4),
                           lambda r: (r.integers(-128, 128, (3, 6)).astype(np.int8), r.random((4, 6)) < 0.5),
                           lambda xq, p: T(xq).to(torch.int32) @ (2 * T(p).to(torch.int32) - 1).T),
    "linear_int8": Case(lambda: K.linear_int8(3, 6, 4),
                        lambda r: (r.integers(-128, 128, (3, 6)).astype(np.int8),
                                   r.integers(-128, 128, (4, 6)).astype(np.int8)),
                        lambda x, w: T(x).to(torch.int32) @ T(w).to(torch.int32).T),
    "broadcast_to": Case(lambda: K.broadcast_to(float32, (3, 1), (2, 3, 4)), lambda r: (randn(r, 3, 1),),
                         lambda x: T(x).expand(2, 3, 4)),
    "reduce_sum": Case(lambda: K.reduce_sum(float32, (2, 3, 4), 1), lambda r: (randn(r, 2, 3, 4),),
                       lambda x: T(x).sum(1)),
    "linear2d": Case(lambda: K.linear2d(float32, 2, 3, 4), lambda r: (randn(r, 2, 3), randn(r, 4, 3), randn(r, 4)),
                     lambda x, w, b: F.linear(T(x), T(w), T(b))),
    "linear3d": Case(lambda: K.linear3d(float32, 2, 3, 4, 5, bias=False), lambda r: (randn(r, 2, 3, 4), randn(r, 5, 4)),
                     lambda x, w: F.linear(T(x), T(w))),
    "matmul": Case(lambda: K.matmul(float32, 2, 3, 4), lambda r: (randn(r, 2, 3), randn(r, 3, 4)),
                   lambda a, b: T(a) @ T(b)),
    "bmm": Case(lambda: K.bmm(float32, 2, 2, 3, 4), lambda r: (randn(r, 2, 2, 3), randn(r, 2, 3, 4)),
                lambda a, b: torch.bmm(T(a), T(b))),
    "batchnorm1d_2d": Case(lambda: K.batchnorm1d_2d(float32, 2, 3),
                           lambda r: (randn(r, 2, 3), randn(r, 3), randn(r, 3), randn(r, 3), uniform(r, 0.2, 2, 3)),
                           batch_norm),
    "batchnorm1d_3d": Case(lambda: K.batchnorm1d_3d(float32, 2, 3, 4),
                           lambda r: (randn(r, 2, 3, 4), randn(r, 3), randn(r, 3), randn(r, 3), uniform(r, 0.2, 2, 3)),
                           batch_norm),
    "batchnorm_channels_last": Case(
        lambda: K.batchnorm_channels_last(float32, 2, 3, 4),
        lambda r: (randn(r, 2, 3, 4), randn(r, 4), randn(r, 4), randn(r, 4), uniform(r, 0.2, 2, 4)),
        lambda x, *p: batch_norm(np.ascontiguousarray(x.transpose(0, 2, 1)), *p).transpose(1, 2)),
    "layernorm": Case(lambda: K.layernorm(float32, (2, 5)), lambda r: (randn(r, 2, 5, scale=2.0) + 3.0, randn(r, 5),
                                                                       randn(r, 5)),
                      lambda x, g, b: F.layer_norm(T(x), (5,), T(g), T(b), eps=1e-5)),
    "mean_pool": Case(lambda: K.mean_pool(float32, (2, 3, 4), 1), lambda r: (randn(r, 2, 3, 4),),
                      lambda x: T(x).mean(1)),
    # The frontend's kernels for other torch ops (kernels/nn/pointwise, reduction, gather, conv).
    "unary": Case(lambda: K.unary(float32, (2, 5), "elu", 0.7, 1.2, 1.0), lambda r: (randn(r, 2, 5, scale=2.0),),
                  lambda x: 1.2 * F.elu(T(x), 0.7)),
    "binary": Case(lambda: K.binary(float32, (2, 3), (3,), "atan2"), lambda r: (randn(r, 2, 3), randn(r, 3)),
                   lambda y, x: torch.atan2(T(y), T(x))),
    "where": Case(lambda: K.where(float32, (2, 1), (2, 3), ()),
                  lambda r: (np.array([[1.0], [0.0]], np.float32), randn(r, 2, 3), np.array(-np.inf, np.float32)),
                  lambda c, a, b: torch.where(T(c) != 0, T(a), T(b))),
    "reduce_op": Case(lambda: K.reduce_op(float32, (2, 5), 1, "argmax"),
                      lambda r: (np.array([[1, 3, 3, 0, 2], [-1, -2, -1, -5, -1]], np.float32),),
                      lambda x: T(x).argmax(1).float()),
    "variance": Case(lambda: K.variance(float32, (2, 4), 1, 1.0),
                     lambda r: (np.stack([randn(r, 4), np.full(4, 3.0, np.float32)]),), lambda x: T(x).var(1)),
    "topk": Case(lambda: K.topk(float32, (2, 5), 3), lambda r: (np.array([[1, 4, 4, 0, 2], [5, 1, 2, 3, 4]],
                                                                          np.float32),),
                 lambda x: tuple(t[:, :3].float() for t in torch.sort(T(x), dim=1, descending=True, stable=True))),
    "gather": Case(lambda: K.gather(float32, (2, 4), (2, 3), 1),
                   lambda r: (randn(r, 2, 4), np.array([[3, 0, -1], [1, 1, 2]], np.float32)),
                   lambda x, i: torch.gather(T(x), 1, T(i).long() % 4)),
    "index_select_nd": Case(lambda: K.index_select_nd(float32, (2, 4, 3), (2, 2), 1),
                            lambda r: (randn(r, 2, 4, 3), np.array([[3, 0], [2, 2]], np.float32)),
                            lambda x, i: T(x)[:, T(i).long()]),
    "tile": Case(lambda: K.tile(float32, (1, 2, 3), (2, 1, 2)), lambda r: (randn(r, 1, 2, 3),),
                 lambda x: T(x).repeat(2, 1, 2)),
    "conv2d": Case(lambda: K.conv2d(float32, 1, 2, 4, 5, 3, 2, 3, (1, 2), (1, 1)),
                   lambda r: (randn(r, 1, 2, 4, 5), randn(r, 3, 2, 2, 3), randn(r, 3)),
                   lambda x, w, b: F.conv2d(T(x), T(w), T(b), stride=(1, 2), padding=(1, 1))),
}


def as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


def to_numpy(x):
    return x.detach().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def test_every_kernel_has_a_case():
    missing = sorted(set(KERNELS) - set(CASES))
    assert not missing, f"kernels without a csim case in hwtests/test_csim.py CASES: {missing}"
    stale = sorted(set(CASES) - set(KERNELS))
    assert not stale, f"CASES entries for kernels that are not registered: {stale}"


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_library_kernel_csim_matches_llvm_and_torch(name):
    if name not in CASES:
        pytest.fail(f"kernel '{name}' has no entry in CASES (add a small instance and a torch reference)")
    case = CASES[name]
    s = allo_ext.customize(case.make())
    apply_schedules(s, "default")
    args = case.args(np.random.default_rng(sorted(KERNELS).index(name)))
    got = as_tuple(s.build(target="vitis_hls", mode="csim")(*args))
    cpu = as_tuple(s.build(target="llvm")(*args))
    want = tuple(to_numpy(w) for w in as_tuple(case.ref(*args)))
    assert len(got) == len(cpu) == len(want)
    for g, c, w in zip(got, cpu, want):
        assert g.dtype == c.dtype and g.shape == c.shape == w.shape
        np.testing.assert_allclose(g, c, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(g, w.astype(g.dtype), rtol=1e-5, atol=1e-5)


def test_every_library_kernel_compiles_cleanly(tmp_path):
    """-Wall -Wextra -Werror for both interfaces with the latency profile's pragmas. -Wno-unknown-pragmas:
    g++ knows no '#pragma HLS' (and g++ < 13 ignores '#pragma GCC diagnostic' for it, GCC bug 53431)."""
    files = []
    for name in sorted(set(KERNELS) & set(CASES)):
        for itf in ("vitis", "ip"):
            s = allo_ext.customize(CASES[name].make())
            apply_schedules(s, "latency")
            d = tmp_path / f"{name}_{itf}"
            s.build(target="vhls", interface=itf).write(d)
            files.append(str(d / "kernel.cpp"))
    cmd = [csim.find_compiler(), "-fsyntax-only", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas",
           "-isystem", str(csim.ap_types_dir()), *files]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr[:4000]


@given(seed=st.integers(0, 2**32 - 1), scale=st.sampled_from([0.1, 1.0, 30.0]))
def test_softmax_and_layernorm_on_drawn_values(seed, scale):
    """Same instances (cached builds), values drawn: numerics of exp/sqrt paths agree with torch."""
    rng = np.random.default_rng(seed)
    x = randn(rng, 3, 4, scale=scale)
    sm = allo_ext.customize(K.log_softmax(float32, (3, 4), dim=-1)).build(target="vitis_hls", mode="csim")
    np.testing.assert_allclose(sm(x), F.log_softmax(T(x), dim=-1).numpy(), rtol=1e-5, atol=1e-5)
    g, b = randn(rng, 4), randn(rng, 4)
    ln = allo_ext.customize(K.layernorm(float32, (3, 4))).build(target="vitis_hls", mode="csim")
    np.testing.assert_allclose(ln(x, g, b), F.layer_norm(T(x), (4,), T(g), T(b)).numpy(), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------- calling convention
def _lin(X: float32[2, 3], W: float32[4, 3], b: float32[4]) -> float32[2, 4]:
    Y: float32[2, 4]
    for i, j in grid(2, 4, name="mm"):
        acc: float32 = b[j]
        for k in range(3):
            acc += X[i, k] * W[j, k]
        Y[i, j] = acc
    return Y


@pytest.fixture(scope="module")
def lin_csim():
    return allo_ext.customize(_lin).build(target="vitis_hls", mode="csim")


def test_batched_inputs_run_the_kernel_per_item(lin_csim):
    rng = np.random.default_rng(3)
    x, w, b = randn(rng, 5, 2, 3), randn(rng, 4, 3), randn(rng, 4)
    y = lin_csim(x, w, b)  # w and b have the kernel's shapes: shared by every item
    assert y.shape == (5, 2, 4)
    np.testing.assert_allclose(y, F.linear(T(x), T(w), T(b)).numpy(), rtol=1e-5, atol=1e-5)
    ws = np.stack([w * (k + 1) for k in range(5)])  # now the weights are batched too
    y2 = lin_csim(x, ws, b)
    for k in range(5):
        np.testing.assert_array_equal(y2[k], lin_csim(x[k], ws[k], b))
    assert lin_csim(x[0], w, b).shape == (2, 4)


def _per_jet(X: float32[1, 3, 2]) -> float32[1, 2]:
    Y: float32[1, 2]
    for j in range(2):
        acc: float32 = 0.0
        for p in range(3):
            acc += X[0, p, j]
        Y[0, j] = acc
    return Y


def test_a_batch_one_kernel_takes_the_batch_in_place_of_its_leading_one():
    f = allo_ext.customize(_per_jet).build(target="vitis_hls", mode="csim")
    x = np.random.default_rng(5).standard_normal((6, 3, 2)).astype(np.float32)
    np.testing.assert_allclose(f(x), x.sum(1), rtol=1e-6, atol=1e-6)  # (6, 3, 2) -> (6, 2)
    assert f(x[None, :1]).shape == (1, 1, 2) and f(x[:1]).shape == (1, 2)
    with pytest.raises(CallError, match=r"expected shape \(1, 3, 2\) or \(B, 1, 3, 2\) for a batch, or \(B, 3, 2\) in "
                                        r"place of the leading 1, got \(6, 2, 3\)"):
        f(np.ascontiguousarray(x.transpose(0, 2, 1)))


def test_call_errors_name_expected_and_given(lin_csim):
    rng = np.random.default_rng(4)
    x, w, b = randn(rng, 2, 3), randn(rng, 4, 3), randn(rng, 4)
    with pytest.raises(CallError, match=r"takes 3 argument\(s\).*got 2"):
        lin_csim(x, w)
    with pytest.raises(CallError, match=r"argument 'X'.*expected dtype float32, got float64"):
        lin_csim(x.astype(np.float64), w, b)
    with pytest.raises(CallError, match=r"argument 'W'.*expected shape \(4, 3\) or \(B, 4, 3\).*got \(3, 4\)"):
        lin_csim(x, w.T.copy(), b)
    with pytest.raises(CallError, match="batch of 2 but an earlier argument has 3"):
        lin_csim(np.stack([x] * 3), np.stack([w] * 2), b)


def _partial(X: float32[4]) -> float32[4]:
    Z: float32[4]
    for i in range(3):
        Z[i] = X[i]
    return Z


def test_unwritten_output_elements_raise():
    f = allo_ext.customize(_partial).build(target="vitis_hls", mode="csim")
    with pytest.raises(AlloError, match=r"left 1 element\(s\) of output 0 unwritten \(first at index \(3,\)\)"):
        f(np.ones(4, np.float32))
    with pytest.raises(AlloError, match=r"left 2 element\(s\).*first at index \(0, 3\)"):
        f(np.ones((2, 4), np.float32))


def _partial_int(X: int32[4]) -> int32[4]:
    Z: int32[4]
    for i in range(3):
        Z[i] = X[i]
    return Z


def test_unwritten_integer_output_elements_raise():
    """Integers carry no NaN: the second fill value is what exposes the unwritten element."""
    f = allo_ext.customize(_partial_int).build(target="vitis_hls", mode="csim")
    with pytest.raises(AlloError, match=r"left 1 element\(s\) of output 0 unwritten \(first at index \(3,\)\)"):
        f(np.array([-2**31, 5, -2**31, 7], np.int32))  # written elements may equal a fill value


def _wrap8(A: int8[6], B: int8[6]) -> int8[6]:
    Z: int8[6]
    for i in range(6):
        p: int8 = A[i] * B[i]
        Z[i] = p // 3 if A[i] * B[i] > 10 else max(A[i] - B[i], int8(-100)) + (A[i] << 2)
    return Z


def _unsigned(X: uint8[6], Y: uint8[6]) -> uint8[6]:
    Z: uint8[6]
    for i in range(6):
        Z[i] = X[i] // 3 if X[i] > Y[i] else X[i] * Y[i] + (X[i] >> 1)
    return Z


def test_integer_wraparound_and_unsigned_ops_match_llvm_and_numpy():
    a = np.array([100, -128, 7, -3, 127, 0], np.int8)
    b = np.array([3, 2, -128, -5, 127, 1], np.int8)
    s = allo_ext.customize(_wrap8)
    got = s.build(target="vitis_hls", mode="csim")(a, b)
    np.testing.assert_array_equal(got, s.build(target="llvm")(a, b))
    with np.errstate(over="ignore"):
        p = (a * b).astype(np.int8)  # int8 products wrap
        want = np.where(p > 10, p // 3, np.maximum(a - b, np.int8(-100)) + (a << 2)).astype(np.int8)
    np.testing.assert_array_equal(got, want)

    x = np.array([250, 3, 200, 128, 0, 255], np.uint8)
    y = np.array([249, 4, 201, 1, 0, 2], np.uint8)
    s = allo_ext.customize(_unsigned)
    got = s.build(target="vitis_hls", mode="csim")(x, y)
    np.testing.assert_array_equal(got, s.build(target="llvm")(x, y))
    with np.errstate(over="ignore"):
        want = np.where(x > y, x // 3, x * y + (x >> 1)).astype(np.uint8)
    np.testing.assert_array_equal(got, want)


Q = Fixed(12, 8)  # ap_fixed<12, 4>: 8 fraction bits


def _fixed_copy(X: Q[4], Y: UFixed(10, 8)[3], s: Q) -> (Q[4], UFixed(10, 8)[3]):
    Z: Q[4]
    U: UFixed(10, 8)[3]
    for i in range(3):
        Z[i] = X[i]
    Z[3] = s
    for i in range(3):
        U[i] = Y[i]
    return Z, U


def test_fixed_point_arrays_travel_as_ap_fixed_values():
    """Fixed-point ports are ap_fixed in C++ and float64 in numpy: quantised (TRN, WRAP) on the way in."""
    s = allo_ext.customize(_fixed_copy)
    code = s.build(target="vhls").code
    assert ("const ap_fixed<12, 4> X[4], const ap_ufixed<10, 2> Y[3], ap_fixed<12, 4> s, ap_fixed<12, 4> Z[4], "
            "ap_ufixed<10, 2> U[3]") in code
    x = np.array([-8.0, -1 / 256, 0.01, 7.999])  # 0.01 and 7.999 truncate to multiples of 1/256
    y = np.array([0.0, 2.0 + 1 / 256, 3.999])
    z, u = s.build(target="vitis_hls", mode="csim")(x, y, 9.0)  # 9.0 wraps to 9 - 16 = -7
    np.testing.assert_array_equal(z, [-8.0, -1 / 256, 2 / 256, -7.0])
    np.testing.assert_array_equal(u, [0.0, 2.0 + 1 / 256, 3 + 255 / 256])
    cz, cu = s.build(target="llvm")(x, y, 9.0)
    np.testing.assert_array_equal(z, cz)
    np.testing.assert_array_equal(u, cu)


def _inplace(X: float32[3]) -> float32[3]:
    for i in range(3):
        X[i] = X[i] * 2.0
    Z: float32[3]
    for i in range(3):
        Z[i] = X[i] + 1.0
    return Z


def test_a_kernel_may_write_its_input():
    s = allo_ext.customize(_inplace)
    assert 'extern "C" void inplace(float X[3], float Z[3]) {' in s.build(target="vhls").code  # no const
    x = np.array([1.0, -2.0, 0.5], np.float32)
    np.testing.assert_array_equal(s.build(target="vitis_hls", mode="csim")(x.copy()), [3.0, -3.0, 2.0])


def _total(A: float32[3], k: float32) -> float32:
    acc: float32 = 0.0
    for i in range(3):
        acc += A[i] * k
    return acc


def test_scalar_argument_and_result():
    f = allo_ext.customize(_total).build(target="vitis_hls", mode="csim")
    assert f(np.array([1.0, 2.0, 3.5], np.float32), 2.0) == np.float32(13.0)
    np.testing.assert_array_equal(f(np.array([[1, 2, 3], [0, 0, 1]], np.float32), -1.0), [-6.0, -1.0])


# ---------------------------------------------------------------------- build cache and errors
def test_second_build_hits_the_cache_without_running_gxx(tmp_path, monkeypatch):
    monkeypatch.setenv("ALLO_EXT_CACHE", str(tmp_path))
    s = allo_ext.customize(K.relu(float32, (3,)))
    calls = []
    real = csim._compile
    monkeypatch.setattr(csim, "_compile", lambda cmd, cwd: calls.append(cmd) or real(cmd, cwd))
    first = s.build(target="vitis_hls", mode="csim")
    assert len(calls) == 1 and not first.cache_hit
    assert first.library.is_file() and str(first.library).startswith(str(tmp_path / "csim"))
    files = {p.name for p in first.directory.iterdir()}
    assert files >= {"kernel.cpp", "kernel.h", "csim_main.cpp", first.library.name}

    def no_compiler(cmd, cwd):
        raise AssertionError("g++ ran on a cache hit")

    monkeypatch.setattr(csim, "_compile", no_compiler)
    again = allo_ext.customize(K.relu(float32, (3,))).build(target="vitis_hls", mode="csim")
    assert again.cache_hit and again.library == first.library
    np.testing.assert_array_equal(again(np.array([-1, 0, 2], np.float32)), [0, 0, 2])
    # a different schedule is different code: a new build
    s2 = allo_ext.customize(K.relu(float32, (3,)))
    s2.unroll(next(iter(s2.get_loops())), 0)
    with pytest.raises(AssertionError, match="g\\+\\+ ran"):
        s2.build(target="vitis_hls", mode="csim")


def test_a_project_directory_is_rebuilt_for_new_code(tmp_path):
    x = np.array([-1.0, 0.5, 2.0], np.float32)
    relu = allo_ext.customize(K.relu(float32, (3,))).build(target="vitis_hls", mode="csim", project=tmp_path / "p")
    np.testing.assert_array_equal(relu(x), [0.0, 0.5, 2.0])
    silu = allo_ext.customize(K.silu(float32, (3,))).build(target="vitis_hls", mode="csim", project=tmp_path / "p")
    assert not silu.cache_hit and silu.directory == relu.directory
    np.testing.assert_allclose(silu(x), F.silu(T(x)).numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(relu(x), [0.0, 0.5, 2.0])  # the first library stays loaded and valid
    assert sorted(p.name for p in (tmp_path / "p").glob("libkernel_*.so")) == [silu.library.name]


def test_missing_gxx_is_reported_with_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no g++
    s = allo_ext.customize(K.relu(float32, (3,)))
    with pytest.raises(ToolNotFoundError, match=r"'g\+\+' not found on PATH.*apt-get install g\+\+"):
        s.build(target="vitis_hls", mode="csim")


def test_missing_hls4ml_is_reported_with_the_install_command(monkeypatch):
    real = csim.importlib.util.find_spec
    monkeypatch.setattr(csim.importlib.util, "find_spec", lambda name, *a: None if name == "hls4ml" else real(name, *a))
    with pytest.raises(ToolNotFoundError, match=r"pip install hls4ml==1\.3\.0"):
        allo_ext.customize(K.relu(float32, (3,))).build(target="vitis_hls", mode="csim")


def _twice(X: float32[4]) -> float32[4]:
    Z: float32[4]
    for i in range(4):
        Z[i] = X[i] * 2.0
    return Z


def _outer(X: float32[4]) -> float32[4]:
    Y = _twice(X)
    return Y


def test_compile_error_shows_the_line_and_the_kernel_it_came_from(tmp_path):
    hls = allo_ext.customize(_outer).build(target="vhls")
    # Break one line of the callee without moving any line, as an emitter bug would.
    bad = hls.code.replace("Z[i] = X[i] * 2.0f;", "Z[i] = X[i] * undefined_thing;")
    assert bad != hls.code
    hls.code = bad
    with pytest.raises(CSimCompileError) as e:
        CSimModule(hls, cache_dir=tmp_path / "build")
    msg = str(e.value)
    assert "kernel.cpp:" in msg and "'undefined_thing' was not declared" in msg
    assert "Z[i] = X[i] * undefined_thing;" in msg
    # the C++ name drops the leading underscore (reserved in C++); the kernel and its source line are named
    assert "in C++ function 'twice' (kernel '_twice' defined at" in msg
    line = next(n for n, text in enumerate(open(__file__), 1) if "Z[i] = X[i] * 2.0" in text)
    assert f"this line comes from {__file__}:{line})" in msg
    assert "full log:" in msg and os.path.isfile(msg.split("full log: ")[1].split(";")[0])
