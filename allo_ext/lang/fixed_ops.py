"""Fixed-point expressions of the kernel language (a mixin of ``FunctionCompiler``).

A fixed value is its raw ``i<bits>`` integer in MLIR; what the bits mean travels in the ops that
make and combine them. They are ops of the ``allo`` namespace (unregistered in MLIR, like Allo's
own fixed-point ops; the module's context allows them), each with the type specs of its operands
and result (see :mod:`allo_ext.lang.fixed`):

=====================  ==========================  =========================================
op                     attributes                  meaning
=====================  ==========================  =========================================
allo.fixed_constant    value (raw iN), type        a constant, already rounded to ``type``
allo.fixed_cast        lhs, type                   convert (fixed/int/float) -> (fixed/int/float),
                                                   quantised with the destination's modes
allo.fixed_add/sub/mul lhs, rhs, type              exact: ``type`` is wide enough for any result
allo.fixed_neg         lhs, type                   exact negation
allo.fixed_cmp         lhs, rhs, predicate         exact comparison -> i1 (lt le gt ge eq ne)
=====================  ==========================  =========================================

Buffers holding fixed values carry ``allo.elem`` (the element spec) on their ``memref.alloc`` /
``alloca`` / ``get_global``; arguments' types are in the kernel signature. ``arith.select`` picks
between raw values of one type. ``allo_ext.passes.fixed_to_int`` rewrites all of this into plain
integer arith; the HLS emitter prints it as ap_fixed C++.
"""
from __future__ import annotations

from torch_mlir import ir
from torch_mlir.dialects import arith

from . import fixed as fx
from .errors import KernelTypeError
from .index_expr import Idx
from .types import DType, Fixed, Int
from .values import TV, Literal, LiteralSelect

_CMP = {"Lt": "lt", "LtE": "le", "Gt": "gt", "GtE": "ge", "Eq": "eq", "NotEq": "ne"}


def is_fixed_operand(v) -> bool:
    return isinstance(v, TV) and v.dtype.is_fixed


def str_attr(s: str):
    return ir.StringAttr.get(s)


def fixed_op(name: str, operands, result_type, **attrs):
    op = ir.Operation.create(f"allo.{name}", results=[result_type] if result_type is not None else [],
                             operands=list(operands), attributes={k: (str_attr(v) if isinstance(v, str) else v)
                                                                  for k, v in attrs.items()})
    return op.results[0]


def constant(value: float, t: Fixed) -> ir.Value:
    return raw_constant(int(fx.quantize(value, t).item()), t)


def raw_constant(raw: int, t: Fixed) -> ir.Value:
    it = ir.IntegerType.get_signless(t.bits)
    return fixed_op("fixed_constant", [], it, value=ir.IntegerAttr.get(it, _signless(raw, t.bits)), type=fx.spec(t))


def _signless(raw: int, bits: int) -> int:
    raw &= (1 << bits) - 1
    return raw - (1 << bits) if raw >= 1 << (bits - 1) else raw


def convert(v: TV, t: DType) -> TV:
    """``v`` converted to ``t`` (one side fixed), quantised with ``t``'s modes."""
    if v.dtype == t:
        return v
    return TV(fixed_op("fixed_cast", [v.value], t.mlir(), lhs=fx.spec(v.dtype), type=fx.spec(t)), t)


