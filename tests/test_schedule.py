"""Schedule primitives: each transformation keeps results (checked against numpy on the llvm backend),
leaves the IR shape it promises, and rejects bad loops, buffers and factors with a clear message."""
import re

import numpy as np
import pytest

import allo_ext
from allo_ext import AlloError, ScheduleError, float32, grid

RNG = np.random.default_rng(1)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def func_text(text: str, name: str) -> str:
    """The text of ``func.func @name`` inside a printed module."""
    m = re.search(rf"func\.func @{name}\(.*?\n  }}\n", text, re.S)
    assert m, f"no func @{name} in\n{text}"
    return m.group(0)


# ---------------------------------------------------------------------------------------------- kernels
def gemm(M, N, K):
    def gemm(A: float32[M, K], B: float32[K, N]) -> float32[M, N]:
        C: float32[M, N] = 0.0
        for i, j in grid(M, N, name="mm"):
            acc: float32 = 0.0
            for k in range(K):
                acc += A[i, k] * B[k, j]
            C[i, j] = acc
        return C

    return gemm


def gemm_perfect(M, N, K):
    def gemm_perfect(A: float32[M, K], B: float32[K, N]) -> float32[M, N]:
        C: float32[M, N] = 0.0
        for i, j, k in grid(M, N, K, name="p"):
            C[i, j] = C[i, j] + A[i, k] * B[k, j]
        return C

    return gemm_perfect


def positional(M, N, K):
    # Every element depends on its own position, so a wrongly remapped index shows up.
    def positional(X: float32[M, N, K]) -> float32[M, N, K]:
        Z: float32[M, N, K]
        for i, j, k in grid(M, N, K, name="p"):
            Z[i, j, k] = X[i, j, k] * 2.0 + float32(k) + 8.0 * float32(j) + 64.0 * float32(i)
        return Z

    return positional


def positional_ref(x):
    m, n, k = x.shape
    f = np.float32
    i, j, kk = (a.astype(f) for a in np.meshgrid(np.arange(m), np.arange(n), np.arange(k), indexing="ij"))
    return x * f(2) + kk + f(8) * j + f(64) * i


def inc(N):
    def inc(X: float32[N]) -> float32[N]:
        Z: float32[N]
        for i in grid(N, name="e"):
            Z[i] = X[i] + 1.0
        return Z

    return inc


def inc2d(M, N):
    def inc2d(X: float32[M, N]) -> float32[M, N]:
        Z: float32[M, N]
        for i, j in grid(M, N, name="e"):
            Z[i, j] = X[i, j] + 1.0
        return Z

    return inc2d


def two_bands(N):
    def two_bands(X: float32[N]) -> float32[N]:
        Z: float32[N]
        for i in grid(N, name="a"):
            Z[i] = X[i]
        for i in grid(N, name="b"):
            Z[i] = Z[i] * 3.0
        return Z

    return two_bands


def chain(M, N):
    fm, fn = inc(M), inc(N)

    def chain(X: float32[M], Y: float32[N]) -> (float32[M], float32[N]):
        A = fm(X)
        B = fn(Y)
        return A, B

    return chain


def uses_gemm(M, N, K):
    g = gemm(M, N, K)

    def uses_gemm(A: float32[M, K], B: float32[K, N]) -> float32[M, N]:
        C = g(A, B)
        D: float32[M, N]
        for i, j in grid(M, N, name="r"):
            D[i, j] = max(C[i, j], 0.0)
        return D

    return uses_gemm


# ---------------------------------------------------------------------------------------------- split
@pytest.mark.parametrize("factor, remainder", [(3, False), (2, False), (4, True), (5, True), (1, False)])
def test_split(factor, remainder):
    s = allo_ext.customize(positional(2, 3, 6))
    outer, inner = s.split("p.k", factor)
    assert (str(outer), str(inner)) == ("positional:p.k.outer", "positional:p.k.inner")
    text = str(s.module)
    assert 'loop_name = "p.k.outer"' in text and 'loop_name = "p.k.inner"' in text
    step = f" step {factor}" if factor > 1 else ""
    assert re.search(rf"affine\.for %arg\d+ = 0 to 6{step} {{", text)
    assert ("min #map" in text) == remainder  # a remainder needs a min(...) upper bound
    assert set(s.get_loops()) == {"p.i", "p.j", "p.k.outer", "p.k.inner"}
    x = rand(2, 3, 6)
    np.testing.assert_array_equal(s.build()(x), positional_ref(x))


def test_split_twice_and_by_handle():
    s = allo_ext.customize(inc(10))
    o, i = s.split("e.i", 4)
    o2, _ = s.split(o, 2)  # split the outer loop again, through its handle
    assert o2.name == "e.i.outer.outer"
    x = rand(10)
    np.testing.assert_array_equal(s.build()(x), x + 1)


