"""target="vhls": the HLS C++ printed for hand-written kernels follows their schedules.

Expected snippets are written by hand from the kernels and schedules below (labels, pragmas,
signatures), never produced by the emitter under test. The g++ checks of the emitted code live in
hwtests/test_csim.py (they need g++ and the ap_types headers).
"""
import re

import numpy as np
import pytest
from torch_mlir import ir

import allo_ext
from allo_ext import float32, grid, int32, uint8
from allo_ext.backends.hls import EmitError, emit_module

W = np.array([[0.5, -1.0, 2.0, 0.1], [3.0, 1e-5, -0.25, 7.0], [1.5, 2.5, 3.5, 4.5]], dtype=np.float32)


def lin(X: float32[2, 4]) -> float32[2, 3]:
    Y: float32[2, 3] = 0.0
    for i, j in grid(2, 3, name="mm"):
        acc: float32 = 0.0
        for k in range(4):
            acc += X[i, k] * W[j, k]
        Y[i, j] = acc
    return Y


def act(Y: float32[2, 3]) -> float32[2, 3]:
    Z: float32[2, 3]
    for i, j in grid(2, 3, name="act"):
        Z[i, j] = max(Y[i, j], 0.0)
    return Z


def net(X: float32[2, 4]) -> float32[2, 3]:
    H = lin(X)
    Z = act(H)
    return Z


def gemm(A: float32[4, 6], B: float32[6, 5]) -> float32[4, 5]:
    C: float32[4, 5]
    for i, j in grid(4, 5, name="mm"):
        acc: float32 = 0.0
        for k in range(6):
            acc += A[i, k] * B[k, j]
        C[i, j] = acc
    return C


def body_of(code: str, fn: str) -> str:
    """The text of C++ function ``fn`` (from its signature to the closing brace at column 0)."""
    m = re.search(rf"^(?:extern \"C\" )?void {fn}\(.*?^}}", code, re.S | re.M)
    assert m, f"no function {fn} in:\n{code}"
    return m.group(0)


def pragma_after(code: str, label: str) -> list[str]:
    """The pragmas right after the loop header labelled ``label``."""
    lines = code.splitlines()
    k = next(i for i, ln in enumerate(lines) if re.match(rf"\s*{label}: for ", ln))
    out = []
    for ln in lines[k + 1:]:
        if not ln.startswith("#pragma HLS"):
            break
        out.append(ln)
    return out


def test_loops_are_labelled_and_carry_pipeline_unroll_pragmas():
    s = allo_ext.customize(gemm)
    s.pipeline("mm.j", ii=2)
    s.unroll("k", 3)
    code = s.build(target="vhls").code
    assert pragma_after(code, "mm_i") == []
    assert pragma_after(code, "mm_j") == ["#pragma HLS pipeline II=2"]
    assert pragma_after(code, "k") == ["#pragma HLS unroll factor=3"]
    # the reduction reads both inputs in one folded statement, in the kernel's order
    assert "acc = acc + A[i][k] * B[k][j];" in code
    assert re.search(r"mm_i: for \(int i = 0; i < 4; i\+\+\) \{", code)
    assert re.search(r"k: for \(int k = 0; k < 6; k\+\+\) \{", code)


def test_full_unroll_has_no_factor():
    s = allo_ext.customize(gemm)
    s.unroll("k")
    assert pragma_after(s.build(target="vhls").code, "k") == ["#pragma HLS unroll"]


def test_split_loop_gets_min_bound_and_tripcount():
    s = allo_ext.customize(gemm)
    s.split("mm.j", 2)  # 5 = 2 + 2 + 1: the inner loop needs a min bound
    code = s.build(target="vhls").code
    assert re.search(r"mm_j_outer: for \(int j_outer = 0; j_outer < 5; j_outer \+= 2\)", code)
    assert re.search(r"mm_j_inner: for \(int j_inner = j_outer; j_inner < std::min\(j_outer \+ 2, 5\); j_inner\+\+\)",
                     code)
    assert pragma_after(code, "mm_j_inner") == ["#pragma HLS loop_tripcount min=1 max=2"]
    assert "C[i][j_inner] = acc;" in code


