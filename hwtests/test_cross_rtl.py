"""Cross-backend regression (marked rtl): integer kernels on every backend of ``--backends``.

Each test builds one library kernel (or a chain of them as ONE design), runs it on every backend
(default llvm, csim, rtl; add sw_emu/hw_emu/hw with Vitis), requires the outputs to be identical
bit for bit, and compares them with torch. Integer kernels have a quantisation bound of zero: the
reference is torch in int64, wrapped to the kernel's type (two's complement, as the hardware does).

Shapes stay small (each new shape is a new RTL design: CIRCT + Icarus compile, 0.5-3 s);
hypothesis draws the element types and the values, extremes included.
"""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import allo_ext
from allo_ext import int8, int16, int32
from allo_ext.kernels import nn as K
from crossbackend import assert_identical, build, run_all

pytestmark = pytest.mark.rtl

INT_TYPES = {"int8": int8, "int16": int16, "int32": int32}


def arrays(dtype, shape, lo=None, hi=None):
    info = np.iinfo(dtype)
    lo = info.min if lo is None else max(lo, info.min)
    hi = info.max if hi is None else min(hi, info.max)
    n = int(np.prod(shape))
    return st.lists(st.integers(lo, hi), min_size=n, max_size=n).map(lambda v: np.array(v, dtype=dtype).reshape(shape))


def wrap(t: torch.Tensor, dtype) -> np.ndarray:
    """An int64 torch result reduced modulo 2**bits into ``dtype``, as two's complement hardware does."""
    bits = np.dtype(dtype).itemsize * 8
    v = t.to(torch.int64).numpy() & ((1 << bits) - 1)
    return np.where(v >= 1 << (bits - 1), v - (1 << bits), v).astype(dtype)


def check(results: dict, want: np.ndarray):
    assert_identical(results)
    for b, outs in results.items():
        np.testing.assert_array_equal(outs[0], want, err_msg=f"{b} against torch")


@settings(max_examples=6)
@given(data=st.data(), tname=st.sampled_from(sorted(INT_TYPES)), shape=st.sampled_from([(1, 3, 2), (2, 4, 3)]))
def test_linear(data, tname, shape, backends, tmp_path_factory):
    T = INT_TYPES[tname]
    M, Kd, N = shape
    X = data.draw(arrays(T.numpy, (M, Kd)))
    W = data.draw(arrays(T.numpy, (N, Kd)))
    b = data.draw(arrays(T.numpy, (N,)))
    s = allo_ext.customize(K.linear2d(T, M, Kd, N))
    res = run_all(s, backends, (X, W, b), tmp_path_factory.mktemp("lin"))
    want = wrap(torch.from_numpy(X).long() @ torch.from_numpy(W).long().T + torch.from_numpy(b).long(), T.numpy)
    check(res, want)


@settings(max_examples=4)
@given(data=st.data(), tname=st.sampled_from(sorted(INT_TYPES)))
def test_matmul_and_bmm(data, tname, backends, tmp_path_factory):
    T = INT_TYPES[tname]
    A = data.draw(arrays(T.numpy, (2, 2, 3), -1000, 1000))
    B = data.draw(arrays(T.numpy, (2, 3, 2), -1000, 1000))
    d = tmp_path_factory.mktemp("mm")
    res = run_all(allo_ext.customize(K.bmm(T, 2, 2, 3, 2)), backends, (A, B), d)
    check(res, wrap(torch.bmm(torch.from_numpy(A).long(), torch.from_numpy(B).long()), T.numpy))
    res = run_all(allo_ext.customize(K.matmul(T, 2, 3, 2)), backends, (A[0], B[0]), d)
    check(res, wrap(torch.from_numpy(A[0]).long() @ torch.from_numpy(B[0]).long(), T.numpy))


@settings(max_examples=4)
@given(data=st.data(), tname=st.sampled_from(sorted(INT_TYPES)))
def test_relu(data, tname, backends, tmp_path_factory):
    T = INT_TYPES[tname]
    info = np.iinfo(T.numpy)
    X = data.draw(arrays(T.numpy, (2, 2, 3)))
    X.flat[:2] = [info.min, info.max]  # the extremes every time
    res = run_all(allo_ext.customize(K.relu3d(T, 2, 2, 3)), backends, (X,), tmp_path_factory.mktemp("relu"))
    check(res, torch.relu(torch.from_numpy(X)).numpy())