# ---------------------------------------------------------------------------------------------- reorder
def test_reorder_interchange():
    s = allo_ext.customize(positional(2, 3, 4))
    s.reorder("p.k", "p.i")  # k takes i's (outermost) place, i takes k's
    text = str(s.module)
    order = re.findall(r'loop_name = "(p\.\w)"', text)
    assert order == ["p.i", "p.j", "p.k"]  # printed innermost first: i is now innermost
    x = rand(2, 3, 4)
    np.testing.assert_array_equal(s.build()(x), positional_ref(x))


def test_reorder_reduction_loop_outermost():
    s = allo_ext.customize(gemm_perfect(3, 4, 5))
    s.reorder("p.k", "p.j", "p.i")
    text = str(s.module)
    assert re.findall(r'loop_name = "(p\.\w)"', text)[-3:] == ["p.i", "p.j", "p.k"]
    a, b = rand(3, 5), rand(5, 4)
    # The k order per output element is unchanged, so the sum is bit-identical to the original.
    np.testing.assert_array_equal(s.build()(a, b), allo_ext.customize(gemm_perfect(3, 4, 5)).build()(a, b))
    np.testing.assert_allclose(s.build()(a, b), a @ b, rtol=1e-5, atol=1e-6)


def test_reorder_after_split_moves_the_outer_part():
    s = allo_ext.customize(positional(2, 3, 6))
    s.split("p.k", 2)
    s.reorder("p.k.outer", "p.i")
    x = rand(2, 3, 6)
    np.testing.assert_array_equal(s.build()(x), positional_ref(x))


def test_reorder_rejects_non_perfect_nest():
    s = allo_ext.customize(gemm(2, 3, 4))
    with pytest.raises(ScheduleError, match=r"perfect loop nest.*'mm\.j' in 'gemm'"):
        s.reorder("k", "mm.j")


def test_reorder_rejects_bound_dependence():
    s = allo_ext.customize(inc(8))
    s.split("e.i", 2)
    with pytest.raises(ScheduleError, match=r"'e\.i\.inner' outside loop 'e\.i\.outer', on which its bounds depend"):
        s.reorder("e.i.inner", "e.i.outer")


def test_reorder_needs_two_loops():
    s = allo_ext.customize(inc(8))
    with pytest.raises(ScheduleError, match="at least two loops"):
        s.reorder("e.i")


# ---------------------------------------------------------------------------------------------- unroll
def test_full_unroll_leaves_no_loop():
    s = allo_ext.customize(inc(5))
    s.unroll("e.i")
    assert 'hls.unroll = 0 : i32' in str(s.module)  # HLS keeps the loop and gets a pragma
    f = s.build()
    assert "affine.for" not in f.lowered_ir and "scf.for" not in f.lowered_ir
    assert f.lowered_ir.count("affine.store") == 5
    x = rand(5)
    np.testing.assert_array_equal(f(x), x + 1)


def test_full_unroll_of_both_loops_of_a_nest():
    s = allo_ext.customize(inc2d(2, 3))
    s.unroll("e.i")
    s.unroll("e.j")
    f = s.build()
    assert "affine.for" not in f.lowered_ir
    assert f.lowered_ir.count("affine.store") == 6
    x = rand(2, 3)
    np.testing.assert_array_equal(f(x), x + 1)


def test_full_unroll_of_inner_loop_keeps_outer():
    s = allo_ext.customize(inc2d(2, 3))
    s.unroll("e.j")
    f = s.build()
    assert f.lowered_ir.count("affine.for") == 1 and 'loop_name = "e.i"' in f.lowered_ir
    x = rand(2, 3)
    np.testing.assert_array_equal(f(x), x + 1)


def test_unroll_factor_two_on_odd_trip_count():
    s = allo_ext.customize(inc(7))
    s.unroll("e.i", 2)
    f = s.build()
    assert re.search(r"affine\.for %arg\d+ = 0 to 6 step 2", f.lowered_ir)
    assert f.lowered_ir.count("affine.store") == 3  # two in the unrolled body, one for the last iteration
    x = rand(7)
    np.testing.assert_array_equal(f(x), x + 1)


def test_unroll_split_inner_loop_by_its_trip_count():
    s = allo_ext.customize(positional(2, 3, 6))
    _, inner = s.split("p.k", 3)
    s.unroll(inner, 3)
    f = s.build()
    assert f.lowered_ir.count("affine.for") == 3 and "p.k.inner" not in f.lowered_ir
    x = rand(2, 3, 6)
    np.testing.assert_array_equal(f(x), positional_ref(x))


