"""Lower fixed point to plain integer arithmetic: ``fixed_to_int(module)``.

Contract
--------
Input: a module from the kernel language (``allo_ext.customize(...).module`` or a copy of it), in
which fixed-point values are raw ``i<bits>`` integers and the fixed-point operations are the ops
listed in :mod:`allo_ext.lang.fixed_ops` (``allo.fixed_constant``, ``allo.fixed_cast``,
``allo.fixed_add``, ``allo.fixed_sub``, ``allo.fixed_mul``, ``allo.fixed_neg``, ``allo.fixed_cmp``).
Its context must allow unregistered dialects (the language's contexts do).

Output: the same module, rewritten in place and returned, with no ``allo.*`` op left: only
``arith`` (and, for conversions from and to floats, ``math.floor``) on signless integers. Function
signatures and memref types do not change: a fixed value of ``bits`` bits stays an ``i<bits>``
holding ``value * 2**frac`` (two's complement when signed, zero-extended when not). The
``allo.elem`` attributes on buffers are kept as documentation of what their integers mean.

Semantics (ap_fixed's, bit for bit; the HLS backend's C simulation with Xilinx's ap_types is the
independent check, see ``hwtests/test_fixed_exact.py``):

- ``+ - *`` and negation are exact: operands are sign/zero-extended to the result width and
  aligned to its fraction by a left shift.
- conversions quantise with the destination's mode when fraction bits are dropped (TRN: floor by an
  arithmetic shift; RND: add the first dropped bit; the other ap_fixed modes likewise from the
  dropped bits and the sign), then handle overflow with its mode (WRAP: keep the low bits; SAT:
  clamp to the range; SAT_ZERO: 0; SAT_SYM: clamp to +-max).
- fixed -> integer truncates toward zero, then keeps the low bits (C's and ap_fixed's to_int);
  fixed -> float rounds to nearest even (``sitofp``, then an exact scaling by a power of two);
  float -> fixed quantises the exactly scaled value ``x * 2**frac`` with the mode, NaN becomes 0.
- comparisons are exact, in a signed type wide enough for both operands.

Widths of intermediates are whatever exactness needs (products of two 64-bit values are 128-bit);
LLVM legalises them.
"""
from __future__ import annotations

from torch_mlir import ir
from torch_mlir.dialects import arith, math

from ..lang import fixed as fx
from ..lang.errors import AlloError
from ..lang.types import DType, Fixed

FIXED_OPS = ("allo.fixed_constant", "allo.fixed_cast", "allo.fixed_add", "allo.fixed_sub", "allo.fixed_mul",
             "allo.fixed_neg", "allo.fixed_cmp")

_CMPI = {"lt": 2, "le": 3, "gt": 4, "ge": 5, "eq": 0, "ne": 1}  # signed predicates


def fixed_to_int(module: ir.Module) -> ir.Module:
    """Rewrite every ``allo.fixed_*`` op of ``module`` into integer arith (in place); returns ``module``."""
    ops = []

    def cb(op):
        if op.name.startswith("allo."):
            ops.append(op)
        return ir.WalkResult.ADVANCE

    module.operation.walk(cb)
    with module.context:
        for op in ops:
            if op.name not in FIXED_OPS:
                raise AlloError(f"fixed_to_int: unknown op '{op.name}' at {op.location}")
            with op.location, ir.InsertionPoint(op):
                new = _lower(op)
            op.results[0].replace_all_uses_with(new)
            op.erase()
    return module


def has_fixed(module: ir.Module) -> bool:
    found = []

    def cb(op):
        if op.name.startswith("allo.fixed_"):
            found.append(op)
            return ir.WalkResult.INTERRUPT
        return ir.WalkResult.ADVANCE

    module.operation.walk(cb)
    return bool(found)


# ---------------------------------------------------------------------------- building blocks
def _i(w: int):
    return ir.IntegerType.get_signless(w)


def _const(w: int, v: int):
    v &= (1 << w) - 1
    if v >= 1 << (w - 1):
        v -= 1 << w
    return arith.constant(_i(w), v)


def _width(v) -> int:
    return ir.IntegerType(v.type).width


def _resize(v, signed: bool, w: int):
    """``v`` (of its own width) as a ``w``-bit integer: sign/zero extension or truncation."""
    cur = _width(v)
    if w == cur:
        return v
    if w < cur:
        return arith.trunci(_i(w), v)
    return arith.extsi(_i(w), v) if signed else arith.extui(_i(w), v)


def _select(c, a, b):
    return arith.select(c, a, b)


