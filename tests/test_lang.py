"""The kernel language: every construct compiled, run through the llvm backend and checked against
numpy (or hand-computed values), plus the IR it emits and the errors it raises.

Kernels live at module level: the compiler reads their source from this file. Error tests find
their expected line through a ``# L:<tag>`` comment on the offending line.
"""
import math
import re
from pathlib import Path

import numpy as np
import pytest

import allo_ext
from allo_ext import (KernelSyntaxError, KernelTypeError, ceil, erf, exp, float32, float64, floor, grid, index,
                      int8, int16, int32, log, sqrt, tanh, uint8)

RNG = np.random.default_rng(0)
_SRC = Path(__file__).read_text().splitlines()


def build(k):
    return allo_ext.customize(k).build(target="llvm")


def ir_of(k) -> str:
    return str(allo_ext.customize(k))


def line_of(tag: str) -> int:
    hits = [n for n, text in enumerate(_SRC, 1) if text.rstrip().endswith(f"# L:{tag}")]
    assert len(hits) == 1, tag
    return hits[0]


def rand(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


# ---------------------------------------------------------------------------------------------- kernels
def vadd(T, M, N):
    def vadd(X: T[M, N], Y: T[M, N]) -> T[M, N]:
        Z: T[M, N] = 0.0
        for i, j in grid(M, N, name="add"):
            Z[i, j] = X[i, j] + Y[i, j]
        return Z

    return vadd


def arith4(T, N):
    def arith4(X: T[N], Y: T[N]) -> (T[N], T[N], T[N], T[N]):
        A: T[N] = 0
        S: T[N] = 0
        P: T[N] = 0
        D: T[N] = 0
        for i in range(N):
            A[i] = X[i] + Y[i]
            S[i] = X[i] - Y[i]
            P[i] = X[i] * Y[i]
            D[i] = X[i] / Y[i]
        return A, S, P, D

    return arith4


def divmod_k(T, N):
    def divmod_k(X: T[N], Y: T[N]) -> (T[N], T[N]):
        Q: T[N] = 0
        R: T[N] = 0
        for i in range(N):
            Q[i] = X[i] // Y[i]
            R[i] = X[i] % Y[i]
        return Q, R

    return divmod_k


def fmod_k(N):
    def fmod_k(X: float32[N], Y: float32[N]) -> float32[N]:
        R: float32[N] = 0.0
        for i in range(N):
            R[i] = X[i] % Y[i]
        return R

    return fmod_k


def ffloordiv_k(N):
    def ffloordiv_k(X: float32[N], Y: float32[N]) -> float32[N]:
        Q: float32[N] = 0.0
        for i in range(N):
            Q[i] = X[i] // Y[i]
        return Q

    return ffloordiv_k


def compare6(T, N):
    def compare6(X: T[N], Y: T[N]) -> int32[N, 6]:
        Z: int32[N, 6] = 0
        for i in range(N):
            if X[i] < Y[i]:
                Z[i, 0] = 1
            if X[i] <= Y[i]:
                Z[i, 1] = 1
            if X[i] > Y[i]:
                Z[i, 2] = 1
            if X[i] >= Y[i]:
                Z[i, 3] = 1
            if X[i] == Y[i]:
                Z[i, 4] = 1
            if X[i] != Y[i]:
                Z[i, 5] = 1
        return Z

    return compare6


def minmaxabs(T, N):
    def minmaxabs(X: T[N], Y: T[N]) -> (T[N], T[N], T[N], T[N]):
        A: T[N] = 0
        B: T[N] = 0
        C: T[N] = 0
        D: T[N] = 0
        for i in range(N):
            A[i] = max(X[i], Y[i])
            B[i] = min(X[i], Y[i])
            C[i] = abs(X[i])
            D[i] = max(X[i], Y[i], 0)  # more than two arguments, one of them a literal
        return A, B, C, D

    return minmaxabs


def round_k(N):
    def round_k(X: float32[N]) -> float32[N]:
        Z: float32[N] = 0.0
        for i in range(N):
            Z[i] = round(X[i])
        return Z

    return round_k


def math7(T, N):
    def math7(X: T[N]) -> (T[N], T[N], T[N], T[N], T[N], T[N], T[N]):
        E: T[N] = 0.0
        L: T[N] = 0.0
        S: T[N] = 0.0
        H: T[N] = 0.0
        R: T[N] = 0.0
        F: T[N] = 0.0
        C: T[N] = 0.0
        for i in range(N):
            E[i] = exp(X[i])
            L[i] = log(abs(X[i]))
            S[i] = sqrt(abs(X[i]))
            H[i] = tanh(X[i])
            R[i] = erf(X[i])
            F[i] = floor(X[i])
            C[i] = ceil(X[i])
        return E, L, S, H, R, F, C

    return math7


def branchy(N):
    def branchy(X: float32[N]) -> float32[N]:
        Z: float32[N] = 0.0
        for i in range(N):
            if i == 0:
                Z[i] = 100.0
            elif X[i] > 0.0:
                Z[i] = X[i]
            else:
                Z[i] = -2.0 * X[i]
        return Z

    return branchy


def static_branch(N, NEG):
    def static_branch(X: float32[N]) -> float32[N]:
        Z: float32[N] = 0.0
        for i in range(N):
            if NEG:
                Z[i] = -X[i]
            else:
                Z[i] = X[i] + 1.0
        return Z

    return static_branch


def ifexp(N, FIRST):
    def ifexp(X: float32[N], Y: float32[N]) -> (float32[N], float32[N]):
        A: float32[N] = 0.0
        B: float32[N] = 0.0
        for i in range(N):
            A[i] = X[i] if X[i] > Y[i] else Y[i]
            B[i] = X[i] if FIRST else Y[i]
        return A, B

    return ifexp


def ifexp_literals(N):
    def ifexp_literals(X: float32[N]) -> float32[N]:
        Z: float32[N] = 0.0
        for i in range(N):
            Z[i] = 1.0 if X[i] > 0.0 else 0.0
        return Z

    return ifexp_literals


def buffers(N):
    def buffers(X: float32[N]) -> (float32[N], float32[N]):
        Z: float32[N] = 1.5
        for i in range(0, N, 2):
            Z[i] = X[i]
        C: float32[N] = X
        C[0] = 5.0
        for i in range(1, N - 1):
            C[i] = C[i] + 10.0
        return Z, C

    return buffers


def _row(i):
    return i[0]


def tuple_grid(shape):
    shape = tuple(shape)

    def tuple_grid(X: float32[shape]) -> float32[shape]:
        Z: float32[shape] = 0.0
        for i in grid(*shape, name="e"):
            Z[i] = X[i] + float32(i[0]) + float32(_row(i))
        return Z

    return tuple_grid


def _swap(i):
    return (i[1], i[0])


def _ins(i, dim, k):
    return tuple(i[:dim]) + (k,) + tuple(i[dim:])


def transpose(M, N):
    def transpose(X: float32[M, N]) -> float32[N, M]:
        Z: float32[N, M] = 0.0
        for i in grid(M, N):
            Z[_swap(i)] = X[i]
        return Z

    return transpose


def sum_dim(shape, dim):
    shape = tuple(shape)
    out = shape[:dim] + shape[dim + 1:]
    K = shape[dim]

    def sum_dim(X: float32[shape]) -> float32[out]:
        Z: float32[out] = 0.0
        for i in grid(*out, name="o"):
            acc: float32 = 0.0
            for k in range(K):
                acc += X[_ins(i, dim, k)]
            Z[i] = acc
        return Z

    return sum_dim


def rowmax(M, N):
    NEG_INF = float("-inf")

    def rowmax(X: float32[M, N]) -> (float32[M], float32[M]):
        Z: float32[M] = 0.0
        W: float32[M] = 0.0
        for i in range(M):
            m: float32 = float("-inf")
            m2: float32 = NEG_INF
            for j in range(N):
                m = max(m, X[i, j])
                if X[i, j] > m2:
                    m2 = X[i, j]
            Z[i] = m
            W[i] = m2
        return Z, W

    return rowmax


def consts(N):
    K = 3
    ALPHA = 0.5
    W = np.linspace(-1.0, 1.0, N).astype(np.float32)
    IW = np.arange(N, dtype=np.int32) * 7

    def consts(X: float32[N]) -> (float32[N], int32[N]):
        Z: float32[N] = 0.0
        Q: int32[N] = 0
        for i in range(N):
            Z[i] = X[i] * ALPHA + W[i] + K
            Q[i] = IW[i] - K
        return Z, Q

    return consts


def casts(N):
    def casts(F: float32[N], B: int8[N], U: uint8[N], I: int32[N]) -> (int32[N], float32[N], int32[N], int32[N],
                                                                       int8[N], float32[N], float64[N], uint8[N]):
        FI: int32[N] = 0
        IF: float32[N] = 0.0
        BW: int32[N] = 0
        UW: int32[N] = 0
        IN: int8[N] = 0
        XF: float32[N] = 0.0
        FD: float64[N] = 0.0
        FU: uint8[N] = 0
        for i in range(N):
            FI[i] = int32(F[i])
            IF[i] = float32(I[i])
            BW[i] = int32(B[i])
            UW[i] = int32(U[i])
            IN[i] = int8(I[i])
            XF[i] = float32(i) * 0.5
            FD[i] = float64(F[i])
            FU[i] = uint8(abs(F[i]))
        return FI, IF, BW, UW, IN, XF, FD, FU

    return casts


def narrow_float(N):
    def narrow_float(D: float64[N]) -> float32[N]:
        Z: float32[N] = 0.0
        for i in range(N):
            Z[i] = float32(D[i])
        return Z

    return narrow_float


def gather(N, M):
    def gather(X: float32[N], I: int32[M]) -> float32[M]:
        Z: float32[M] = 0.0
        for i in range(M):
            Z[i] = X[index(I[i])]
        return Z

    return gather


def strided(N):
    def strided(X: float32[2 * N + 1]) -> float32[N]:
        Z: float32[N] = 0.0
        for i in range(N, name="s"):
            Z[i] = X[i * 2 + 1]
        return Z

    return strided


def scale2(N):
    def scale2(X: float32[N]) -> float32[N]:
        Z: float32[N] = 0.0
        for i in range(N):
            Z[i] = X[i] * 2.0
        return Z

    return scale2


def two_shapes(M, N):
    sa, sb = scale2(M), scale2(N)

    def two_shapes(X: float32[M], Y: float32[N]) -> (float32[M], float32[N]):
        A = sa(X)
        B = sb(Y)
        return A, B

    return two_shapes


def same_shapes(N):
    sa, sb = scale2(N), scale2(N)

    def same_shapes(X: float32[N], Y: float32[N]) -> float32[N]:
        A = sa(X)
        B = sb(Y)
        C: float32[N] = A  # a buffer initialised from a kernel call's result
        for i in range(N):
            C[i] = C[i] + B[i]
        return C

    return same_shapes


def subscript_of_call(N):
    inner = scale2(N)

    def subscript_of_call(X: float32[N]) -> float32[N]:
        Z: float32[N] = 0.0
        Z[0] = inner(X)[1]
        for i in range(1, N):
            Z[i] = X[i]
        return Z

    return subscript_of_call


def axpy(N):
    def axpy(alpha: float32, X: float32[N], Y: float32[N]) -> float32[N]:
        Z: float32[N] = 0.0
        for i in range(N):
            Z[i] = alpha * X[i] + Y[i]
        return Z

    return axpy


def shift(N):
    def shift(X: int32[N], n: int32) -> int32[N]:
        Z: int32[N] = 0
        for i in range(N):
            Z[i] = X[i] + n
        return Z

    return shift


def calls_axpy(N):
    inner = axpy(N)

    def calls_axpy(X: float32[N]) -> float32[N]:
        Z = inner(3.0, X, X)
        return Z

    return calls_axpy


def bits(T, N):
    def bits(X: T[N], Y: T[N]) -> (T[N], T[N], T[N], T[N], T[N], T[N]):
        A: T[N] = 0
        O: T[N] = 0
        E: T[N] = 0
        SL: T[N] = 0
        SR: T[N] = 0
        NG: T[N] = 0
        for i in range(N):
            A[i] = X[i] & Y[i]
            O[i] = X[i] | Y[i]
            E[i] = X[i] ^ Y[i]
            SL[i] = X[i] << 1
            SR[i] = X[i] >> 1
            NG[i] = -X[i]
        return A, O, E, SL, SR, NG

    return bits


def logic(N):
    def logic(X: float32[N]) -> (float32[N], float32[N]):
        P: float32[N] = 0.0
        Q: float32[N] = 0.0
        for i in range(N):
            if (X[i] > 0.0 and i > 0) or not X[i] > -1.0:
                P[i] = 1.0
            Q[i] = X[i] ** 2.0
        return P, Q

    return logic


# ---------------------------------------------------------------------------------------------- runs
@pytest.mark.parametrize("T, dt", [(float32, np.float32), (float64, np.float64), (int32, np.int32),
                                   (int8, np.int8), (int16, np.int16)])
def test_typed_args_and_results(T, dt):
    f = build(vadd(T, 3, 5))
    x = (RNG.standard_normal((3, 5)) * 100).astype(dt)
    y = (RNG.standard_normal((3, 5)) * 100).astype(dt)
    z = f(x, y)
    assert z.dtype == dt and z.shape == (3, 5)
    np.testing.assert_array_equal(z, x + y)  # int8 wraps exactly like numpy


def test_generic_factory_gives_independent_instances():
    f1, f2 = build(vadd(float32, 2, 3)), build(vadd(float32, 4, 1))
    a, b = rand(2, 3), rand(4, 1)
    np.testing.assert_array_equal(f1(a, a), 2 * a)
    np.testing.assert_array_equal(f2(b, b), 2 * b)


@pytest.mark.parametrize("T, dt", [(float32, np.float32), (float64, np.float64)])
def test_float_arithmetic(T, dt):
    x, y = rand(7, dtype=dt), rand(7, dtype=dt) + dt(3.0)
    a, s, p, d = build(arith4(T, 7))(x, y)
    np.testing.assert_array_equal(a, x + y)
    np.testing.assert_array_equal(s, x - y)
    np.testing.assert_array_equal(p, x * y)
    np.testing.assert_array_equal(d, x / y)


def test_signed_int_arithmetic_truncates_division():
    x = np.array([7, -7, 7, -7, 100000, 0], np.int32)
    y = np.array([2, 2, -2, -2, 3, 5], np.int32)
    a, s, p, d = build(arith4(int32, 6))(x, y)
    np.testing.assert_array_equal(a, x + y)
    np.testing.assert_array_equal(s, x - y)
    np.testing.assert_array_equal(p, x * y)
    # '/' on integers is C division (toward zero), as in Allo and HLS C++.
    np.testing.assert_array_equal(d, [3, -3, -3, 3, 33333, 0])


def test_uint8_arithmetic_is_unsigned():
    x = np.array([200, 255, 7, 10, 0], np.uint8)
    y = np.array([3, 2, 7, 20, 1], np.uint8)
    a, s, p, d = build(arith4(uint8, 5))(x, y)
    np.testing.assert_array_equal(a, [203 % 256, 257 % 256, 14, 30, 1])
    np.testing.assert_array_equal(s, [197, 253, 0, 246, 255])  # wraps modulo 256
    np.testing.assert_array_equal(p, [600 % 256, 510 % 256, 49, 200, 0])
    np.testing.assert_array_equal(d, [66, 127, 1, 0, 0])  # signed division would give 200/3 -> -18
    q, r = build(divmod_k(uint8, 5))(x, y)
    np.testing.assert_array_equal(q, [66, 127, 1, 0, 0])
    np.testing.assert_array_equal(r, [2, 1, 0, 10, 0])


def test_signed_int_floordiv_is_floored():
    x = np.array([7, -7, 7, -7, 9], np.int32)
    y = np.array([2, 2, -2, -2, 3], np.int32)
    q, _ = build(divmod_k(int32, 5))(x, y)
    np.testing.assert_array_equal(q, [3, -4, -4, 3, 3])


def test_signed_int_mod_matches_floordiv():
    x = np.array([7, -7, 7, -7], np.int32)
    y = np.array([2, 2, -2, -2], np.int32)
    q, r = build(divmod_k(int32, 4))(x, y)
    np.testing.assert_array_equal(q * y + r, x)
    np.testing.assert_array_equal(r, [1, 1, -1, -1])  # Python/numpy: the sign of the divisor


def test_float_mod_positive_operands():
    x, y = np.array([7.5, 1.0, 9.0], np.float32), np.array([2.0, 3.0, 4.5], np.float32)
    np.testing.assert_array_equal(build(fmod_k(3))(x, y), [1.5, 1.0, 0.0])


def test_float_mod_negative_operands_follow_python():
    x, y = np.array([-7.5, 7.5], np.float32), np.array([2.0, -2.0], np.float32)
    np.testing.assert_array_equal(build(fmod_k(2))(x, y), [0.5, -0.5])


def test_float_floordiv():
    x, y = np.array([7.5, -7.5], np.float32), np.array([2.0, 2.0], np.float32)
    np.testing.assert_array_equal(build(ffloordiv_k(2))(x, y), [3.0, -4.0])


@pytest.mark.parametrize("T, dt", [(int8, np.int8), (uint8, np.uint8), (int32, np.int32)])
def test_bitwise_shift_and_negation(T, dt):
    x = np.array([-8, 5, 100, -1, 0], np.int64).astype(dt)
    y = np.array([3, 6, -100, 7, 0], np.int64).astype(dt)
    a, o, e, sl, sr, ng = build(bits(T, 5))(x, y)
    np.testing.assert_array_equal(a, x & y)
    np.testing.assert_array_equal(o, x | y)
    np.testing.assert_array_equal(e, x ^ y)
    np.testing.assert_array_equal(sl, (x.astype(np.int64) << 1).astype(dt))  # wraps at the type's width
    np.testing.assert_array_equal(sr, x >> 1)  # arithmetic for signed, logical for unsigned (numpy does the same)
    np.testing.assert_array_equal(ng, (-x.astype(np.int64)).astype(dt))


def test_bool_ops_and_power():
    x = np.array([0.5, 2.0, -0.5, -3.0, 3.0], np.float32)
    p, q = build(logic(5))(x)
    np.testing.assert_array_equal(p, [0.0, 1.0, 0.0, 1.0, 1.0])
    np.testing.assert_allclose(q, x.astype(np.float64) ** 2, rtol=1e-6)


@pytest.mark.parametrize("T, dt", [(float32, np.float32), (int32, np.int32)])
def test_comparisons(T, dt):
    x = np.array([1, 2, 3, -4, 5], dt)
    y = np.array([2, 2, 1, -4, -5], dt)
    z = build(compare6(T, 5))(x, y)
    want = np.stack([x < y, x <= y, x > y, x >= y, x == y, x != y], axis=1).astype(np.int32)
    np.testing.assert_array_equal(z, want)


def test_float_comparisons_with_nan_follow_python():
    x = np.array([np.nan, 1.0, np.nan], np.float32)
    y = np.array([1.0, np.nan, np.nan], np.float32)
    z = build(compare6(float32, 3))(x, y)
    # Python: every comparison with NaN is False except '!='.
    np.testing.assert_array_equal(z, [[0, 0, 0, 0, 0, 1]] * 3)


def test_unsigned_comparisons():
    x = np.array([200, 1], np.uint8)
    y = np.array([100, 255], np.uint8)
    z = build(compare6(uint8, 2))(x, y)
    np.testing.assert_array_equal(z, [[0, 0, 1, 1, 0, 1], [1, 1, 0, 0, 0, 1]])


@pytest.mark.parametrize("T, dt", [(float32, np.float32), (int32, np.int32), (int8, np.int8)])
def test_max_min_abs(T, dt):
    x = np.array([1, -2, 3, -4, 0, 7], dt)
    y = np.array([2, -3, 3, 5, 0, -7], dt)
    a, b, c, d = build(minmaxabs(T, 6))(x, y)
    np.testing.assert_array_equal(a, np.maximum(x, y))
    np.testing.assert_array_equal(b, np.minimum(x, y))
    np.testing.assert_array_equal(c, np.abs(x))
    np.testing.assert_array_equal(d, np.maximum(np.maximum(x, y), 0))


def test_unsigned_max_min():
    x = np.array([200, 3], np.uint8)
    y = np.array([100, 250], np.uint8)
    a, b, _, _ = build(minmaxabs(uint8, 2))(x, y)
    np.testing.assert_array_equal(a, [200, 250])
    np.testing.assert_array_equal(b, [100, 3])


def test_unsigned_abs_is_identity():
    x = np.array([200, 3], np.uint8)
    _, _, c, _ = build(minmaxabs(uint8, 2))(x, x)
    np.testing.assert_array_equal(c, x)


def test_float_max_propagates_nan_like_torch():
    x = np.array([np.nan, 1.0], np.float32)
    y = np.array([1.0, np.nan], np.float32)
    a, b, _, _ = build(minmaxabs(float32, 2))(x, y)
    assert np.isnan(a).all() and np.isnan(b).all()


def test_round_is_half_to_even():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 2.4, -2.6, 3.0], np.float32)
    np.testing.assert_array_equal(build(round_k(8))(x), [0.0, 2.0, 2.0, -0.0, -2.0, 2.0, -3.0, 3.0])


