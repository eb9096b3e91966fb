"""target="rtl": stage A rewrites, CIRCT, the generated testbench, Icarus, errors and the project writer.

Truth: numpy integer arithmetic (and the llvm backend, itself tested against numpy/torch).
"""
import numpy as np
import pytest

import allo_ext
from allo_ext import float32, int8, int16, int32
from allo_ext.backends.rtl import CIRCTError, build_rtl
from allo_ext.backends.rtl.lower import lower
from allo_ext.backends.rtl.simulate import Simulator
from allo_ext.kernels.nn import linear2d, relu2d
from allo_ext.lang.errors import AlloError, ToolNotFoundError

pytestmark = pytest.mark.rtl


def _ints(rng, shape, dt, lo=None, hi=None):
    info = np.iinfo(dt)
    return rng.integers(info.min if lo is None else lo, (info.max if hi is None else hi) + 1, shape).astype(dt)


@pytest.mark.parametrize("T", [int32, int16])
def test_linear_bit_exact_and_cycles(T, tmp_path):
    M, K, N = 2, 4, 3
    s = allo_ext.customize(linear2d(T, M, K, N))
    m = s.build(target="rtl", cache_dir=tmp_path)
    rng = np.random.default_rng(1)
    X, W, b = _ints(rng, (M, K), T.numpy, -300, 300), _ints(rng, (N, K), T.numpy, -300, 300), _ints(rng, N, T.numpy)
    want = (X.astype(np.int64) @ W.T.astype(np.int64) + b).astype(T.numpy)  # wraps like the hardware
    got = m(X, W, b)
    assert got.dtype == T.numpy
    np.testing.assert_array_equal(got, want)
    # every MAC needs at least a cycle in a rolled loop, and a dynamically scheduled loop nest of 24
    # MACs does not take ten thousand
    assert M * N * K <= m.cycles < 10_000
    # batched: one simulation, one result per item, the same cycles for every item (no data-dependent control)
    Xb = _ints(rng, (3, M, K), T.numpy, -300, 300)
    gotb = m(Xb, W, b)
    for i in range(3):
        np.testing.assert_array_equal(gotb[i], (Xb[i].astype(np.int64) @ W.T.astype(np.int64) + b).astype(T.numpy))
    assert m.cycles_per_item == [m.cycles] * 3


def test_relu_int8_extremes(tmp_path):
    s = allo_ext.customize(relu2d(int8, 2, 5))
    m = s.build(target="rtl", cache_dir=tmp_path)
    X = np.array([[-128, -1, 0, 1, 127], [5, -5, 100, -100, 64]], dtype=np.int8)
    np.testing.assert_array_equal(m(X), np.maximum(X, 0))


def test_one_start_token_per_call(tmp_path):
    """A zero-initialising loop then a writing loop on one output: if the testbench handed the design
    two start tokens, the second run's zeroing would overwrite the first run's results (seen once)."""
    s = allo_ext.customize(relu2d(int16, 9, 8))
    m = s.build(target="rtl", cache_dir=tmp_path)
    X = np.round(np.random.default_rng(0).standard_normal((9, 8)) * 64).astype(np.int16)
    np.testing.assert_array_equal(m(X), np.maximum(X, 0))
    # two loops of 72 iterations, one store each per cycle at best
    assert m.cycles >= 2 * 72


def test_argument_accessed_twice_before_another(tmp_path):
    """A read by two loops and placed before B: CIRCT's extmem lowering breaks on that (the
    residual input of a block); stage A gives A a local copy so that the argument has one port."""
    def k(A: int32[4], B: int32[4]) -> int32[4]:
        Z: int32[4]
        for i in range(4):
            Z[i] = A[i] * 2
        for j in range(4):
            Z[j] = Z[j] + A[j] - B[j]
        return Z

    m = allo_ext.customize(k).build(target="rtl", cache_dir=tmp_path)
    A, B = np.array([1, -2, 3, 100], dtype=np.int32), np.array([5, 6, -7, 8], dtype=np.int32)
    np.testing.assert_array_equal(m(A, B), 3 * A - B)


def test_signed_division_and_minmax(tmp_path):
    # CIRCT lowers divsi/remsi as unsigned operators: stage A must expand them, and maxsi/minsi too.
    def k(A: int32[8], B: int32[8]) -> int32[8]:
        Z: int32[8]
        for i in range(8):
            Z[i] = A[i] // B[i] + max(A[i], B[i]) - min(A[i], 3) + A[i] % B[i] + abs(B[i])
        return Z

    s = allo_ext.customize(k)
    m = s.build(target="rtl", cache_dir=tmp_path)
    c = s.build(target="llvm")
    A = np.array([-7, 7, -7, 7, -100, 0, -1, 2**31 - 1], dtype=np.int32)
    B = np.array([2, -2, -2, 2, 7, -3, 5, 3], dtype=np.int32)
    np.testing.assert_array_equal(m(A, B), c(A, B))


def test_constant_tables_become_rom_ports(tmp_path):
    Wc = np.arange(-6, 6, dtype=np.int32).reshape(3, 4)

    def k(X: int32[2, 4]) -> int32[2, 3]:
        Z: int32[2, 3]
        for i, j in allo_ext.grid(2, 3):
            acc: int32 = 0
            for r in range(4):
                acc += X[i, r] * Wc[j, r]
            Z[i, j] = acc
        return Z

    s = allo_ext.customize(k)
    low = lower(s)
    assert "get_global" not in low.text and [p.role for p in low.ports] == ["in", "out", "rom"]
    np.testing.assert_array_equal(low.ports[2].data, Wc)
    m = s.build(target="rtl", cache_dir=tmp_path)
    X = np.array([[1, -2, 3, -4], [5, 6, -7, 8]], dtype=np.int32)
    np.testing.assert_array_equal(m(X), X @ Wc.T)


