"""The llvm backend's calling convention: argument checks, fresh outputs, the unwritten-output guard,
integer outputs and compile-time bookkeeping."""
import numpy as np
import pytest

import allo_ext
from allo_ext import AlloError, CallError, float32, float64, grid, int32, int64, uint8
from allo_ext.backends.llvm import CPUModule


def build(k, **kw):
    return allo_ext.customize(k).build(target="llvm", **kw)


def add(M, N):
    def add(X: float32[M, N], Y: float32[M, N]) -> float32[M, N]:
        Z: float32[M, N] = 0.0
        for i, j in grid(M, N):
            Z[i, j] = X[i, j] + Y[i, j]
        return Z

    return add


def ident(N):
    def ident(X: float32[N]) -> float32[N]:
        return X

    return ident


def first_only(T, N):
    def first_only(X: T[N]) -> T[N]:
        Z: T[N]
        Z[0] = X[0]
        return Z

    return first_only


def second_partial(N):
    def second_partial(X: float32[N]) -> (float32[N], float32[N]):
        A: float32[N]
        B: float32[N]
        for i in range(N):
            A[i] = X[i]
        for i in range(1, N):
            B[i] = X[i]
        return A, B

    return second_partial


def int_outputs(N):
    def int_outputs(X: int32[N]) -> (int32[N], uint8[N], int64[N]):
        A: int32[N] = 0
        B: uint8[N] = 0
        C: int64[N] = 0
        for i in range(N):
            A[i] = X[i] * 3
            B[i] = uint8(X[i])
            C[i] = int64(X[i]) * 4294967296
        return A, B, C

    return int_outputs


def scalar_result(N):
    def scalar_result(X: float32[N]) -> float32:
        acc: float32 = 0.0
        for i in range(N):
            acc += X[i]
        return acc

    return scalar_result


def test_wrong_argument_count():
    f = build(add(2, 3))
    with pytest.raises(CallError) as ei:
        f(np.zeros((2, 3), np.float32))
    msg = str(ei.value)
    assert "kernel 'add' takes 2 argument(s) (X: float32[2, 3], Y: float32[2, 3]), got 1" in msg
    assert isinstance(ei.value, TypeError)  # CallError is also a TypeError, as Python does for bad calls


def test_wrong_shape():
    f = build(add(2, 3))
    with pytest.raises(CallError) as ei:
        f(np.zeros((2, 3), np.float32), np.zeros((3, 2), np.float32))
    assert ("argument 'Y' of kernel 'add': expected float32[2, 3] (shape (2, 3), dtype float32), "
            "got shape (3, 2), dtype float32") in str(ei.value)


def test_wrong_dtype():
    f = build(add(2, 3))
    with pytest.raises(CallError) as ei:
        f(np.zeros((2, 3), np.float64), np.zeros((2, 3), np.float32))
    assert "argument 'X' of kernel 'add': expected float32[2, 3]" in str(ei.value)
    assert "got shape (2, 3), dtype float64" in str(ei.value)
    with pytest.raises(CallError, match="dtype float64"):  # a nested list becomes float64, not float32
        f([[0.0] * 3] * 2, np.zeros((2, 3), np.float32))


def test_non_contiguous_inputs_are_accepted():
    f = build(add(3, 2))
    x = np.arange(6, dtype=np.float32).reshape(2, 3).T  # a transposed view
    assert not x.flags.c_contiguous
    np.testing.assert_array_equal(f(x, x), 2 * x)


def test_outputs_are_fresh_arrays():
    f = build(add(2, 2))
    x = np.ones((2, 2), np.float32)
    z1 = f(x, x)
    z1[0, 0] = 42.0
    z2 = f(x, x)
    assert z2 is not z1 and not np.shares_memory(z1, z2)
    np.testing.assert_array_equal(z2, np.full((2, 2), 2.0))
    np.testing.assert_array_equal(x, np.ones((2, 2)))