def test_full_unroll_of_split_inner_loop():
    s = allo_ext.customize(positional(2, 3, 6))
    _, inner = s.split("p.k", 3)
    s.unroll(inner)
    f = s.build()
    assert f.lowered_ir.count("affine.for") == 3
    x = rand(2, 3, 6)
    np.testing.assert_array_equal(f(x), positional_ref(x))


def test_unroll_of_split_inner_loop_with_remainder_is_refused_clearly():
    """A remainder split leaves a min() upper bound, which has no constant trip count to unroll by."""
    s = allo_ext.customize(inc(6))
    _, inner = s.split("e.i", 4)
    s.unroll(inner, 2)
    with pytest.raises(AlloError, match=r"cannot unroll loop 'e\.i\.inner' by 2.*divides"):
        s.build()


# ---------------------------------------------------------------------------------------------- HLS attributes
def test_dataflow_attribute_on_a_legal_region():
    def two_stage(A: float32[4, 4]) -> float32[4, 4]:
        B: float32[4, 4]
        for i, j in grid(4, 4, name="s1"):
            B[i, j] = A[i, j] * 2.0
        C: float32[4, 4]
        for i, j in grid(4, 4, name="s2"):
            C[i, j] = B[i, j] + 1.0
        return C

    s = allo_ext.customize(two_stage)
    s.dataflow()
    assert re.search(r"func\.func @two_stage\(.*attributes \{.*hls\.dataflow", str(s.module))
    a = rand(4, 4)
    np.testing.assert_allclose(s.build()(a), a * 2 + 1, rtol=1e-6)


def test_dataflow_refuses_a_buffer_written_by_two_loops():
    # ``C = 0.0`` is a loop of its own that writes C before the product loop writes it again.
    s = allo_ext.customize(gemm(4, 4, 4))
    with pytest.raises(allo_ext.ScheduleError, match=r"dataflow\('gemm'\): buffer .* is written by 2 processes"):
        s.dataflow()


def test_pipeline_partition_dataflow_attributes():
    s = allo_ext.customize(gemm(4, 4, 4))
    s.pipeline("mm.j", ii=2)
    s.partition("A", dim=2, factor=2, kind="cyclic")
    s.partition("gemm:B", kind="complete")
    s.partition("C", dim=1, factor=2, kind="block")
    text = str(s.module)
    assert re.search(r'hls\.pipeline_ii = 2 : i32, loop_name = "mm\.j"', text)
    assert text.count("hls.pipeline_ii") == 1
    assert ('hls.partition = [{dim = 2 : i32, factor = 2 : i32, kind = "cyclic", name = "A"}, '
            '{dim = 0 : i32, factor = 0 : i32, kind = "complete", name = "B"}, '
            '{dim = 1 : i32, factor = 2 : i32, kind = "block", name = "C"}]') in text
    a, b = rand(4, 4), rand(4, 4)
    np.testing.assert_allclose(s.build()(a, b), a @ b, rtol=1e-5, atol=1e-6)  # attributes do not change results


def test_partition_of_local_buffer_and_buffers_listing():
    s = allo_ext.customize(uses_gemm(2, 3, 4))
    assert s.buffers() == {"A": (2, 4), "B": (4, 3), "D": (2, 3)}
    assert s.buffers("gemm") == {"A": (2, 4), "B": (4, 3), "C": (2, 3)}
    s.partition("D", dim=2, kind="complete")
    s.partition("gemm:C", dim=1, factor=1, kind="cyclic")
    assert 'name = "D"' in func_text(str(s.module), "uses_gemm")
    assert 'name = "C"' in func_text(str(s.module), "gemm")


# ---------------------------------------------------------------------------------------------- addressing
def test_loop_addressing_forms_reach_the_same_loop():
    for ref in ("gemm:mm.j", "gemm:j", "mm.j", "j"):
        s = allo_ext.customize(gemm(2, 2, 2))
        s.pipeline(ref)
        assert re.search(r'hls\.pipeline_ii = 1 : i32, loop_name = "mm\.j"', str(s.module)), ref
    s = allo_ext.customize(gemm(2, 2, 2))
    loops = s.get_loops()
    assert set(loops) == {"init_C.d0", "init_C.d1", "mm.i", "mm.j", "k"}
    assert loops["mm.j"] == allo_ext.LoopHandle("gemm", "mm.j")
    s.pipeline(loops["k"])
    assert re.search(r'hls\.pipeline_ii = 1 : i32, loop_name = "k"', str(s.module))