@settings(max_examples=3)
@given(data=st.data(), tname=st.sampled_from(sorted(INT_TYPES)))
def test_concat_slice_select(data, tname, backends, tmp_path_factory):
    T = INT_TYPES[tname]
    A = data.draw(arrays(T.numpy, (1, 2, 3)))
    B = data.draw(arrays(T.numpy, (1, 1, 3)))
    d = tmp_path_factory.mktemp("shape")
    tA, tB = torch.from_numpy(A), torch.from_numpy(B)
    check(run_all(allo_ext.customize(K.concat(T, (1, 2, 3), (1, 1, 3), 1)), backends, (A, B), d),
          torch.cat([tA, tB], 1).numpy())
    check(run_all(allo_ext.customize(K.slice(T, (1, 2, 3), 2, 1, 3)), backends, (A,), d), tA[:, :, 1:3].numpy())
    check(run_all(allo_ext.customize(K.select(T, (1, 2, 3), 1, 0)), backends, (A,), d), tA[:, 0].numpy())


@settings(max_examples=4)
@given(data=st.data())
def test_bitlinear_core_equals_the_int8_linear(data, backends, tmp_path_factory):
    """The multiplier-free core and the int8 x int8 -> int32 linear give Xq @ S.T on every backend."""
    M, Kd, N = 2, 6, 3
    Xq = data.draw(arrays(np.int8, (M, Kd)))
    S = data.draw(st.lists(st.sampled_from([-1, 1]), min_size=N * Kd, max_size=N * Kd)).copy()
    S = np.array(S, dtype=np.int8).reshape(N, Kd)
    want = (torch.from_numpy(Xq).int() @ torch.from_numpy(S).int().T).numpy()
    d = tmp_path_factory.mktemp("bitlinear")
    check(run_all(allo_ext.customize(K.bitlinear_core(M, Kd, N)), backends, (Xq, K.bitlinear_sign_bits(S)), d), want)
    check(run_all(allo_ext.customize(K.linear_int8(M, Kd, N)), backends, (Xq, S), d), want)


# ---------------------------------------------------------------------- chains as one design
def mlp_chain(T, M, K0, K1, K2, W1, b1, W2, b2):
    lin1, act, lin2 = K.linear2d(T, M, K0, K1), K.relu2d(T, M, K1), K.linear2d(T, M, K1, K2)

    def mlp(X: T[M, K0]) -> T[M, K2]:
        return lin2(act(lin1(X, W1, b1)), W2, b2)

    return mlp


@settings(max_examples=3)
@given(data=st.data(), tname=st.sampled_from(["int16", "int32"]))
def test_chain_linear_relu_linear(data, tname, backends, tmp_path_factory):
    """linear -> relu -> linear with constant weights (ROM ports in RTL), one design on every backend."""
    T = INT_TYPES[tname]
    M, K0, K1, K2 = 2, 3, 4, 2
    W1, b1 = data.draw(arrays(T.numpy, (K1, K0), -50, 50)), data.draw(arrays(T.numpy, (K1,), -50, 50))
    W2, b2 = data.draw(arrays(T.numpy, (K2, K1), -50, 50)), data.draw(arrays(T.numpy, (K2,), -50, 50))
    X = data.draw(arrays(T.numpy, (M, K0), -100, 100))
    s = allo_ext.customize(mlp_chain(T, M, K0, K1, K2, W1, b1, W2, b2))
    res = run_all(s, backends, (X,), tmp_path_factory.mktemp("chain"))
    L = lambda a: torch.from_numpy(a).long()  # noqa: E731
    h = torch.relu(torch.from_numpy(wrap(L(X) @ L(W1).T + L(b1), T.numpy)).long())
    check(res, wrap(h @ L(W2).T + L(b2), T.numpy))


def ffn_block(T, L, C):
    """The feed-forward half of a JetFormer block, BatchNorms folded into the linears:
    ``x + W2 relu(W1 relu(x) + b1) + b2``, C -> 2C -> C, as one design."""
    r1, l1, r2, l2 = K.relu2d(T, L, C), K.linear2d(T, L, C, 2 * C), K.relu2d(T, L, 2 * C), K.linear2d(T, L, 2 * C, C)
    res = K.add(T, (L, C), (L, C))

    def ffn(X: T[L, C], W1: T[2 * C, C], b1: T[2 * C], W2: T[C, 2 * C], b2: T[C]) -> T[L, C]:
        return res(X, l2(r2(l1(r1(X), W1, b1)), W2, b2))

    return ffn


