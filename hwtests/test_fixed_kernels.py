"""Library kernels at fixed-point types: llvm (our integer lowering) and csim (ap_fixed) bit-identical,
and each within a stated quantisation bound of float torch on the same (quantised) inputs.

The bounds: a result quantised once (TRN) is off by less than one LSB of T, plus for reductions the
inputs' own rounding times the reduction; softmax/log_softmax go through lookup tables whose error is
below 2**-8 relative at the widths used here. Softmax at ap_fixed<32,16> (where hls4ml 1.3.0's softmax
collapses to a uniform output) keeps the argmax of float.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import allo_ext
from allo_ext import Fixed, parse_precision
from allo_ext.kernels import nn as K

pytestmark = pytest.mark.csim

T = Fixed(16, 10)        # ap_fixed<16, 6>
A = Fixed(32, 20)        # a wide accumulator
LSB = 2.0 ** -10


def q(x, t=T):
    """Values of x representable in t (TRN), as float64: what the kernels see after quantisation."""
    return np.floor(np.asarray(x, np.float64) * 2.0 ** t.frac) * 2.0 ** -t.frac


def both(kernel, *args):
    s = allo_ext.customize(kernel)
    got_l = s.build(target="llvm")(*args)
    got_c = s.build(target="vitis_hls", mode="csim")(*args)
    for a, b in zip(got_l if isinstance(got_l, tuple) else (got_l,), got_c if isinstance(got_c, tuple) else (got_c,)):
        np.testing.assert_array_equal(a, b, err_msg="llvm and csim differ")
    return got_l


@given(st.integers(0, 2 ** 32 - 1))
@settings(max_examples=3)
def test_linear_with_a_wide_accumulator(seed):
    rng = np.random.default_rng(seed)
    M, Kd, N = 3, 16, 5
    x, w, b = q(rng.uniform(-4, 4, (M, Kd))), q(rng.uniform(-1, 1, (N, Kd))), q(rng.uniform(-1, 1, N))
    got = both(K.linear2d(T, M, Kd, N, acc=A), x, w, b)
    want = F.linear(torch.tensor(x), torch.tensor(w), torch.tensor(b)).numpy()
    assert np.abs(got - want).max() < LSB  # products exact in A (20 fraction bits), one TRN into T
    assert (got <= want + 1e-12).all()  # TRN: never above


def test_matmul_bmm_and_a_narrow_accumulator_loses_precision():
    rng = np.random.default_rng(1)
    a, b = q(rng.uniform(-2, 2, (4, 8))), q(rng.uniform(-2, 2, (8, 3)))
    want = a @ b
    wide = both(K.matmul(T, 4, 8, 3, acc=A), a, b)
    assert np.abs(wide - want).max() < LSB
    narrow = allo_ext.customize(K.matmul(T, 4, 8, 3)).build(target="llvm")(a, b)
    assert np.abs(narrow - want).max() > LSB  # each product truncated into T: the option matters
    a3, b3 = q(rng.uniform(-2, 2, (2, 3, 8))), q(rng.uniform(-2, 2, (2, 8, 4)))
    got = both(K.bmm(T, 2, 3, 8, 4, acc=A), a3, b3)
    assert np.abs(got - a3 @ b3).max() < LSB


def test_relu_concat_slice_select_are_exact():
    rng = np.random.default_rng(2)
    x = q(rng.uniform(-30, 30, (2, 3, 4)))
    x[0, 0, :2] = [T.min, T.max]
    np.testing.assert_array_equal(both(K.relu(T, (2, 3, 4)), x), np.maximum(x, 0))
    y = q(rng.uniform(-30, 30, (2, 1, 4)))
    np.testing.assert_array_equal(both(K.concat(T, (2, 1, 4), (2, 3, 4), 1), y, x), np.concatenate([y, x], 1))
    np.testing.assert_array_equal(both(K.slice(T, (2, 3, 4), 1, 1, 3), x), x[:, 1:3])
    np.testing.assert_array_equal(both(K.select(T, (2, 3, 4), 1, 0), x), x[:, 0])


def test_batchnorm_fixed():
    rng = np.random.default_rng(3)
    x = q(rng.uniform(-4, 4, (4, 6)))
    g, b, m, v = q(rng.uniform(0.5, 2, 6)), q(rng.uniform(-1, 1, 6)), q(rng.uniform(-1, 1, 6)), q(rng.uniform(0.1, 3, 6))
    got = both(K.batchnorm1d_2d(T, 4, 6), x, g, b, m, v)
    want = F.batch_norm(torch.tensor(x), torch.tensor(m), torch.tensor(v), torch.tensor(g), torch.tensor(b),
                        eps=1e-5).numpy()
    assert np.abs(got - want).max() < 2 * LSB


@pytest.mark.parametrize("prec", ["ap_fixed<16,6>", "ap_fixed<32,16>", "ap_fixed<12,5,AP_RND,AP_SAT>"])
def test_softmax_and_log_softmax_keep_the_argmax_at_narrow_and_wide_types(prec):
    t = parse_precision(prec)
    rng = np.random.default_rng(4)
    x = q(np.concatenate([rng.normal(0, 2, (6, 5)), [[-30.0, -31.0, -29.5, -31.9, -30.25]],
                          [[3.0, 3.0 + 2 ** -t.frac * 8, 2.9, -3, 0]]]).clip(t.min, t.max), t)
    sm = both(K.softmax(t, x.shape), x)
    want = torch.softmax(torch.tensor(x), -1).numpy()
    assert np.abs(sm - want).max() < 2 ** -8 + 2 ** -t.frac
    np.testing.assert_array_equal(sm.argmax(-1), want.argmax(-1))
    assert (sm.std(-1) > 0)[want.std(-1) > 1e-3].all()  # never the uniform output hls4ml gives at ap_fixed<32,16>
    ls = both(K.log_softmax(t, x.shape), x)
    lwant = torch.log_softmax(torch.tensor(x), -1).numpy()
    assert np.abs(ls - lwant).max() < 2 ** -6 + 2 ** -t.frac
    np.testing.assert_array_equal(ls.argmax(-1), lwant.argmax(-1))


@pytest.mark.parametrize("prec", ["ap_fixed<16,6>", "ap_fixed<10,3>"])
def test_log_softmax_saturates_where_a_row_spans_more_than_the_range(prec):
    # log_softmax of the smallest logit is about -(max - min): beyond T.min for a wide row. Wrapped,
    # the least likely class would come out as the most likely.
    t = parse_precision(prec)
    x = q(np.array([[t.max * 0.9, t.min * 0.9, 0.0, t.max / 4, t.min / 2],
                    [t.min * 0.95, t.min * 0.9, t.max * 0.95, t.min, t.min * 0.5],
                    [1.0, -1.0, 0.5, 0.25, 0.0]]), t)
    ls = both(K.log_softmax(t, x.shape), x)
    lwant = torch.log_softmax(torch.tensor(x), -1).numpy()
    np.testing.assert_array_equal(ls.argmax(-1), lwant.argmax(-1))
    np.testing.assert_array_equal(ls, np.maximum(ls, t.min))
    below = lwant < t.min
    assert below.sum() >= 3
    np.testing.assert_array_equal(ls[below], t.min)  # saturated, not wrapped
    assert np.abs(ls - lwant)[~below].max() < 2 ** -6 + 2 ** -t.frac
