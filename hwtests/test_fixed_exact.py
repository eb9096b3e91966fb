"""Fixed point, bit for bit: the llvm target (our integer lowering, allo_ext/passes/fixed_to_int.py),
C simulation (g++ with Xilinx's ap_fixed) and an independent model of ap_fixed written from the
documentation (hwtests/ap_model.py) agree on every drawn type, mode and value.

Hypothesis draws widths (odd ones included), fraction bits (negative, and more than the width),
signedness, quantisation and overflow modes, and values at the edges of the range (min, max, 0,
+-1 LSB), ties of every rounding mode and numbers outside the range. The kernels return float64
(exact up to 53 bits), so types are drawn up to 53 bits; intermediates (products) go to 106.
"""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import allo_ext
from allo_ext import Fixed, float32, int32
from allo_ext.lang.types import O_MODES, Q_MODES, parse_precision

import ap_model as ap  # hwtests/ap_model.py (pytest puts this directory on sys.path)

N = 32

BITS = st.one_of(st.sampled_from([2, 3, 7, 8, 13, 16, 17, 24, 31, 32, 33, 48, 53]), st.integers(2, 53))


@st.composite
def fixed_types(draw, modes=True):
    bits = draw(BITS)
    frac = draw(st.integers(-6, bits + 6))
    signed = draw(st.booleans())
    q = draw(st.sampled_from(Q_MODES)) if modes else "TRN"
    o = draw(st.sampled_from(O_MODES)) if modes else "WRAP"
    return ap.T(bits, frac, signed, q, o)


def ours(t: ap.T):
    return Fixed(t.W, t.F, t.q, t.o, signed=t.signed)


def make_ops(A, B, D, n):
    def fxops(X: A[n], Y: B[n], F: float32[n]) -> (D[n], D[n], D[n], D[n], D[n], D[n], D[n], D[n], D[n], int32[n],
                                                   float32[n], int32[n]):
        S: D[n]
        P: D[n]
        M: D[n]
        Mx: D[n]
        C: D[n]
        Ng: D[n]
        Q: D[n]
        R: D[n]
        Ab: D[n]
        I: int32[n]
        Fl: float32[n]
        G: int32[n]
        for i in range(n):
            S[i] = X[i] + Y[i]
            P[i] = X[i] * Y[i]
            M[i] = X[i] - Y[i]
            Mx[i] = max(X[i], Y[i])
            C[i] = X[i]
            Ng[i] = -X[i]
            Q[i] = F[i]
            R[i] = max(X[i], 0.0)
            Ab[i] = abs(X[i])
            I[i] = int32(X[i])
            Fl[i] = float32(X[i])
            G[i] = 1 if X[i] < Y[i] else 0
        return S, P, M, Mx, C, Ng, Q, R, Ab, I, Fl, G
    return fxops


def values(t: ap.T, rng, n: int) -> np.ndarray:
    """Inputs for type t: the edges of its range, then random raw values, ties and out-of-range numbers."""
    edges = [t.lo, t.hi, 0, 1, t.lo + 1, t.hi - 1] + ([-1] if t.signed else [2])
    raws = list(edges) + [int(r) for r in rng.integers(t.lo, t.hi, size=n, endpoint=True)]
    x = np.array([float(t.value(r)) for r in raws[:n]])
    k = n // 4  # the last quarter: between representable values and beyond the range
    step = 2.0 ** -t.F
    x[-k:] = x[-k:] + step * rng.choice([0.5, 0.25, 0.75, -0.5], size=k)
    x[-2:] = [float(t.value(t.hi)) * 1.75 + step, float(t.value(t.lo)) * 1.75 - step * 3]
    return x


def float_inputs(d: ap.T, rng, n: int) -> np.ndarray:
    step = 2.0 ** -d.F
    k = rng.integers(-(2 ** min(d.W, 20)), 2 ** min(d.W, 20), size=n)
    f = (k + rng.choice([0.0, 0.5, 0.25], size=n)) * step  # ties of every rounding mode
    f[:3] = [float(d.value(d.hi)) * 3, float(d.value(d.lo)) * 3 - step, -step / 2]
    return f.astype(np.float32)


def model(A: ap.T, B: ap.T, D: ap.T, x, y, f):
    xs = [A.value(ap.quantise(Fraction(float(v)), A)) for v in x]
    ys = [B.value(ap.quantise(Fraction(float(v)), B)) for v in y]

    def out(vals):
        return np.array([float(D.value(ap.quantise(v, D))) for v in vals])

    return [
        out([a + b for a, b in zip(xs, ys)]),
        out([a * b for a, b in zip(xs, ys)]),
        out([a - b for a, b in zip(xs, ys)]),
        out([max(a, b) for a, b in zip(xs, ys)]),
        out(xs),
        out([-a for a in xs]),
        out([Fraction(float(v)) for v in f]),
        out([max(a, 0) for a in xs]),
        out([abs(a) for a in xs]),
        np.array([ap.to_int(a, 32) for a in xs], dtype=np.int32),
        np.array([ap.to_float32(a) for a in xs], dtype=np.float32),
        np.array([int(a < b) for a, b in zip(xs, ys)], dtype=np.int32),
    ]