def test_returning_an_argument_copies_it():
    f = build(ident(3))
    x = np.array([1.0, 2.0, 3.0], np.float32)
    z = f(x)
    assert not np.shares_memory(z, x)
    z[0] = -1.0
    np.testing.assert_array_equal(x, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(f(x), x)


@pytest.mark.parametrize("T, dt", [(float32, np.float32), (float64, np.float64)])
def test_partly_unwritten_output_raises(T, dt):
    f = build(first_only(T, 4))
    with pytest.raises(AlloError, match=r"kernel 'first_only' left 3 element\(s\) of output 0 unwritten "
                                        r"\(first at index \(1,\)\)"):
        f(np.arange(4, dtype=dt))


def test_unwritten_second_output_is_named():
    f = build(second_partial(3))
    with pytest.raises(AlloError, match=r"left 1 element\(s\) of output 1 unwritten \(first at index \(0,\)\)"):
        f(np.ones(3, np.float32))


def test_written_nan_is_not_mistaken_for_unwritten():
    f = build(add(1, 2))
    z = f(np.array([[np.nan, np.inf]], np.float32), np.array([[1.0, -np.inf]], np.float32))
    assert np.isnan(z).all()


def test_partly_unwritten_integer_output_raises():
    f = build(first_only(int32, 4))
    with pytest.raises(AlloError, match="unwritten"):
        f(np.arange(4, dtype=np.int32))


def test_integer_outputs():
    x = np.array([1, -2, 300, 2**20], np.int32)
    a, b, c = build(int_outputs(4))(x)
    assert (a.dtype, b.dtype, c.dtype) == (np.int32, np.uint8, np.int64)
    np.testing.assert_array_equal(a, x * 3)
    np.testing.assert_array_equal(b, [1, 254, 44, 0])  # truncated modulo 256
    np.testing.assert_array_equal(c, x.astype(np.int64) * 2**32)


def test_scalar_result_is_returned():
    f = build(scalar_result(3))
    x = np.array([0.5, -2.25, 1e-3], np.float32)
    got = f(x)
    assert np.ndim(got) == 0 and got.dtype == np.float32
    assert got == np.float32(x[0]) + np.float32(x[1]) + np.float32(x[2])


def test_compile_seconds_and_lowered_ir_are_recorded():
    f = build(add(2, 2))
    assert isinstance(f, CPUModule)
    assert 0.0 < f.compile_seconds < 60.0
    assert "func.func @add" in f.lowered_ir
    assert f.arg_names == ["X", "Y"] and f.name == "add"


def test_opt_level_zero_gives_the_same_results():
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_array_equal(build(add(2, 3), opt_level=0)(x, x), x + x)


def test_unknown_target():
    with pytest.raises(AlloError, match=r"unknown target 'nope'; available targets: .*llvm"):
        allo_ext.customize(add(1, 1)).build(target="nope")


def slice_writes(M, W, N):
    """Writes columns [0, W) of an N-wide row after columns [W, N): a W-wide vector loop whose last
    step ran past W (masked against N, not W) would overwrite the second half."""

    def slice_writes(A: float32[M, W], B: float32[M, N]) -> float32[M, N]:
        Z: float32[M, N]
        for i in range(M):
            for j in range(W, N):
                Z[i, j] = B[i, j] * 2.0
        for i2 in range(M):
            for j2 in range(W):
                Z[i2, j2] = A[i2, j2] + 1.0
        return Z

    return slice_writes


@pytest.mark.parametrize("w", [6, 8, 13, 16])
def test_vectorised_partial_rows_write_only_their_slice(w):
    n = w + 10
    rng = np.random.default_rng(w)
    a, b = rng.standard_normal((3, w), np.float32), rng.standard_normal((3, n), np.float32)
    want = np.concatenate([a + 1.0, b[:, w:] * 2.0], axis=1)
    for vectorize in (True, False):
        m = build(slice_writes(3, w, n), vectorize=vectorize)
        np.testing.assert_array_equal(m(a, b), want)
    assert "vector<8xf32>" in build(slice_writes(3, 16, 32)).lowered_ir, "whole vector steps are vectorised"


def test_vectoriser_unrolls_nothing_it_cannot_prove():
    """A loop-carried dependence (a running sum along the row) must stay scalar and exact."""

    def prefix(X: float32[2, 16]) -> float32[2, 16]:
        Z: float32[2, 16]
        for i in range(2):
            Z[i, 0] = X[i, 0]
            for j in range(1, 16):
                Z[i, j] = Z[i, j - 1] + X[i, j]
        return Z

    x = np.random.default_rng(0).standard_normal((2, 16), np.float32)
    want = np.zeros_like(x)
    for i in range(2):
        acc = np.float32(0)
        for j in range(16):
            acc = np.float32(acc + x[i, j]) if j else x[i, 0]
            want[i, j] = acc
    np.testing.assert_array_equal(build(prefix)(x), want)


@pytest.mark.parametrize("bits", [12, 24, 40, 48])
def test_vectors_of_odd_width_integers_stay_scalar(bits):
    """LLVM packs a vector of iN with N not a power of two (i24, i40, ...) without padding, while a
    scalar iN occupies a padded slot in memory: a vector load of such an array reads the wrong bits.
    A <24,10> BatchNorm accumulator was wrong by up to 33 on llvm (csim right) before the guard."""
    from allo_ext import Fixed

    T = Fixed(bits, 4)

    def fadd(X: T[2, 16], Y: T[2, 16]) -> T[2, 16]:
        Z: T[2, 16]
        for i, j in grid(2, 16):
            Z[i, j] = X[i, j] + Y[i, j] * Y[i, j]
        return Z

    rng = np.random.default_rng(bits)
    lim = 1 << ((bits - 4) // 2 - 2)  # |x + y*y| stays inside the type: exact in float64 as well
    x, y = (np.ldexp(rng.integers(-lim * 16, lim * 16, (2, 16)).astype(np.float64), -4) for _ in range(2))
    y = np.clip(y, -lim / 2, lim / 2)
    want = x + np.floor(y * y * 16) / 16  # the product quantised to T (TRN) on assignment, then the exact sum
    for vectorize in (True, False):
        got = build(fadd, vectorize=vectorize)(x, y)
        np.testing.assert_array_equal(got, want, err_msg=f"vectorize={vectorize}")