@settings(max_examples=2)
@given(data=st.data())
def test_jetformer_ffn_block(data, backends, tmp_path_factory):
    """A JetFormer-tiny FFN block (9 tokens, C=8 -> 16 -> 8, residual) in int16 as one design; the
    input is read twice (residual), which stage A must handle (one port per memory argument)."""
    T, L, C = int16, 9, 8
    X = data.draw(arrays(np.int16, (L, C)))
    W1, b1 = data.draw(arrays(np.int16, (2 * C, C), -300, 300)), data.draw(arrays(np.int16, (2 * C,)))
    W2, b2 = data.draw(arrays(np.int16, (C, 2 * C), -300, 300)), data.draw(arrays(np.int16, (C,)))
    res = run_all(allo_ext.customize(ffn_block(T, L, C)), backends, (X, W1, b1, W2, b2), tmp_path_factory.mktemp("ffn"))
    L_ = lambda a: torch.from_numpy(np.asarray(a)).long()  # noqa: E731
    h = torch.relu(L_(wrap(L_(np.maximum(X, 0)) @ L_(W1).T + L_(b1), np.int16)))
    y = wrap(h @ L_(W2).T + L_(b2), np.int16)
    check(res, wrap(L_(X) + L_(y), np.int16))


@pytest.mark.slow
def test_verilator_agrees_with_icarus(tmp_path):
    """The same design in both simulators: same outputs, same cycle counts (one Verilator build, 10-60 s)."""
    rng = np.random.default_rng(7)
    W1, b1 = rng.integers(-20, 20, (4, 3)).astype(np.int16), rng.integers(-20, 20, 4).astype(np.int16)
    W2, b2 = rng.integers(-20, 20, (2, 4)).astype(np.int16), rng.integers(-20, 20, 2).astype(np.int16)
    s = allo_ext.customize(mlp_chain(int16, 2, 3, 4, 2, W1, b1, W2, b2))
    X = rng.integers(-100, 100, (3, 2, 3)).astype(np.int16)
    ica = build(s, "rtl", tmp_path)
    ver = build(s, "rtl", tmp_path, simulator="verilator")
    np.testing.assert_array_equal(ver(X), ica(X))
    assert ver.cycles_per_item == ica.cycles_per_item and ica.cycles > 0


# ---------------------------------------------------------------------- one JetFormer-tiny block
@pytest.mark.slow
def test_jetformer_tiny_block_fixed(backends, tmp_path):
    """One whole JetFormer-tiny block (BatchNorm -> multi-head attention -> residual -> BatchNorm,
    ReLU, Linear, BatchNorm, ReLU, Linear -> residual; 9 tokens, C=8, 2 heads) compiled from torch at
    ap_fixed<16,6> as ONE design: the attention's softmax is the table-based fixed-point kernel and
    the BatchNorms have constant scales, so the block has an integer-only form. llvm, csim and rtl
    bit-identical on one token matrix, and near float torch: 0.05 here is a sanity tolerance for
    the 16-bit datapath (measured 0.018; rtl: 30,659 cycles, 3.4 MB of SV, ~2 CPU-minutes of Icarus), not a derived bound (the kernels' bounds are in
    test_cross_fixed.py)."""
    from allo_ext.frontend import from_pytorch
    from allo_ext.models import JetFormer

    torch.manual_seed(0)
    block = JetFormer.tiny().eval().blocks[0]
    g = torch.Generator().manual_seed(1)
    for m in block.modules():  # statistics far from the identity, so every BatchNorm does something
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.2)
    x = torch.randn(1, 9, 8, generator=g)
    res = {}
    for b in backends:
        if b == "llvm":
            k = from_pytorch(block, x, target="llvm", precision="ap_fixed<16,6>")
        elif b == "csim":
            k = from_pytorch(block, x, target="vitis_hls", mode="csim", precision="ap_fixed<16,6>")
        elif b == "rtl":
            k = from_pytorch(block, x, target="rtl", precision="ap_fixed<16,6>")
        else:
            pytest.skip(f"{b}: the torch-model route of this test covers llvm, csim and rtl")
        res[b] = (np.asarray(k(x.numpy()), dtype=np.float64).reshape(1, 9, 8),)
        if b == "rtl":
            assert k.cycles > 0
    assert_identical(res)
    with torch.no_grad():
        want = block(x).double().numpy()
    for b, (y,) in res.items():
        assert np.abs(y - want).max() < 0.05, f"{b}: |block - torch| = {np.abs(y - want).max()}"