def test_partition_pragmas_name_the_buffers():
    s = allo_ext.customize(gemm)
    s.partition("A", dim=2, factor=2, kind="cyclic")
    s.partition("C", dim=0)
    code = s.build(target="vhls", interface="ip").code
    assert "#pragma HLS array_partition variable=A cyclic factor=2 dim=2" in code
    assert "#pragma HLS array_partition variable=C complete dim=0" in code


def test_partition_of_local_buffer_follows_its_declaration():
    def k(X: float32[8]) -> float32[8]:
        T: float32[8]
        Z: float32[8]
        for i in range(8):
            T[i] = X[i] * 2.0
        for i in range(8):
            Z[i] = T[7 - i]
        return Z

    s = allo_ext.customize(k)
    s.partition("T", dim=1, factor=4, kind="block")
    lines = s.build(target="vhls").code.splitlines()
    k = lines.index("  float T[8];")
    assert lines[k + 1] == "#pragma HLS array_partition variable=T block factor=4 dim=1"
    assert "    Z[i] = T[7 - i];" in lines


def test_a_partitioned_m_axi_port_is_copied_locally_and_the_copy_partitioned():
    s = allo_ext.customize(gemm)
    s.partition("A", dim=1)
    code = s.build(target="vhls", interface="vitis").code
    top = body_of(code, "gemm")
    assert "array_partition variable=A " not in code  # an m_axi port cannot be partitioned
    assert "float A_local[4][6];\n#pragma HLS array_partition variable=A_local complete dim=1" in top
    assert "A_local[i0][i1] = A[i0][i1];" in top and "B_local[i0][i1] = B[i0][i1];" in top
    assert re.search(r"out\[i0\]\[i1\] = C\[i0\]\[i1\];", top)  # computed locally, burst-written
    # ap_memory ports (interface="ip") can be partitioned: no copies there
    code = s.build(target="vhls", interface="ip").code
    assert "A_local" not in code and "array_partition variable=A complete dim=1" in code


def scale(A: float32[8]) -> float32[8]:
    Z: float32[8]
    for i in range(8):
        Z[i] = A[i] * 2.0
    return Z


def chain(A: float32[8]) -> float32[8]:
    B = scale(A)
    return scale(B)


def test_a_callee_partition_lands_on_a_local_copy_not_on_the_m_axi_port():
    # The callee scale is inlined into chain: its partition of A would otherwise apply to chain's port A.
    s = allo_ext.customize(chain)
    s.partition("scale:A", kind="complete")
    top = body_of(s.build(target="vhls").code, "chain")
    assert "scale(A_local, " in top and "scale(A, " not in top
    assert not re.search(r"scale\(\w+, out\)", top)  # the last call writes a local array, copied out on return


@pytest.mark.csim
def test_local_port_copies_keep_csim_results():
    s = allo_ext.customize(gemm)
    s.partition("A", dim=1)
    s.partition("B", dim=0)
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((4, 6), dtype=np.float32), rng.standard_normal((6, 5), dtype=np.float32)
    got = s.build(target="vitis_hls", mode="csim")(a, b)
    np.testing.assert_allclose(got, a.astype(np.float64) @ b, rtol=1e-5, atol=1e-5)


def test_callees_are_inlined_unless_the_caller_is_a_dataflow_region():
    s = allo_ext.customize(net)
    code = s.build(target="vhls").code
    for fn in ("lin", "act"):
        assert "#pragma HLS inline" in body_of(code, fn)
    assert "#pragma HLS dataflow" not in code
    assert "#pragma HLS inline" not in body_of(code, "net")

    s = allo_ext.customize(net)
    s.dataflow()
    code = s.build(target="vhls").code
    assert "#pragma HLS dataflow" in body_of(code, "net")
    assert "#pragma HLS inline" not in code


def test_results_become_trailing_output_parameters_named_after_the_buffer():
    code = allo_ext.customize(net).build(target="vhls").code
    # lin returns its local Y: Y is the output parameter, not a copy
    assert "void lin(const float X[2][4], float Y[2][3]) {" in code
    assert "void act(const float Y[2][3], float Z[2][3]) {" in code
    # net returns the result of a call: the call writes straight into the output parameter
    net_body = body_of(code, "net")
    assert re.search(r"act\(lin_out, out\);", net_body)
    assert "float lin_out[2][3];" in net_body
    assert "copy_" not in code