def test_stage_a_output_is_flat_and_narrow():
    low = lower(allo_ext.customize(linear2d(int32, 4, 8, 5)))
    assert "memref<4x8xi32>" not in low.text and "memref<32xi32>" in low.text
    assert "affine." not in low.text and "scf." not in low.text and "overflow<" not in low.text
    assert low.index_bits < 16 and f"i{low.index_bits}" in low.text


def test_unwritten_output_raises(tmp_path):
    def k(X: int32[4]) -> int32[4]:
        Z: int32[4]
        for i in range(3):  # the last element is never written
            Z[i] = X[i]
        return Z

    m = allo_ext.customize(k).build(target="rtl", cache_dir=tmp_path)
    with pytest.raises(AlloError, match="unwritten"):
        m(np.array([1, 2, 3, 4], dtype=np.int32))


def test_float_kernel_refused_naming_precision():
    s = allo_ext.customize(relu2d(float32, 2, 2))
    with pytest.raises(AlloError, match="precision="):
        s.build(target="rtl")


def test_float_inside_an_integer_kernel_refused():
    def k(A: int32[4]) -> int32[4]:
        Z: int32[4]
        for i in range(4):
            t: float32 = float32(A[i]) * 0.5
            Z[i] = int32(t)
        return Z

    with pytest.raises(AlloError, match=r"floating point \(arith\.\w+ on f32\).*precision="):
        allo_ext.customize(k).build(target="rtl")


def test_simulator_cache_is_content_addressed_and_verified(tmp_path):
    s = allo_ext.customize(relu2d(int16, 2, 3))
    m1 = s.build(target="rtl", cache_dir=tmp_path)
    X = np.array([[1, -2, 3], [-4, 5, -6]], dtype=np.int16)
    m1(X)
    assert not m1.simulation().cache_hit
    m2 = s.build(target="rtl", cache_dir=tmp_path)
    assert m2.simulation().cache_hit and m2.simulation().directory == m1.simulation().directory
    # a damaged entry is rebuilt, never used
    m1.simulation().binary.write_bytes(b"garbage")
    m3 = s.build(target="rtl", cache_dir=tmp_path)
    assert not m3.simulation().cache_hit
    np.testing.assert_array_equal(m3(X), np.maximum(X, 0))


def test_empty_sv_is_an_error():
    with pytest.raises(AlloError, match="empty"):
        Simulator("  \n", "module tb; endmodule")


def test_circt_failure_names_the_stage():
    bad = "module {\n func.func @k(%a: memref<4xf32>) {\n %c0 = arith.constant 0 : index\n" \
          " %v = memref.load %a[%c0] : memref<4xf32>\n %w = arith.mulf %v, %v : f32\n" \
          " memref.store %w, %a[%c0] : memref<4xf32>\n return\n }\n}\n"
    from allo_ext.backends.rtl.circt_driver import to_verilog

    with pytest.raises(CIRCTError, match=r"stage '[a-z ]+'") as e:
        to_verilog(bad, "k")
    assert "start-up" not in str(e.value) and e.value.mlir == bad


def test_missing_tool_names_apt_package(monkeypatch):
    import allo_ext.backends.rtl.simulate as sim

    monkeypatch.setattr(sim.shutil, "which", lambda name: None)
    with pytest.raises(ToolNotFoundError, match="apt-get install -y iverilog"):
        sim.find_tool("iverilog")
    with pytest.raises(ToolNotFoundError, match="apt-get install -y yosys"):
        sim.find_tool("yosys")


def test_write_project_and_refuse_foreign_dir(tmp_path):
    s = allo_ext.customize(relu2d(int8, 2, 2))
    m = build_rtl(s, cache_dir=tmp_path / "cache")
    files = m.write(tmp_path / "proj")
    for name in ("design.sv", "tb.sv", "Makefile", "synth.ys", "README.md"):
        assert files[name].read_text().strip()
    m.write(tmp_path / "proj")  # our own project: rewritten
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(AlloError, match="refusing"):
        m.write(foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_multipliers_are_signed_and_still_exact(tmp_path):
    """CIRCT's N x N multipliers are rewritten as signed (same low N bits; Yosys can then narrow a
    product of sign-extended operands to one DSP): the products stay exact, negative ones included."""
    s = allo_ext.customize(linear2d(int16, 2, 3, 2))
    m = s.build(target="rtl", cache_dir=tmp_path)
    assert "$signed(in0) * $signed(in1)" in m.sv and " = in0 * in1;" not in m.sv
    X = np.array([[-32768, 32767, -1], [-300, 255, 7]], dtype=np.int16)
    W = np.array([[-32768, -1, 3], [2, -2, 32767]], dtype=np.int16)
    b = np.array([5, -5], dtype=np.int16)
    want = ((X.astype(np.int64) @ W.T.astype(np.int64) + b) & 0xFFFF).astype(np.uint16).view(np.int16)
    np.testing.assert_array_equal(m(X, W, b), want)