NAMES = ["add", "mul", "sub", "max", "cast", "neg", "from float", "relu", "abs", "to int32", "to float32", "less"]


def check(got, want, what, A, B, D, x, y, f):
    for name, g, w in zip(NAMES, got, want):
        if name == "to float32" and any(abs(float(v)) > 3e38 or (v != 0 and abs(float(v)) < 1.2e-38)
                                        for v in np.asarray(w, dtype=np.float64)):
            continue  # outside float32's normal range: not modelled
        bad = ~((np.asarray(g) == np.asarray(w)) | (np.isnan(g) & np.isnan(w)) if np.asarray(g).dtype.kind == "f"
                else np.asarray(g) == np.asarray(w))
        if bad.any():
            i = int(np.argmax(bad))
            raise AssertionError(f"{what}: '{name}' differs at {i}: got {g[i]!r}, want {w[i]!r} "
                                 f"(A={A}, B={B}, D={D}, x={x[i]!r}, y={y[i]!r}, f={f[i]!r})")


def _draw_case(data):
    A, B, D = data.draw(fixed_types()), data.draw(fixed_types()), data.draw(fixed_types())
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    x, y, f = values(A, rng, N), values(B, rng, N), float_inputs(D, rng, N)
    return A, B, D, x, y, f


@given(st.data())
@settings(max_examples=3 * settings.default.max_examples)  # no g++: cheap, so three times the profile
def test_llvm_lowering_matches_the_ap_fixed_model(data):
    A, B, D, x, y, f = _draw_case(data)
    fn = allo_ext.customize(make_ops(ours(A), ours(B), ours(D), N)).build(target="llvm")
    check(fn(x, y, f), model(A, B, D, x, y, f), "llvm vs model", A, B, D, x, y, f)


@pytest.mark.csim
@given(st.data())
@settings(phases=[Phase.explicit, Phase.reuse, Phase.generate])  # a g++ build per example: no shrinking
def test_llvm_and_csim_are_bit_identical_and_match_the_model(data):
    A, B, D, x, y, f = _draw_case(data)
    s = allo_ext.customize(make_ops(ours(A), ours(B), ours(D), N))
    want = model(A, B, D, x, y, f)
    got_c = s.build(target="vitis_hls", mode="csim")(x, y, f)
    check(got_c, want, "csim (ap_types) vs model", A, B, D, x, y, f)
    got_l = s.build(target="llvm")(x, y, f)
    for name, a, b in zip(NAMES, got_l, got_c):
        np.testing.assert_array_equal(a, b, err_msg=f"llvm vs csim: {name}")


@pytest.mark.parametrize("q", ["TRN", "RND"])
@pytest.mark.parametrize("o", ["WRAP", "SAT"])
def test_the_default_and_documented_modes_at_hls4ml_widths(q, o):
    """ap_fixed<16,6> and friends, every value of an 8-bit type into a 5-bit one: exhaustive."""
    A, D = ap.T(8, 5, True), ap.T(5, 2, True, q, o)
    x = np.array([float(A.value(r)) for r in range(A.lo, A.hi + 1)])
    s = allo_ext.customize(make_ops(ours(A), ours(A), ours(D), x.size))
    f = np.zeros(x.size, np.float32)
    got = s.build(target="llvm")(x, x, f)
    check(got, model(A, A, D, x, x, f), "llvm vs model", A, A, D, x, x, f)


def test_hls4ml_spelling_means_integer_bits():
    assert parse_precision("ap_fixed<16,6>") == Fixed(16, 10)
    assert parse_precision("ap_ufixed<8, 0>") == Fixed(8, 8, signed=False)
    assert parse_precision("ap_fixed<16,6,AP_RND,AP_SAT>") == Fixed(16, 10, "RND", "SAT")
    assert parse_precision("ap_fixed<18,8,RND_CONV,SAT_SYM>") == Fixed(18, 10, "RND_CONV", "SAT_SYM")
    assert parse_precision("ap_int<8>") == allo_ext.int8
    assert parse_precision("ap_uint<16>") == allo_ext.uint16
    assert Fixed(16, 10).ap_type() == "ap_fixed<16, 6>"
    assert Fixed(16, 10, "RND", "SAT").ap_type() == "ap_fixed<16, 6, AP_RND, AP_SAT>"
    for bad in ("ap_fixed<16>", "ap_fixed<16,6,AP_FOO>", "fixed16", "ap_int<8,2>"):
        with pytest.raises(ValueError, match="precision|mode"):
            parse_precision(bad)