def test_addressing_a_callee_loop():
    s = allo_ext.customize(uses_gemm(2, 3, 4))
    assert set(s.kernels()) == {"uses_gemm", "gemm"}
    assert set(s.get_loops()) == {"r.i", "r.j"}
    assert "mm.i" in s.get_loops("gemm")
    s.split("gemm:k", 2)
    s.pipeline("gemm:k.inner")
    s.pipeline("r.j")
    text = str(s.module)
    assert 'loop_name = "k.outer"' in func_text(text, "gemm")
    assert "hls.pipeline_ii" in func_text(text, "uses_gemm")
    a, b = rand(2, 4), rand(4, 3)
    np.testing.assert_allclose(s.build()(a, b), np.maximum(a @ b, 0), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------- compose
def test_compose_applies_a_sub_schedule_to_the_matching_callee():
    sub = allo_ext.customize(inc(6))  # matches the second callee of chain(4, 6), named inc_1 there
    _, inner = sub.split("e.i", 3)
    sub.unroll(inner, 3)
    sub.pipeline("inc:e.i.outer")
    top = allo_ext.customize(chain(4, 6))
    assert set(top.kernels()) == {"chain", "inc", "inc_1"}
    top.compose(sub)
    text = str(top.module)
    assert "e.i.outer" not in func_text(text, "inc")
    callee = func_text(text, "inc_1")
    assert 'loop_name = "e.i.outer"' in callee and "hls.pipeline_ii = 1" in callee
    assert re.search(r'hls\.unroll = 3 : i32, loop_name = "e\.i\.inner"', callee)
    x, y = rand(4), rand(6)
    a, b = top.build()(x, y)
    np.testing.assert_array_equal(a, x + 1)
    np.testing.assert_array_equal(b, y + 1)


def test_compose_of_a_kernel_that_is_not_called():
    top = allo_ext.customize(chain(4, 6))
    with pytest.raises(ScheduleError, match=r"kernel 'inc' of the composed schedule is not called from 'chain'.*inc_1"):
        top.compose(allo_ext.customize(inc(5)))


# ---------------------------------------------------------------------------------------------- errors
def test_unknown_loop_lists_existing_loops():
    s = allo_ext.customize(gemm(2, 2, 2))
    with pytest.raises(ScheduleError) as ei:
        s.pipeline("mm.q")
    msg = str(ei.value)
    assert "loop 'mm.q' does not exist in kernel 'gemm'" in msg
    assert "init_C.d0, init_C.d1, k, mm.i, mm.j" in msg


def test_ambiguous_axis_name():
    s = allo_ext.customize(two_bands(3))
    with pytest.raises(ScheduleError, match=r"loop 'i' is ambiguous in kernel 'two_bands'; its loops are: a\.i, b\.i"):
        s.unroll("i")
    s.unroll("b.i")  # the full name still works
    x = rand(3)
    np.testing.assert_array_equal(s.build()(x), x * 3)


def test_unknown_kernel():
    s = allo_ext.customize(uses_gemm(2, 2, 2))
    with pytest.raises(ScheduleError, match=r"no kernel named 'gemmm' in this schedule; kernels: .*gemm"):
        s.pipeline("gemmm:k")
    with pytest.raises(ScheduleError, match="no kernel named 'nope'"):
        s.get_loops("nope")
    with pytest.raises(ScheduleError, match="no kernel named 'nope'"):
        s.dataflow("nope")


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(buffer="Q"), r"no buffer named 'Q' in kernel 'gemm'; buffers: A, B, C"),
    (dict(buffer="A", kind="diagonal"), r"partition kind must be one of \('complete', 'cyclic', 'block'\), got 'diagonal'"),
    (dict(buffer="A", dim=3), r"partition dim 3 is out of range for 'A' of rank 2 \(use 1\.\.2, or 0 for all"),
    (dict(buffer="A", dim=-1), r"partition dim -1 is out of range"),
    (dict(buffer="A", dim=1, factor=0, kind="cyclic"), r"cyclic partitioning needs a factor >= 1, got 0"),
    (dict(buffer="A", dim=1, kind="block"), r"block partitioning needs a factor >= 1, got 0"),
])
def test_bad_partition(kwargs, pattern):
    s = allo_ext.customize(gemm(2, 2, 2))
    with pytest.raises(ScheduleError, match=pattern):
        s.partition(**kwargs)
    assert "hls.partition" not in str(s.module)  # nothing half-applied


def test_bad_factors():
    s = allo_ext.customize(gemm(2, 2, 2))
    with pytest.raises(ScheduleError, match="split factor must be >= 1, got 0"):
        s.split("k", 0)
    with pytest.raises(ScheduleError, match="pipeline II must be >= 1, got 0"):
        s.pipeline("k", ii=0)
    with pytest.raises(ScheduleError, match="unroll factor must be >= 0"):
        s.unroll("k", -1)
    with pytest.raises(ScheduleError, match="addressed as 'kernel:loop' or a LoopHandle"):
        s.pipeline(3)
    assert "hls." not in str(s.module) and 'loop_name = "k"' in str(s.module)