def _attr(op, name) -> str:
    return ir.StringAttr(op.attributes[name]).value


# ---------------------------------------------------------------------------- ops
def _lower(op):
    name = op.name
    t = fx.from_spec(_attr(op, "type")) if "type" in op.attributes else None
    if name == "allo.fixed_constant":
        return arith.constant(_i(t.bits), ir.IntegerAttr(op.attributes["value"]).value)
    src = fx.from_spec(_attr(op, "lhs"))
    a = op.operands[0]
    if name == "allo.fixed_cast":
        return convert(a, src, t)
    if name == "allo.fixed_neg":
        x = _resize(a, src.signed, t.bits)
        return arith.subi(_const(t.bits, 0), x)
    rhs = fx.from_spec(_attr(op, "rhs"))
    b = op.operands[1]
    if name == "allo.fixed_cmp":
        c = fx.common_type(_fixed(src), _fixed(rhs))
        w = c.bits + 1  # signed, with room for an unsigned operand's top bit
        x, y = _align(a, _fixed(src), w, c.frac), _align(b, _fixed(rhs), w, c.frac)
        return arith.cmpi(_CMPI[_attr(op, "predicate")], x, y)
    if name == "allo.fixed_mul":  # the raw product has frac1 + frac2 fraction bits: no alignment
        return arith.muli(_align(a, _fixed(src), t.bits, _fixed(src).frac), _align(b, _fixed(rhs), t.bits, _fixed(rhs).frac))
    x, y = _align(a, _fixed(src), t.bits, t.frac), _align(b, _fixed(rhs), t.bits, t.frac)
    return (arith.addi if name == "allo.fixed_add" else arith.subi)(x, y)


def _fixed(t: DType) -> Fixed:
    return fx.as_fixed(t) if not t.is_fixed else t


def _align(v, t: Fixed, w: int, frac: int):
    """Raw ``v`` of type ``t`` as a ``w``-bit raw integer with ``frac`` (>= t.frac) fraction bits."""
    if t.bits == 2 and _width(v) == 1:  # a bool viewed as Fixed(2, 0)
        v = arith.extui(_i(2), v)
    sh = frac - t.frac
    x = _resize(v, t.signed, w)
    return arith.shli(x, _const(w, sh)) if sh else x


def convert(v, src: DType, dst: DType):
    """The conversion ``allo.fixed_cast`` stands for; one of src/dst is fixed."""
    if src.is_float:
        return _from_float(v, src, dst)
    if dst.is_float:
        return _to_float(v, _fixed(src), dst)
    if dst.is_fixed:
        s = _fixed(src)
        if src.is_int and src.bits == 1:
            v = arith.extui(_i(2), v)
        return _fixed_to_fixed(v, s, dst)
    if dst.is_int:
        if dst.bits == 1:
            raise AlloError("fixed_to_int: a fixed-point value cannot be cast to bool; compare it instead")
        return _to_int(v, _fixed(src), dst)
    raise AlloError(f"fixed_to_int: no conversion from {src} to {dst}")


def _quantize_int(v, w: int, d: int, q: str):
    """Signed ``w``-bit ``v`` divided by ``2**d`` (d > 0, w >= d + 2), rounded with mode ``q``; w bits."""
    t = arith.shrsi(v, _const(w, d))
    if q == "TRN":
        return t
    rem = arith.andi(v, _const(w, (1 << d) - 1))
    half = _const(w, 1 << (d - 1))
    zero = _const(w, 0)
    neg = arith.cmpi(2, v, zero)
    if q == "TRN_ZERO":
        inc = arith.andi(neg, arith.cmpi(1, rem, zero))
    elif q == "RND":
        inc = arith.cmpi(9, rem, half)  # uge
    elif q == "RND_MIN_INF":
        inc = arith.cmpi(8, rem, half)  # ugt
    else:
        gt = arith.cmpi(8, rem, half)
        tie = arith.cmpi(0, rem, half)
        if q == "RND_ZERO":
            extra = neg
        elif q == "RND_INF":
            extra = arith.xori(neg, arith.constant(_i(1), 1))
        elif q == "RND_CONV":
            extra = arith.trunci(_i(1), t)  # t odd
        else:
            raise AlloError(f"fixed_to_int: unknown quantisation mode {q}")
        inc = arith.ori(gt, arith.andi(tie, extra))
    return arith.addi(t, arith.extui(_i(w), inc))


