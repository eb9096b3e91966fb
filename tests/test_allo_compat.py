"""Allo's language and API on allo_ext: the Allo-syntax loader (PEP 695 generic headers on 3.11),
generic instantiation, Allo's implicit casts (only under allo_ext.compat), grid options, the
schedule's Allo-style handles, and the emit_grid error path."""
import textwrap

import numpy as np
import pytest

import allo_ext
import allo_ext.compat as allo
from allo_ext import KernelSyntaxError, KernelTypeError, float32, grid, int32
from allo_ext.lang.source import load_allo_source, rewrite_generics


def test_compile_error_in_nested_grid_names_the_real_error():
    # Before the fix: RuntimeError "Unbalanced Location enter/exit" hid the message.
    def k(A: float32[4, 4]) -> float32[4, 4]:
        B: float32[4, 4] = 0.0
        for t in range(2):
            for i, j in grid(4, 4):
                B[i, j] = undefined_name[i]  # noqa: F821
        return B

    with pytest.raises(KernelSyntaxError, match="'undefined_name' is not defined"):
        allo_ext.customize(k)


def test_rewrite_keeps_lines_and_columns():
    src = textwrap.dedent('''
        def k[
            T,   # element type
            K: int32, N: int32,
        ](A: "T[K]") -> "T[N]":
            pass
        def plain(x): return x[1]
    ''')
    new, found = rewrite_generics(src)
    assert new.count("\n") == src.count("\n")
    assert found == {2: ["T", "K", "N"]}
    old_lines, new_lines = src.splitlines(), new.splitlines()
    assert new_lines[1].startswith("def k(")
    assert new_lines[4].index("A:") == old_lines[4].index("A:")  # columns kept
    assert new_lines[6] == old_lines[6]


ALLO_SRC = '''
import allo_ext.compat as allo
from allo_ext.compat import float32, int32

def scale[T, N](A: "T[N]", s: T) -> "T[N]":
    B: T[N]
    for i in allo.grid(N, name="sc"):
        B[i] = A[i] * s
    return B

def top[T, N](A: "T[N]") -> "T[N]":
    C = scale[T, N](A, 3)
    D: T[N]
    for i in range(N):
        D[i] = C[i] + i
    return D
'''


def test_allo_source_generic_kernels_instantiate_and_call_each_other():
    mod = load_allo_source(text=ALLO_SRC)
    s = allo.customize(mod.top, instantiate=[float32, 5])
    x = np.linspace(-1, 1, 5).astype(np.float32)
    np.testing.assert_allclose(s.build()(x), 3 * x + np.arange(5), rtol=1e-6)
    s8 = allo.customize(mod.top, instantiate=[int32, 3])  # a second instance: other types, other sizes
    np.testing.assert_array_equal(s8.build()(np.array([1, -2, 7], np.int32)), [3, -5, 23])
    with pytest.raises(SystemExit, match="2 type parameter"):
        allo.customize(mod.top, instantiate=[float32])


def test_instantiate_accepts_our_factories_too():
    from allo_ext.kernels.nn.activation import relu2d

    s = allo.customize(relu2d, instantiate=[float32, 2, 3])
    x = np.array([[-1, 2, -3], [4, -5, 6]], np.float32)
    np.testing.assert_array_equal(s.build()(x), np.maximum(x, 0))


def test_implicit_casts_only_under_compat():
    def k(A: float32[4], n: int32) -> float32[4]:
        B: float32[4]
        for i in range(4):
            B[i] = A[i] * i + n
        return B

    with pytest.raises(KernelTypeError):
        allo_ext.customize(k)  # our strict language: mixing index, int32 and float32 is an error
    x = np.arange(4, dtype=np.float32)
    np.testing.assert_allclose(allo.customize(k).build()(x, 2), x * np.arange(4) + 2)


def test_allo_integer_growth_does_not_wrap_intermediates():
    def k(a: allo.int8, b: allo.int8) -> int32:
        return a * b + 1  # 100 * 100 overflows int8 but not Allo's Int(16) product

    assert allo.customize(k).build()(100, 100) == 10001


def test_grid_pipeline_and_unroll_options_are_honoured():
    def k(A: float32[4, 6]) -> float32[4, 6]:
        B: float32[4, 6]
        for i, j in allo.grid(4, 6, name="b", pipeline=2):
            B[i, j] = A[i, j] + 1.0
        for i, j in allo.grid(4, 6, name="c", unroll=[False, 3]):
            B[i, j] = B[i, j] * 2.0
        return B

    s = allo.customize(k)
    ir = str(s.module)
    assert ir.count("hls.pipeline_ii = 2") == 1 and ir.count("hls.unroll = 3") == 1
    x = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    np.testing.assert_allclose(s.build()(x), (x + 1) * 2, rtol=1e-6)
    with pytest.raises(KernelSyntaxError, match="pipeline= lists 3 values for 2 loop"):
        def bad(A: float32[4, 6]):
            for i, j in allo.grid(4, 6, pipeline=[1, 1, 1]):
                A[i, j] = 0.0
        allo_ext.customize(bad)


def test_schedule_handles_as_allo_spells_them():
    def gemm(A: int32[8, 8], B: int32[8, 8]) -> int32[8, 8]:
        C: int32[8, 8] = 0
        for i, j, k in allo.grid(8, 8, 8, name="C"):
            C[i, j] += A[i, k] * B[k, j]
        return C

    s = allo.customize(gemm)
    s.split("i", 4)
    s.reorder("i.outer", "j", "i.inner")
    loops = s.get_loops()
    assert list(loops.C.loops) == ["i.outer", "j", "i.inner", "k"]
    s.pipeline(loops.C["i.inner"], initiation_interval=2)
    s.partition(s.A, partition_type=allo.Partition.Cyclic, dim=1, factor=2)
    assert "hls.pipeline_ii = 2" in str(s.module) and '"cyclic"' in str(s.module)
    a = np.arange(64, dtype=np.int32).reshape(8, 8)
    np.testing.assert_array_equal(s.build()(a, a), a @ a)


def test_unrealised_primitives_say_so():
    def k(A: int32[4]) -> int32[4]:
        B: int32[4] = 0
        for i in range(4):
            B[i] = A[i]
        return B

    s = allo.customize(k)
    with pytest.raises(allo.UnsupportedFeature, match="unfold"):
        s.unfold("k:i", [0])