def test_returning_an_argument_copies_it():
    def ident(X: float32[3, 2]) -> float32[3, 2]:
        return X

    code = allo_ext.customize(ident).build(target="vhls").code
    assert "void ident(const float X[3][2], float out[3][2]) {" in code
    assert "out[i0][i1] = X[i0][i1];" in code


def test_vitis_and_ip_interfaces():
    def k(X: float32[4], n: int32) -> float32[4]:
        Z: float32[4]
        for i in range(4):
            Z[i] = X[i] * float32(n)
        return Z

    s = allo_ext.customize(k)
    vitis = s.build(target="vhls", interface="vitis")
    assert 'extern "C" void k(const float X[4], int32_t n, float Z[4]) {' in vitis.code
    assert 'extern "C" void k(const float X[4], int32_t n, float Z[4]);' in vitis.header
    for line in ("#pragma HLS interface m_axi port=X offset=slave bundle=gmem0 depth=4",
                 "#pragma HLS interface s_axilite port=n",
                 "#pragma HLS interface m_axi port=Z offset=slave bundle=gmem1 depth=4",
                 "#pragma HLS interface s_axilite port=return"):
        assert line in vitis.code
    ip = s.build(target="vhls", interface="ip")
    assert "extern" not in ip.code and "extern" not in ip.header
    assert "void k(const float X[4], int32_t n, float Z[4]) {" in ip.code
    for line in ("#pragma HLS interface ap_memory port=X", "#pragma HLS interface ap_none port=n",
                 "#pragma HLS interface ap_memory port=Z", "#pragma HLS interface ap_ctrl_hs port=return"):
        assert line in ip.code
    with pytest.raises(allo_ext.AlloError, match="interface"):
        s.build(target="vhls", interface="axis")


def test_weights_go_to_a_separate_header_as_const_arrays(tmp_path):
    m = allo_ext.customize(lin).build(target="vhls")
    assert '#include "kernel_weights.h"' in m.code
    decl = re.search(r"static const float (const_W_\w+)\[3\]\[4\] = \{(.*?)\};", m.weights, re.S)
    assert decl, m.weights
    values = [float(v.rstrip("f")) for v in re.findall(r"-?[\d.]+(?:e[-+]?\d+)?f", decl.group(2))]
    np.testing.assert_array_equal(np.array(values, dtype=np.float32), W.reshape(-1))
    assert f"{decl.group(1)}[j][k]" in m.code
    files = m.write(tmp_path / "out")
    assert sorted(files) == ["kernel.cpp", "kernel.h", "kernel_weights.h"]
    assert (tmp_path / "out" / "kernel.cpp").read_text() == m.code
    assert str(m) == m.code


def test_int_types_signedness_and_names():
    def div(A: uint8[4], int: int32[4]) -> uint8[4]:  # noqa: A002  (a C++ keyword as a name)
        Z: uint8[4]
        for i in range(4):
            Z[i] = A[i] // 3 if A[i] > 200 else uint8(int[i])
        return Z

    code = allo_ext.customize(div).build(target="vhls").code
    # 'div' is a C library function and 'int' a keyword: both get a trailing underscore
    assert 'extern "C" void div_(const uint8_t A[4], const int32_t int_[4], uint8_t Z[4]) {' in code
    # compare and divide as unsigned (uint8_t promotes to int): 200 is the i8 constant -56 read unsigned
    assert "Z[i] = A[i] > 200 ? (int8_t)(A[i] / 3) : (int8_t)int_[i];" in code