def _overflow(q, w: int, dst: Fixed):
    """Signed ``w``-bit integer ``q`` (units of the destination's LSB) into ``dst``'s raw bits."""
    if w < dst.bits + 1:
        q = _resize(q, True, dst.bits + 1)
        w = dst.bits + 1
    o = dst.o
    if o != "WRAP":
        lo, hi = dst.raw_min, dst.raw_max
        if o == "SAT_SYM" and dst.signed:
            lo = -hi
        below = arith.cmpi(2, q, _const(w, lo))
        above = arith.cmpi(4, q, _const(w, hi))
        if o == "SAT_ZERO":
            zero = _const(w, 0)
            q = _select(arith.ori(below, above), zero, q)
        else:
            q = _select(below, _const(w, lo), _select(above, _const(w, hi), q))
    return _resize(q, True, dst.bits)


def _fixed_to_fixed(v, src: Fixed, dst: Fixed):
    d = src.frac - dst.frac
    if d <= 0:
        w = max(src.bits + 1 - d, dst.bits + 1)
        x = _resize(v, src.signed, w)
        if d < 0:
            x = arith.shli(x, _const(w, -d))
        return _overflow(x, w, dst)
    w = max(src.bits, d) + 2
    x = _resize(v, src.signed, w)
    return _overflow(_quantize_int(x, w, d, dst.q), w, dst)


def _to_int(v, src: Fixed, dst):
    """Truncation toward zero, then the low bits (ap_fixed's to_int, C's float-to-int)."""
    if src.frac <= 0:
        w = max(src.bits + 1 - src.frac, dst.bits)
        x = _resize(v, src.signed, w)
        if src.frac < 0:
            x = arith.shli(x, _const(w, -src.frac))
        return _resize(x, True, dst.bits)
    w = max(src.bits, src.frac) + 2
    x = _resize(v, src.signed, w)
    return _resize(_quantize_int(x, w, src.frac, "TRN_ZERO"), True, dst.bits)


def _fpow2(ft, e: int):
    return arith.constant(ft, float(2.0 ** e))


def _to_float(v, src: Fixed, dst):
    ft = dst.mlir()
    if src.bits == 2 and _width(v) == 1:
        v = arith.extui(_i(2), v)
    f = arith.sitofp(ft, v) if src.signed else arith.uitofp(ft, v)
    if src.frac == 0:
        return f
    return arith.mulf(f, _fpow2(ft, -src.frac))  # exact: a power of two (no subnormals at our widths)


def _from_float(v, src, dst):
    f64 = ir.F64Type.get()
    if not dst.is_fixed:
        raise AlloError(f"fixed_to_int: float to {dst} is not a fixed-point conversion")
    x = arith.extf(f64, v) if src.bits == 32 else v
    zero = arith.constant(f64, 0.0)
    x = _select(arith.cmpf(14, x, x), zero, x)  # uno: NaN -> 0
    y = arith.mulf(x, _fpow2(f64, dst.frac))
    fl = math.floor(y)
    rem = arith.subf(y, fl)
    half = arith.constant(f64, 0.5)
    one = arith.constant(f64, 1.0)
    q = dst.q
    neg = arith.cmpf(4, y, zero)  # olt
    gt = arith.cmpf(2, rem, half)  # ogt
    tie = arith.cmpf(1, rem, half)  # oeq
    if q == "TRN":
        inc = None
    elif q == "TRN_ZERO":
        inc = arith.andi(neg, arith.cmpf(13, rem, zero))  # une
    elif q == "RND":
        inc = arith.cmpf(3, rem, half)  # oge
    elif q == "RND_MIN_INF":
        inc = gt
    elif q == "RND_ZERO":
        inc = arith.ori(gt, arith.andi(tie, neg))
    elif q == "RND_INF":
        inc = arith.ori(gt, arith.andi(tie, arith.cmpf(2, y, zero)))
    elif q == "RND_CONV":
        odd = arith.cmpf(13, arith.remf(fl, arith.constant(f64, 2.0)), zero)
        inc = arith.ori(gt, arith.andi(tie, odd))
    else:
        raise AlloError(f"fixed_to_int: unknown quantisation mode {q}")
    r = fl if inc is None else _select(inc, arith.addf(fl, one), fl)
    # bring r into the range of a wide integer without changing the outcome of the overflow mode
    span = arith.constant(f64, float(2.0 ** dst.bits))
    if dst.o == "WRAP":
        r = arith.remf(r, span)  # exact; keeps the value modulo 2**bits
    else:
        r = arith.minimumf(arith.maximumf(r, arith.negf(span)), span)
    w = 64 if dst.bits <= 61 else 128
    i = arith.fptosi(_i(w), r)
    return _overflow(i, w, dst)