@pytest.mark.parametrize("T, dt, rtol", [(float32, np.float32, 2e-6), (float64, np.float64, 1e-14)])
def test_math_functions(T, dt, rtol):
    x = np.array([-2.5, -1.0, -0.3, 0.2, 0.7, 1.0, 3.5], dt)
    e, lg, s, h, r, fl, ce = build(math7(T, 7))(x)
    xd = x.astype(np.float64)
    np.testing.assert_allclose(e, np.exp(xd), rtol=rtol)
    np.testing.assert_allclose(lg, np.log(np.abs(xd)), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(s, np.sqrt(np.abs(xd)), rtol=rtol)
    np.testing.assert_allclose(h, np.tanh(xd), rtol=rtol)
    np.testing.assert_allclose(r, [math.erf(v) for v in xd], rtol=rtol)
    np.testing.assert_array_equal(fl, [-3, -1, -1, 0, 0, 1, 3])
    np.testing.assert_array_equal(ce, [-2, -1, -0.0, 1, 1, 1, 4])


def test_runtime_if_elif_else():
    x = np.array([3.0, 2.0, -1.0, 0.0, -4.0], np.float32)
    np.testing.assert_array_equal(build(branchy(5))(x), [100.0, 2.0, 2.0, -0.0, 8.0])


@pytest.mark.parametrize("neg", [True, False])
def test_compile_time_if_emits_one_branch(neg):
    k = static_branch(4, neg)
    text = ir_of(k)
    assert "scf.if" not in text
    assert ("arith.negf" in text) == neg and ("arith.addf" in text) == (not neg)
    x = rand(4)
    np.testing.assert_array_equal(build(k)(x), -x if neg else x + 1)


@pytest.mark.parametrize("first", [True, False])
def test_conditional_expressions(first):
    x, y = rand(6), rand(6)
    a, b = build(ifexp(6, first))(x, y)
    np.testing.assert_array_equal(a, np.where(x > y, x, y))
    np.testing.assert_array_equal(b, x if first else y)


def test_conditional_expression_of_two_literals():
    x = np.array([1.0, -1.0], np.float32)
    np.testing.assert_array_equal(build(ifexp_literals(2))(x), [1.0, 0.0])


def test_local_buffers_initial_values_and_range_start_stop_step():
    x = np.arange(1, 8, dtype=np.float32)
    z, c = build(buffers(7))(x)
    np.testing.assert_array_equal(z, [1.0, 1.5, 3.0, 1.5, 5.0, 1.5, 7.0])
    np.testing.assert_array_equal(c, [5.0, 12.0, 13.0, 14.0, 15.0, 16.0, 7.0])
    np.testing.assert_array_equal(x, np.arange(1, 8))  # the copy did not alias the input


@pytest.mark.parametrize("shape", [(3,), (2, 3), (2, 1, 3)])
def test_tuple_grid(shape):
    x = rand(*shape)
    rows = np.arange(shape[0], dtype=np.float32).reshape((-1,) + (1,) * (len(shape) - 1))
    np.testing.assert_array_equal(build(tuple_grid(shape))(x), x + 2 * rows)


def test_compile_time_helper_transpose():
    x = rand(3, 5)
    np.testing.assert_array_equal(build(transpose(3, 5))(x), x.T)


@pytest.mark.parametrize("dim", [0, 1, 2])
def test_scalar_reduction_over_any_dim(dim):
    x = rand(2, 3, 4)
    np.testing.assert_allclose(build(sum_dim((2, 3, 4), dim))(x), x.sum(axis=dim), rtol=1e-6, atol=1e-6)


def test_max_reduction_from_minus_inf():
    x = -np.abs(rand(3, 4)) - 1e30  # all very negative: a 0.0 or finite start would be wrong
    z, w = build(rowmax(3, 4))(x)
    np.testing.assert_array_equal(z, x.max(axis=1))
    np.testing.assert_array_equal(w, x.max(axis=1))


def test_closure_constants_and_numpy_globals():
    k = consts(5)
    text = ir_of(k)
    assert len(re.findall(r"memref\.global \"private\" constant", text)) == 2
    assert re.search(r"memref\.get_global @__const_W_\w+ : memref<5xf32>", text)
    assert re.search(r"memref\.get_global @__const_IW_\w+ : memref<5xi32>", text)
    x = rand(5)
    z, q = build(k)(x)
    np.testing.assert_allclose(z, x * 0.5 + np.linspace(-1, 1, 5).astype(np.float32) + 3, rtol=1e-6)
    np.testing.assert_array_equal(q, np.arange(5) * 7 - 3)


def test_casts():
    f = np.array([-2.7, 2.7, 0.5, -0.5, 200.9], np.float32)
    b = np.array([-5, 127, -128, 0, 1], np.int8)
    u = np.array([200, 255, 0, 1, 128], np.uint8)
    i = np.array([300, -129, 7, -1, 100000], np.int32)
    fi, if_, bw, uw, in_, xf, fd, fu = build(casts(5))(f, b, u, i)
    np.testing.assert_array_equal(fi, [-2, 2, 0, 0, 200])  # toward zero, like C and numpy astype
    np.testing.assert_array_equal(if_, i.astype(np.float32))
    np.testing.assert_array_equal(bw, [-5, 127, -128, 0, 1])  # sign-extended
    np.testing.assert_array_equal(uw, [200, 255, 0, 1, 128])  # zero-extended
    np.testing.assert_array_equal(in_, [44, 127, 7, -1, -96])  # wraps modulo 256
    np.testing.assert_array_equal(xf, [0.0, 0.5, 1.0, 1.5, 2.0])
    assert fd.dtype == np.float64
    np.testing.assert_array_equal(fd, f.astype(np.float64))
    np.testing.assert_array_equal(fu, [2, 2, 0, 0, 200])
    d = np.array([1.0 + 2 ** -40, 1e-50], np.float64)
    np.testing.assert_array_equal(build(narrow_float(2))(d), d.astype(np.float32))


def test_affine_loop_names_and_accesses():
    text = ir_of(vadd(float32, 2, 3))
    assert re.search(r'loop_name = "add\.i", op_name = "add"', text)
    assert re.search(r'loop_name = "add\.j", op_name = "add"', text)
    assert text.count("affine.for") == 4  # the init nest and the grid
    assert "memref.load" not in text
    s = ir_of(strided(3))
    assert re.search(r"affine\.load %arg0\[%arg\d+ \* 2 \+ 1\]", s)
    assert 'loop_name = "s.i", op_name = "s"' in s  # range(..., name=) names the band
    assert 'loop_name = "i", op_name = "i"' in ir_of(scale2(3))  # an unnamed range is named by its variable
    x = rand(7)
    np.testing.assert_array_equal(build(strided(3))(x), x[1::2])


def test_non_affine_subscript_uses_memref_load():
    text = ir_of(gather(5, 4))
    assert re.search(r"memref\.load %arg0\[", text)
    x = rand(5)
    idx = np.array([4, 0, 2, 2], np.int32)
    np.testing.assert_array_equal(build(gather(5, 4))(x, idx), x[idx])


def test_two_instances_different_shapes_make_two_functions():
    k = two_shapes(3, 5)
    text = ir_of(k)
    assert len(re.findall(r"func\.func @", text)) == 3
    assert text.count("call @scale2") == 2 and "call @scale2_1" in text
    x, y = rand(3), rand(5)
    a, b = build(k)(x, y)
    np.testing.assert_array_equal(a, 2 * x)
    np.testing.assert_array_equal(b, 2 * y)


def test_two_instances_same_shapes_share_one_function():
    k = same_shapes(4)
    text = ir_of(k)
    assert len(re.findall(r"func\.func @", text)) == 2
    assert len(re.findall(r"call @scale2\(", text)) == 2
    x, y = rand(4), rand(4)
    np.testing.assert_array_equal(build(k)(x, y), 2 * x + 2 * y)


def test_subscript_of_a_call_calls_once():
    k = subscript_of_call(3)
    assert len(re.findall(r"call @scale2\(", ir_of(k))) == 1


def test_subscript_of_a_call_result():
    x = np.array([1.0, 2.0, 3.0], np.float32)
    np.testing.assert_array_equal(build(subscript_of_call(3))(x), [4.0, 2.0, 3.0])


def test_scalar_arguments():
    x, y = rand(4), rand(4)
    f = build(axpy(4))
    np.testing.assert_array_equal(f(np.float32(0.25), x, y), np.float32(0.25) * x + y)
    np.testing.assert_array_equal(f(-2.0, x, y), np.float32(-2.0) * x + y)
    xi = np.array([1, 2, -3], np.int32)
    np.testing.assert_array_equal(build(shift(3))(xi, 10), xi + 10)


def test_call_kernel_with_literal_scalar_argument():
    x = rand(4)
    np.testing.assert_array_equal(build(calls_axpy(4))(x), np.float32(3.0) * x + x)


# ---------------------------------------------------------------------------------------------- errors
def e_while(N):
    def e_while(X: float32[N]) -> float32[N]:
        Z: float32[N] = 0.0
        while N > 1:  # L:while
            Z[0] = 1.0
        return Z

    return e_while


def e_listcomp(N):
    def e_listcomp(X: float32[N]) -> float32[N]:
        Z: float32[N] = 0.0
        Z[0] = [v for v in range(N)]  # L:listcomp
        return Z

    return e_listcomp


def e_slice(N):
    def e_slice(X: float32[N]) -> float32[N]:
        Z: float32[N] = 0.0
        Z[0] = X[1:3]  # L:slice
        return Z

    return e_slice


def e_lambda(N):
    def e_lambda(X: float32[N]) -> float32[N]:
        Z: float32[N] = 0.0
        f = lambda v: v  # noqa: E731  # L:lambda
        return Z

    return e_lambda


def e_mix(N):
    def e_mix(X: float32[N], I: int32[N]) -> float32[N]:
        Z: float32[N] = 0.0
        for i in range(N):
            Z[i] = X[i] + I[i]  # L:mix
        return Z

    return e_mix


def e_store64(N):
    def e_store64(X: float32[N], D: float64[N]) -> float32[N]:
        Z: float32[N] = 0.0
        for i in range(N):
            Z[i] = D[i]  # L:store64
        return Z

    return e_store64


def e_rank(N):
    def e_rank(X: float32[N, N]) -> float32[N]:
        Z: float32[N] = 0.0
        for i in range(N):
            Z[i] = X[i]  # L:rank
        return Z

    return e_rank


def e_oob(N):
    def e_oob(X: float32[N]) -> float32[N]:
        Z: float32[N] = 0.0
        Z[0] = X[N]  # L:oob
        return Z

    return e_oob


def e_undef(N):
    def e_undef(X: float32[N]) -> float32[N]:
        Z: float32[N] = 0.0
        Z[0] = no_such_name  # noqa: F821  # L:undef
        return Z

    return e_undef


def e_noann(N):
    def e_noann(X: float32[N], Y) -> float32[N]:  # L:noann
        return X

    return e_noann


def e_return_in_loop(N):
    def e_return_in_loop(X: float32[N]) -> float32[N]:
        Z: float32[N] = 0.0
        for i in range(N):
            return Z  # L:retloop
        return Z

    return e_return_in_loop


def e_result_type(N):
    def e_result_type(X: float32[N]) -> int32[N]:
        Z: float32[N] = 0.0
        return Z  # L:restype

    return e_result_type


def e_result_shape(N):
    def e_result_shape(X: float32[N]) -> float32[N + 1]:
        return X  # L:resshape

    return e_result_shape


def e_chained(N):
    def e_chained(X: float32[N]) -> float32[N]:
        Z: float32[N] = 0.0
        for i in range(N):
            if 0.0 < X[i] < 1.0:  # L:chained
                Z[i] = 1.0
        return Z

    return e_chained


def e_loop_over_array(N):
    def e_loop_over_array(X: float32[N]) -> float32[N]:
        Z: float32[N] = 0.0
        for v in X:  # L:iter
            Z[0] = v
        return Z

    return e_loop_over_array


def e_dynamic_bound(N):
    def e_dynamic_bound(X: float32[N], n: int32) -> float32[N]:
        Z: float32[N] = 0.0
        for i in range(n):  # L:dynbound
            Z[i] = X[i]
        return Z

    return e_dynamic_bound


@pytest.mark.parametrize("factory, tag, cls, fragments", [
    (e_chained, "chained", KernelSyntaxError, ["chained comparisons are not supported"]),
    (e_loop_over_array, "iter", KernelSyntaxError, ["loops must iterate over grid(...) or range(...)"]),
    (e_dynamic_bound, "dynbound", KernelSyntaxError, ["range bounds must be compile-time ints", "range(n)"]),
    (e_while, "while", KernelSyntaxError, ["unsupported construct 'While'", "while N > 1"]),
    (e_listcomp, "listcomp", KernelSyntaxError, ["ListComp", "[v for v in range(N)]"]),
    (e_slice, "slice", KernelSyntaxError, ["cannot store an array", "X[1:3]", "shape (2,)", "'Z[0]'"]),
    (e_lambda, "lambda", KernelSyntaxError, ["Lambda", "lambda v: v"]),
    (e_mix, "mix", KernelTypeError, ["type mismatch", "float32", "int32"]),
    (e_store64, "store64", KernelTypeError, ["type mismatch", "float64", "float32"]),
    (e_rank, "rank", KernelSyntaxError, ["cannot store an array", "'X[i]'", "shape (4,)", "'Z[i]'"]),
    (e_oob, "oob", KernelSyntaxError, ["index 4 is out of bounds", "dimension 0 of 'X'", "size 4"]),
    (e_undef, "undef", KernelSyntaxError, ["'no_such_name' is not defined"]),
    (e_noann, "noann", KernelSyntaxError, ["argument 'Y' needs a type annotation"]),
    (e_return_in_loop, "retloop", KernelSyntaxError, ["'return' is only allowed at the end"]),
    (e_result_type, "restype", KernelTypeError, ["returned array", "expected int32[4]", "got float32[4]"]),
    (e_result_shape, "resshape", KernelTypeError, ["returned array", "expected float32[5]", "got float32[4]"]),
])
def test_errors_name_file_line_and_construct(factory, tag, cls, fragments):
    k = factory(4)
    with pytest.raises(cls) as ei:
        allo_ext.customize(k)
    msg = str(ei.value)
    line = line_of(tag)
    assert f"{Path(__file__).name}:{line}:" in msg, msg
    assert ei.value.line == line and Path(ei.value.file).name == Path(__file__).name
    assert f"kernel '{k.__name__}'" in msg
    for frag in fragments:
        assert frag in msg, (frag, msg)


def test_kernel_without_source_file():
    ns = {"float32": float32, "grid": grid}
    exec(compile("def nosrc(X: float32[4]) -> float32[4]:\n    return X\n", "<generated>", "exec"), ns)
    with pytest.raises(KernelSyntaxError) as ei:
        allo_ext.customize(ns["nosrc"])
    msg = str(ei.value)
    assert "'nosrc'" in msg and "cannot read the source" in msg and ".py file" in msg


def _scaled(n, scale_values):
    table = np.asarray(scale_values, dtype=np.float32)

    def helper(X: float32[n]) -> float32[n]:
        Z: float32[n]
        for i in range(n):
            Z[i] = X[i] * table[i]
        return Z

    def scaled(X: float32[n]) -> float32[n]:
        return helper(X)

    return scaled


def test_instances_with_equal_closures_compile_once():
    """Closure values compare by content: equal constant arrays and equal helper kernels share one function."""
    a, b = _scaled(3, [1.0, 2.0, 3.0]), _scaled(3, [1.0, 2.0, 3.0])
    c = _scaled(3, [1.0, 2.0, 4.0])

    def top(X: float32[3]) -> float32[3]:
        return c(b(a(X)))

    s = allo_ext.customize(top)
    assert sorted(s.kernels()) == ["helper", "helper_1", "scaled", "scaled_1", "top"]
    x = np.array([1.0, 1.0, 1.0], np.float32)
    np.testing.assert_array_equal(s.build()(x), [1.0, 8.0, 36.0])