def test_index_arithmetic_uses_plain_division_for_non_negative_indices():
    def k(X: float32[12]) -> float32[6]:
        Z: float32[6]
        for i in range(6):
            Z[i] = X[(i + 3) // 2] + X[(i + 5) % 6]
        return Z

    code = allo_ext.customize(k).build(target="vhls").code
    assert "Z[i] = X[(i + 3) / 2] + X[(i + 5) % 6];" in code
    assert "allo_floordiv" not in code and "allo_mod" not in code


def test_writing_a_weight_array_is_an_error():
    def bad(X: float32[3]) -> float32[3]:
        Z: float32[3]
        for i in range(3):
            W[0, i] = X[i]
            Z[i] = X[i]
        return Z

    with pytest.raises(EmitError, match=r"test_hls_emit.py:\d+: in kernel 'bad': writes to 'const_W_\w+', which is a "
                                        "constant"):
        allo_ext.customize(bad).build(target="vhls")


def _parse(text: str):
    ctx = ir.Context()
    with ctx:
        return ctx, ir.Module.parse(text)


def test_unsupported_op_is_named_with_its_location():
    ctx, mod = _parse("""
    func.func @k(%m: memref<4xf32>) {
      %c = arith.constant 1.0 : f32
      linalg.fill ins(%c : f32) outs(%m : memref<4xf32>) loc("model.py":7:3)
      return
    }""")
    with ctx, pytest.raises(EmitError, match=r"model.py:7: in kernel 'k': the HLS emitter cannot print op "
                                             r"'linalg.fill'"):
        emit_module(mod, "k")


def test_host_only_assert_is_dropped_with_a_comment():
    ctx, mod = _parse("""
    func.func @k(%x: memref<4xf32>, %y: memref<4xf32>) {
      %t = arith.constant true
      cf.assert %t, "tensor with zero elements"
      affine.for %i = 0 to 4 {
        %v = affine.load %x[%i] : memref<4xf32>
        affine.store %v, %y[%i] : memref<4xf32>
      }
      return
    }""")
    with ctx:
        code = emit_module(mod, "k").code
    assert "// dropped host-only check cf.assert: 'tensor with zero elements'" in code
    assert "arg1[i] = arg0[i];" in code
    assert "void k(const float arg0[4], float arg1[4]) {" in code


def test_loop_carried_values_are_refused():
    ctx, mod = _parse("""
    func.func @k(%x: memref<4xf32>) -> f32 {
      %z = arith.constant 0.0 : f32
      %s = affine.for %i = 0 to 4 iter_args(%a = %z) -> (f32) {
        %v = affine.load %x[%i] : memref<4xf32>
        %n = arith.addf %a, %v : f32
        affine.yield %n : f32
      }
      return %s : f32
    }""")
    with ctx, pytest.raises(EmitError, match="iter_args"):
        emit_module(mod, "k")


def test_unsigned_index_compare_is_unsigned_in_cpp(tmp_path):
    # `cmpi ult` on index values is how a bounds check folds (0 <= i < n); printed as a signed compare,
    # a negative index would pass it. Compiled with g++ and run, so the C++ semantics are checked.
    import subprocess

    from allo_ext.backends.hls.csim import find_compiler

    ctx, mod = _parse("""
    func.func @k(%x: memref<4xi32>, %y: memref<4xi1>) {
      %n = arith.constant 4 : index
      affine.for %i = 0 to 4 {
        %v = affine.load %x[%i] : memref<4xi32>
        %j = arith.index_cast %v : i32 to index
        %c = arith.cmpi ult, %j, %n : index
        affine.store %c, %y[%i] : memref<4xi1>
      }
      return
    }""")
    with ctx:
        hls = emit_module(mod, "k")
    (tmp_path / "kernel.h").write_text(hls.header)
    (tmp_path / "kernel.cpp").write_text(hls.code)
    (tmp_path / "main.cpp").write_text(
        '#include "kernel.h"\n#include <cstdio>\n'
        "int main() { const int32_t x[4] = {-1, 0, 3, 4}; bool y[4] = {true, false, false, true};\n"
        '  k(x, y); for (int i = 0; i < 4; i++) std::printf("%d", (int)y[i]); return 0; }\n')
    exe = tmp_path / "run"
    subprocess.run([find_compiler(), "-std=c++17", "-o", str(exe), "kernel.cpp", "main.cpp"], cwd=tmp_path,
                   check=True, capture_output=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    assert out == "0110"  # -1 seen unsigned is the largest index: not below 4
