"""Adder trees in the HLS C++ of fully unrolled reductions (allo_ext/passes/reduction_tree.py).

The latency profile unrolls dot products and row sums; the C++ sums them as a balanced tree where that
is the same result bit for bit (integers and WRAP fixed point with TRN or RND rounding) and keeps the
in-order chain elsewhere (AP_SAT, float). Checked here against an in-order model written from the
ap_fixed documentation (hwtests/ap_model.py, exact rationals), with values drawn over the whole range
so that sums wrap or saturate: the order would show there. llvm computes the chain, csim (g++ on the
C++) the tree; both must equal the model.
"""
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import allo_ext
from allo_ext import Fixed, int8, float32
from allo_ext.kernels import apply_schedules
from allo_ext.kernels import nn as K

import ap_model as ap  # hwtests/ap_model.py

pytestmark = pytest.mark.csim


def _latency(kernel):
    s = allo_ext.customize(kernel)
    apply_schedules(s, "latency")
    return s, s.build(target="vhls").code


def _in_order_linear(X, W, b, t: ap.T) -> np.ndarray:
    """``acc = b[n]; for k: acc = T(acc + X[m, k] * W[n, k])``: the kernel's source, in order."""
    out = np.empty((X.shape[0], W.shape[0]))
    for m in range(X.shape[0]):
        for n in range(W.shape[0]):
            acc = ap.quantise(Fraction(float(b[n])), t)
            for k in range(X.shape[1]):
                acc = ap.quantise(t.value(acc) + Fraction(float(X[m, k])) * Fraction(float(W[n, k])), t)
            out[m, n] = float(t.value(acc))
    return out


@settings(max_examples=6, deadline=None)
@given(data=st.data(), bits=st.integers(6, 12), q=st.sampled_from(["TRN", "RND"]), o=st.sampled_from(["WRAP", "SAT"]),
       k=st.integers(3, 9))
def test_fixed_linear_tree_equals_the_in_order_sum(data, bits, q, o, k):
    T = Fixed(bits, bits // 2, q, o)
    s, code = _latency(K.linear2d(T, 2, k, 3))
    # a tree exactly where the accumulator wraps; a saturating one keeps the chain and says why
    assert ("allo_tree_sum(acc_terms)" in code) == (o == "WRAP")
    assert ("AP_SAT accumulator" in code) == (o == "SAT")

    def raw(shape):  # the whole range: products and sums leave it, so they wrap or saturate
        v = data.draw(st.lists(st.integers(T.raw_min, T.raw_max), min_size=int(np.prod(shape)),
                               max_size=int(np.prod(shape))))
        return np.ldexp(np.array(v, dtype=np.float64), -T.frac).reshape(shape)

    X, W, b = raw((2, k)), raw((3, k)), raw((3,))
    want = _in_order_linear(X, W, b, ap.T(T.bits, T.frac, True, q, o))
    llvm = s.build(target="llvm")(X, W, b)
    csim = s.build(target="vitis_hls", mode="csim")(X, W, b)
    np.testing.assert_array_equal(llvm, want)
    np.testing.assert_array_equal(csim, want)


def test_integer_row_sum_tree_wraps_like_the_chain():
    s, code = _latency(K.reduce_sum(int8, (3, 7), 1))
    assert "allo_tree_sum(" in code and "adder tree: 7 terms and the initial value in 3 levels" in code
    x = np.array([[127, 127, 100, -128, 5, 90, 90], [-128] * 7, [1, 2, 3, 4, 5, 6, 7]], dtype=np.int8)
    want = ((x.astype(np.int64).sum(1) + 128) % 256 - 128).astype(np.int8)  # two's complement wrap of the sum
    np.testing.assert_array_equal(s.build(target="llvm")(x), want)
    np.testing.assert_array_equal(s.build(target="vitis_hls", mode="csim")(x), want)


def test_fixed_softmax_sum_is_a_tree_and_bit_identical():
    T = Fixed(16, 10)
    s, code = _latency(K.softmax(T, (3, 6)))
    assert "total = allo_tree_sum(total_terms);" in code
    x = np.ldexp(np.random.default_rng(0).integers(T.raw_min, T.raw_max, (3, 6)).astype(np.float64), -T.frac)
    np.testing.assert_array_equal(s.build(target="llvm")(x), s.build(target="vitis_hls", mode="csim")(x))


def test_float_sum_keeps_its_order():
    s, code = _latency(K.linear2d(float32, 1, 6, 2))
    assert "allo_tree_sum" not in code and "float sum kept in order" in code
    # 1e8 + 1 - 1e8 ...: any other order of these float32 sums gives another result
    X = np.array([[1e8, 1.0, -1e8, 1.0, 3.0, -2.0]], dtype=np.float32)
    W = np.ones((2, 6), dtype=np.float32)
    b = np.zeros(2, dtype=np.float32)
    want = np.float32(0)
    for v in X[0]:
        want = np.float32(want + v)
    for f in (s.build(target="llvm"), s.build(target="vitis_hls", mode="csim")):
        np.testing.assert_array_equal(f(X, W, b), np.full((1, 2), want, dtype=np.float32))