class FixedMixin:
    def fixed_view(self, node, v) -> TV:
        """A fixed or integer operand as a fixed-point TV (integers are fixed with no fraction)."""
        if isinstance(v, Idx):
            v = TV(arith.index_cast(ir.IntegerType.get_signless(64), v.materialize()), Int(64))
        if isinstance(v, TV) and v.dtype.is_index:
            v = TV(arith.index_cast(ir.IntegerType.get_signless(64), v.value), Int(64))
        if isinstance(v, TV) and v.dtype.is_fixed:
            return v
        if isinstance(v, TV) and v.dtype.is_int:
            if v.dtype.bits == 1:  # bool: 0 or 1, held as a 2-bit signed value
                return TV(arith.extui(ir.IntegerType.get_signless(2), v.value), fx.as_fixed(v.dtype))
            return TV(v.value, fx.as_fixed(v.dtype))
        raise self.err(node, f"cannot combine {self.describe(v)} with a fixed-point value: cast it explicitly, "
                             "e.g. Fixed(16, 10)(x) or float32(y)", KernelTypeError)

    def fixed_pair(self, node, a, b) -> tuple[TV, TV]:
        """Both operands as fixed TVs: a constant takes the other operand's type (rounded to it)."""
        if isinstance(a, (Literal, LiteralSelect)):
            b = self.fixed_view(node, b)
            return self.coerce(node, a, b.dtype), b
        if isinstance(b, (Literal, LiteralSelect)):
            a = self.fixed_view(node, a)
            return a, self.coerce(node, b, a.dtype)
        return self.fixed_view(node, a), self.fixed_view(node, b)

    def fixed_binop(self, node, op, a, b) -> TV:
        opn = type(op).__name__
        if opn not in ("Add", "Sub", "Mult"):
            raise self.err(node, f"operator '{opn}' is not supported on fixed-point values (only + - * and "
                                 "comparisons, max/min/abs): multiply by a reciprocal constant, or compute in "
                                 "float32 and cast back", KernelTypeError)
        a, b = self.fixed_pair(node, a, b)
        if opn == "Mult":
            t = fx.mul_type(a.dtype, b.dtype)
        else:
            t = fx.add_type(a.dtype, b.dtype, sub=opn == "Sub")
        name = {"Add": "fixed_add", "Sub": "fixed_sub", "Mult": "fixed_mul"}[opn]
        return TV(fixed_op(name, [a.value, b.value], ir.IntegerType.get_signless(t.bits),
                           lhs=fx.spec(a.dtype), rhs=fx.spec(b.dtype), type=fx.spec(t)), t)

    def fixed_neg(self, v: TV) -> TV:
        t = fx.neg_type(v.dtype)
        return TV(fixed_op("fixed_neg", [v.value], ir.IntegerType.get_signless(t.bits), lhs=fx.spec(v.dtype),
                           type=fx.spec(t)), t)

    def fixed_compare(self, node, opn: str, a, b) -> TV:
        a, b = self.fixed_pair(node, a, b)
        return TV(fixed_op("fixed_cmp", [a.value, b.value], ir.IntegerType.get_signless(1), lhs=fx.spec(a.dtype),
                           rhs=fx.spec(b.dtype), predicate=_CMP[opn]), Int(1))

    def fixed_minmax(self, node, is_max: bool, a, b) -> TV:
        a, b = self.fixed_pair(node, a, b)
        if a.dtype != b.dtype:
            t = fx.common_type(a.dtype, b.dtype)
            a, b = convert(a, t), convert(b, t)
        c = self.fixed_compare(node, "Gt" if is_max else "Lt", a, b)
        return TV(arith.select(c.value, a.value, b.value), a.dtype)

    def fixed_abs(self, node, v: TV) -> TV:
        n = self.fixed_neg(v)
        neg = self.fixed_compare(node, "Lt", v, Literal(0))
        return TV(arith.select(neg.value, n.value, convert(v, n.dtype).value), n.dtype)

    def fixed_coerce(self, node, v, t: Fixed) -> TV:
        """``v`` stored into a ``t`` (assignment, store, argument): quantised with ``t``'s modes."""
        if isinstance(v, LiteralSelect):
            a, b = self.fixed_coerce(node, v.a, t), self.fixed_coerce(node, v.b, t)
            return TV(arith.select(v.cond.value, a.value, b.value), t)
        if isinstance(v, Literal):
            return TV(constant(float(v.value), t), t)
        if isinstance(v, Idx):
            v = self.fixed_view(node, v)
        if not isinstance(v, TV):
            raise self.err(node, f"expected a {t} scalar, got {self.describe(v)}", KernelTypeError)
        if v.dtype.is_index:
            v = self.fixed_view(node, v)
        return convert(v, t)

    def fixed_cast(self, node, v, t: DType):
        """An explicit cast with a fixed source or destination."""
        if isinstance(v, Literal):
            if t.is_fixed:
                return TV(constant(float(v.value), t), t)
            return self.coerce(node, Literal(float(v.value) if t.is_float else int(v.value)), t)
        if isinstance(v, Idx) or (isinstance(v, TV) and v.dtype.is_index):
            v = self.fixed_view(node, v) if t.is_fixed else v
        if not isinstance(v, TV):
            raise self.err(node, f"cannot cast {self.describe(v)} to {t}", KernelTypeError)
        if t.is_index:  # via int64
            i = convert(v, Int(64))
            return TV(arith.index_cast(ir.IndexType.get(), i.value), t)
        return convert(v, t)
