"""Memory and arithmetic safety of compiled kernels (allo_ext/passes/safety.py): provably out-of-bounds
accesses are compile errors on every target, other bad indices and integer division faults raise a
Python error naming the kernel, line and value on the CPU paths, and recursion is refused."""
from __future__ import annotations

import numpy as np
import pytest

import allo_ext
from allo_ext import float32, index, int8, int32, int64
from allo_ext.passes.safety import KernelArithmeticError, OutOfBoundsError, RecursionInKernelError

CPU = [pytest.param("llvm", id="llvm"), pytest.param("csim", id="csim", marks=pytest.mark.csim)]


def build(kernel, target, **kw):
    s = allo_ext.customize(kernel)
    if target == "csim":
        return s.build(target="vitis_hls", mode="csim", **kw)
    return s.build(target=target, **kw)


def shift_read(A: float32[8]) -> float32[8]:
    Z: float32[8] = 0.0
    for i in range(8):
        Z[i] = A[i + 1]
    return Z


def shift_write(A: float32[8]) -> float32[8]:
    Z: float32[8] = 0.0
    for i in range(8):
        Z[i - 1] = A[i]
    return Z


def two_d(A: float32[4, 3]) -> float32[4, 3]:
    Z: float32[4, 3] = 0.0
    for i, j in allo_ext.grid(4, 3):
        Z[i, j] = A[i, 2 * j]
    return Z


def in_bounds(A: float32[8]) -> float32[4]:
    Z: float32[4] = 0.0
    for i in range(4):
        Z[i] = A[2 * i + 1] + A[7 - i] + A[(i + 5) % 8]
    return Z


@pytest.mark.parametrize("target", ["llvm", "vhls", pytest.param("csim", marks=pytest.mark.csim)])
@pytest.mark.parametrize("kernel, line, text", [
    (shift_read, 26, "A[i + 1] reads index 1..8 of dimension 0, which has size 8"),
    (shift_write, 33, "Z[i - 1] writes index -1..6 of dimension 0, which has size 8"),
    (two_d, 40, "A[i, j * 2] reads index 0..4 of dimension 1, which has size 3"),
])
def test_provably_out_of_bounds_is_a_compile_error(target, kernel, line, text):
    with pytest.raises(OutOfBoundsError) as e:
        build(kernel, target)
    msg = str(e.value)
    assert f"test_safety.py:{line}" in msg and f"kernel '{kernel.__name__}'" in msg
    assert text in msg


@pytest.mark.parametrize("target", CPU)
def test_in_bounds_affine_accesses_run_unchecked(target):
    f = build(in_bounds, target)
    a = np.arange(8, dtype=np.float32) * 1.5
    i = np.arange(4)
    np.testing.assert_array_equal(f(a), a[2 * i + 1] + a[7 - i] + a[(i + 5) % 8])
    if target == "llvm":
        assert f.check_sites == []  # proven in bounds: no run-time check at all


def gather(A: float32[8], I: int32[4]) -> float32[4]:
    Z: float32[4] = 0.0
    for i in range(4):
        Z[i] = A[index(I[i])]
    return Z


def scatter(I: int32[4], V: float32[4]) -> float32[8]:
    Z: float32[8] = 0.0
    for i in range(4):
        Z[index(I[i])] = V[i]
    return Z


@pytest.mark.parametrize("target", CPU)
def test_data_dependent_index_is_checked(target):
    g = build(gather, target)
    a = np.arange(8, dtype=np.float32) + 10
    np.testing.assert_array_equal(g(a, np.array([7, 0, 3, 3], np.int32)), a[[7, 0, 3, 3]])
    for bad, shown in (([0, 8, 1, 2], "index 8"), ([0, 1, -1, 2], "index -1"), ([2**31 - 1, 0, 0, 0], "index 2147483647")):
        with pytest.raises(OutOfBoundsError, match=rf"test_safety.py:\d+: in kernel 'gather': A\[.*\] {shown} is out "
                                                    r"of bounds for dimension 0 of size 8"):
            g(a, np.array(bad, np.int32))
    s = build(scatter, target)
    with pytest.raises(OutOfBoundsError, match=r"kernel 'scatter': Z\[.*\] index 100000"):
        s(np.array([0, 1, 100000, 2], np.int32), np.ones(4, np.float32))  # was heap corruption (SIGABRT)
    np.testing.assert_array_equal(s(np.array([6, 1, 0, 2], np.int32), np.arange(4, dtype=np.float32) + 1),
                                  [3, 2, 4, 0, 0, 0, 1, 0])


def floordiv(A: int32[4], B: int32[4]) -> int32[4]:
    Z: int32[4] = 0
    for i in range(4):
        Z[i] = A[i] // B[i]
    return Z


def remainder(A: int64[4], B: int64[4]) -> int64[4]:
    Z: int64[4] = 0
    for i in range(4):
        Z[i] = A[i] % B[i]
    return Z


def div8(A: int8[4], B: int8[4]) -> int8[4]:
    Z: int8[4] = 0
    for i in range(4):
        Z[i] = A[i] // B[i]
    return Z


@pytest.mark.parametrize("target", CPU)
@pytest.mark.parametrize("kernel, dt, sym", [(floordiv, np.int32, "//"), (remainder, np.int64, "%"), (div8, np.int8, "//")])
def test_integer_division_faults_raise(target, kernel, dt, sym):
    f = build(kernel, target)
    a, b = np.array([7, -7, 9, 1], dt), np.array([2, 2, -3, 1], dt)
    want = a // b if sym == "//" else a % b  # numpy follows Python's floor semantics, like the language
    np.testing.assert_array_equal(f(a, b), want)
    with pytest.raises(KernelArithmeticError, match=rf"kernel '{kernel.__name__}': integer 5 {sym} 0: division by zero"):
        f(np.array([1, 5, 1, 1], dt), np.array([1, 0, 1, 1], dt))
    lo = np.iinfo(dt).min
    with pytest.raises(KernelArithmeticError, match=rf"integer {lo} {sym} -1: the result does not fit"):
        f(np.array([1, 1, lo, 1], dt), np.array([1, 1, -1, 1], dt))


def test_checks_can_be_turned_off_on_llvm():
    f = allo_ext.customize(gather).build(target="llvm", checks=False)
    assert f.check_sites == []
    a = np.arange(8, dtype=np.float32)
    np.testing.assert_array_equal(f(a, np.array([1, 2, 3, 4], np.int32)), a[1:5])


def _ping(A: float32[4]) -> float32[4]:
    return _pong(A)


def _pong(A: float32[4]) -> float32[4]:
    return _ping(A)


def _self(A: float32[4]) -> float32[4]:
    return _self(A)


@pytest.mark.parametrize("target", ["llvm", "vhls", pytest.param("csim", marks=pytest.mark.csim)])
@pytest.mark.parametrize("kernel, cycle", [(_self, "_self -> _self"), (_ping, "_ping -> _pong -> _ping")])
def test_recursion_is_refused_on_every_target(target, kernel, cycle):
    try:
        s = allo_ext.customize(kernel)
    except allo_ext.AlloError as e:  # refused while compiling the language: also fine, if it says why
        assert "recurs" in str(e)
        return
    with pytest.raises(RecursionInKernelError, match=f"calls itself \\({cycle}"):
        s.build(target="vitis_hls", mode="csim") if target == "csim" else s.build(target=target)
