"""``math.exp`` on float32 vectors as arithmetic the CPU runs lane-parallel.

LLVM lowers a vector ``llvm.exp`` to one libm ``expf`` call per lane, which cost the vectorised
softmax most of its gain. MLIR's own polynomial approximation (``populateMathPolynomial
ApproximationPatterns``) is not exposed as a pass in the torch-mlir wheel's bindings, so the
approximation is written here, as an MLIR function each vector ``math.exp`` calls (LLVM inlines it).

The method is the classic Cody-Waite range reduction with Cephes' ``expf`` minimax polynomial:
``exp(x) = 2^n * exp(r)``, ``n = round(x / ln 2)``, ``r = x - n ln 2`` (``ln 2`` split in two so that
``n * C1`` is exact), ``exp(r)`` by a degree-6 polynomial on ``|r| <= ln(2) / 2``. Measured against
torch (``tests/test_cpu_lanes.py``): relative error below 2.5e-7 where ``exp(x)`` is a normal
float. ``2^n`` is built from exponent bits in two halves, so that ``n`` from -150 to 128 gives a
gradual underflow to 0 and no overflow of the exponent field. ``x > 88.7228`` gives +inf, very
negative ``x`` (and -inf) 0, NaN stays NaN. Scalar ``math.exp`` keeps libm's ``expf``.
"""
from __future__ import annotations

from torch_mlir import ir

EXP_HI = 88.72283935546875   # ln(FLT_MAX), as a float32: above it exp overflows
EXP_LO = -104.0             # below it exp(x) rounds to 0 in float32 (denormals included)


def _function_text(name: str, n: int) -> str:
    v, vi = f"vector<{n}xf32>", f"vector<{n}xi32>"

    def c(val, t=v):
        return f"arith.constant dense<{val}> : {t}"

    return f"""
func.func private @{name}(%x: {v}) -> {v} {{
  %hi = {c(f'{EXP_HI:.17e}')}
  %lo = {c(f'{EXP_LO:.17e}')}
  %inf = {c('0x7F800000')}
  %log2e = {c('1.44269504088896341e+00')}
  %half = {c('5.0e-01')}
  %one = {c('1.0e+00')}
  %c1 = {c('6.93359375e-01')}
  %c2 = {c('-2.12194440e-04')}
  %p0 = {c('1.9875691500e-04')}
  %p1 = {c('1.3981999507e-03')}
  %p2 = {c('8.3334519073e-03')}
  %p3 = {c('4.1665795894e-02')}
  %p4 = {c('1.6666665459e-01')}
  %p5 = {c('5.0000001201e-01')}
  %bias = {c(127, vi)}
  %sh = {c(23, vi)}
  %i1 = {c(1, vi)}
  %xa = arith.minimumf %x, %hi : {v}
  %xc = arith.maximumf %xa, %lo : {v}
  %t = arith.mulf %xc, %log2e : {v}
  %t2 = arith.addf %t, %half : {v}
  %fn = math.floor %t2 : {v}
  %a1 = arith.mulf %fn, %c1 : {v}
  %r1 = arith.subf %xc, %a1 : {v}
  %a2 = arith.mulf %fn, %c2 : {v}
  %r = arith.subf %r1, %a2 : {v}
  %z = arith.mulf %r, %r : {v}
  %q0 = arith.mulf %p0, %r : {v}
  %q1 = arith.addf %q0, %p1 : {v}
  %q2 = arith.mulf %q1, %r : {v}
  %q3 = arith.addf %q2, %p2 : {v}
  %q4 = arith.mulf %q3, %r : {v}
  %q5 = arith.addf %q4, %p3 : {v}
  %q6 = arith.mulf %q5, %r : {v}
  %q7 = arith.addf %q6, %p4 : {v}
  %q8 = arith.mulf %q7, %r : {v}
  %q9 = arith.addf %q8, %p5 : {v}
  %qa = arith.mulf %q9, %z : {v}
  %qb = arith.addf %qa, %r : {v}
  %y = arith.addf %qb, %one : {v}
  %n = arith.fptosi %fn : {v} to {vi}
  %n1 = arith.shrsi %n, %i1 : {vi}
  %n2 = arith.subi %n, %n1 : {vi}
  %e1 = arith.addi %n1, %bias : {vi}
  %e2 = arith.addi %n2, %bias : {vi}
  %b1 = arith.shli %e1, %sh : {vi}
  %b2 = arith.shli %e2, %sh : {vi}
  %s1 = arith.bitcast %b1 : {vi} to {v}
  %s2 = arith.bitcast %b2 : {vi} to {v}
  %y1 = arith.mulf %y, %s1 : {v}
  %y2 = arith.mulf %y1, %s2 : {v}
  %zero = {c('0.0')}
  %tiny = arith.cmpf olt, %x, %lo : {v}
  %y0 = arith.select %tiny, %zero, %y2 : vector<{n}xi1>, {v}
  %big = arith.cmpf ogt, %x, %hi : {v}
  %y3 = arith.select %big, %inf, %y0 : vector<{n}xi1>, {v}
  %nan = arith.cmpf uno, %x, %x : {v}
  %y4 = arith.select %nan, %x, %y3 : vector<{n}xi1>, {v}
  return %y4 : {v}
}}
"""


def expand_vector_exp(module: ir.Module) -> int:
    """Replace every ``math.exp`` on a 1-D float32 vector by a call of the approximation above
    (one private function per vector width). Returns the number of ops replaced."""
    from torch_mlir.dialects import func

    found = []

    def cb(op):
        if op.name == "math.exp":
            t = op.results[0].type
            if isinstance(t, ir.VectorType) and t.rank == 1 and isinstance(t.element_type, ir.F32Type):
                found.append((op, t.shape[0]))
        return ir.WalkResult.ADVANCE

    module.operation.walk(cb)
    if not found:
        return 0
    names = {}
    for n in sorted({n for _, n in found}):
        names[n] = f"__allo_exp_v{n}f32"
        module.body.append(ir.Operation.parse(_function_text(names[n], n)))
    for op, n in found:
        with op.location, ir.InsertionPoint(op):
            call = func.CallOp([op.results[0].type], ir.FlatSymbolRefAttr.get(names[n]), [op.operands[0]])
        op.results[0].replace_all_uses_with(call.results[0])
        op.erase()
    return len(found)
