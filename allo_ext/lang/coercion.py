"""Typing rules of the kernel language: literals adopt the other operand's type, two typed values
must agree (or be cast explicitly), and casts between every pair of types.

A mixin of ``FunctionCompiler`` (it uses the compiler's ``err``).
"""
from __future__ import annotations

from torch_mlir import ir
from torch_mlir.dialects import arith

from . import implicit
from .errors import KernelTypeError
from .index_expr import Idx
from .types import ArrayType, DType, Int, index as index_t
from .values import TV, Buffer, Literal, LiteralSelect


class CoercionMixin:
    def describe(self, v) -> str:
        if isinstance(v, TV):
            return f"a {v.dtype} value"
        if isinstance(v, Literal):
            return f"the constant {v.value!r}"
        if isinstance(v, Buffer):
            return f"the array '{v.name}' ({v.type})"
        return repr(v)

    def as_index(self, node, v) -> Idx:
        if isinstance(v, Idx):
            return v
        if isinstance(v, Literal) and isinstance(v.value, (int, bool)):
            return Idx.const(int(v.value))
        if isinstance(v, TV) and v.dtype.is_index:
            return Idx.leaf(v.value, affine_ok=False)
        if implicit.enabled() and isinstance(v, (TV, Literal)) and not (isinstance(v, TV) and v.dtype.is_fixed):
            return Idx.leaf(self.cast(node, v, index_t).value, affine_ok=False)
        raise self.err(node, f"subscripts must be indices (loop variables and ints), got {self.describe(v)}; "
                             "convert with index(...)", KernelTypeError)

    def as_bool(self, node, v):
        if isinstance(v, Literal):
            return Literal(bool(v.value))
        if isinstance(v, TV) and v.dtype == Int(1):
            return v
        if implicit.enabled() and isinstance(v, (TV, Idx)):  # Allo: a number as a condition means != 0
            return self.as_bool(node, self.expr_compare_ne_zero(node, v))
        raise self.err(node, f"a condition must be a comparison or bool, got {self.describe(v)}", KernelTypeError)

    def unify(self, node, a, b) -> tuple[TV, TV]:
        if implicit.enabled():  # Allo: an index meets other values as an index-typed value
            a = TV(a.materialize(), index_t) if isinstance(a, Idx) else a
            b = TV(b.materialize(), index_t) if isinstance(b, Idx) else b
        if isinstance(a, LiteralSelect) and isinstance(b, TV):
            return self.coerce(node, a, b.dtype), b
        if isinstance(b, LiteralSelect) and isinstance(a, TV):
            return a, self.coerce(node, b, a.dtype)
        if isinstance(a, Literal) and isinstance(b, TV):
            return self.coerce(node, a, b.dtype), b
        if isinstance(b, Literal) and isinstance(a, TV):
            return a, self.coerce(node, b, a.dtype)
        if not (isinstance(a, TV) and isinstance(b, TV)):
            raise self.err(node, f"cannot combine {self.describe(a)} with {self.describe(b)}", KernelTypeError)
        if a.dtype != b.dtype and implicit.enabled() and implicit.promote(a.dtype, b.dtype) is not None:
            t = implicit.promote(a.dtype, b.dtype)
            return self.cast(node, a, t), self.cast(node, b, t)
        if a.dtype != b.dtype:
            raise self.err(node, f"type mismatch: {a.dtype} and {b.dtype}; convert one explicitly, e.g. "
                                 f"{b.dtype}(x)", KernelTypeError)
        return a, b

    def coerce(self, node, v, t: DType) -> TV:
        """``v`` as type ``t``: literals adopt it; typed values must already have it, except that a
        fixed-point destination quantises whatever it is given (ap_fixed's assignment)."""
        if t.is_fixed:
            return self.fixed_coerce(node, v, t)
        if isinstance(v, TV) and v.dtype.is_fixed and v.dtype != t:
            raise self.err(node, f"type mismatch: a {v.dtype} value where {t} is expected; convert explicitly "
                                 f"with {t}(...)", KernelTypeError)
        if isinstance(v, LiteralSelect):
            a, b = self.coerce(node, v.a, t), self.coerce(node, v.b, t)
            return TV(arith.select(v.cond.value, a.value, b.value), t)
        if isinstance(v, Literal):
            x = v.value
            if t.is_float:
                return TV(arith.constant(t.mlir(), float(x)), t)
            if isinstance(x, float) and not float(x).is_integer() and implicit.enabled() and not t.is_fixed:
                return TV(arith.constant(t.mlir(), int(x)), t)  # Allo truncates a float constant
            if isinstance(x, float) and not float(x).is_integer():
                raise self.err(node, f"the float constant {x!r} cannot be used as {t}", KernelTypeError)
            return TV(arith.constant(t.mlir(), int(x)), t)
        if isinstance(v, Idx):
            if t.is_index:
                return TV(v.materialize(), t)
            if implicit.enabled() and not t.is_fixed:
                return self.cast(node, v, t)
            raise self.err(node, f"type mismatch: index and {t}; convert explicitly with {t}(i)", KernelTypeError)
        if not isinstance(v, TV):
            raise self.err(node, f"expected a {t} scalar, got {self.describe(v)}", KernelTypeError)
        if v.dtype != t and implicit.enabled() and implicit.promote(v.dtype, t) is not None:
            return self.cast(node, v, t)
        if v.dtype != t:
            raise self.err(node, f"type mismatch: {v.dtype} value where {t} is expected; convert explicitly "
                                 f"with {t}(...)", KernelTypeError)
        return v

    def check_same_type(self, node, got: ArrayType, want: ArrayType, what: str):
        if got != want:
            raise self.err(node, f"type mismatch for {what}: expected {want}, got {got}", KernelTypeError)

    def cast(self, node, v, t: DType) -> TV | Literal:
        if t.is_fixed or (isinstance(v, TV) and v.dtype.is_fixed):
            return self.fixed_cast(node, v, t)
        if isinstance(v, Literal):
            return self.coerce(node, Literal(float(v.value) if t.is_float else int(v.value)), t)
        if isinstance(v, Idx):
            v = TV(v.materialize(), index_t)
        if not isinstance(v, TV):
            raise self.err(node, f"cannot cast {self.describe(v)} to {t}", KernelTypeError)
        s, x = v.dtype, v.value
        if s == t:
            return v
        tm = t.mlir()
        if s.is_index or t.is_index:
            if s.is_index and t.is_float:
                return TV(arith.sitofp(tm, arith.index_cast(ir.IntegerType.get_signless(64), x)), t)
            if s.is_float and t.is_index:
                return TV(arith.index_cast(tm, arith.fptosi(ir.IntegerType.get_signless(64), x)), t)
            return TV(arith.index_cast(tm, x), t)
        if s.is_float and t.is_float:
            return TV(arith.extf(tm, x) if t.bits > s.bits else arith.truncf(tm, x), t)
        if s.is_float:
            return TV(arith.fptosi(tm, x) if t.signed else arith.fptoui(tm, x), t)
        if t.is_float:
            return TV(arith.sitofp(tm, x) if s.signed else arith.uitofp(tm, x), t)
        if t.bits > s.bits:
            return TV(arith.extsi(tm, x) if s.signed else arith.extui(tm, x), t)
        if t.bits < s.bits:
            return TV(arith.trunci(tm, x), t)
        return TV(x, t)

    def expr_compare_ne_zero(self, node, v):
        if isinstance(v, Idx):
            v = TV(v.materialize(), index_t)
        if v.dtype.is_float:
            return TV(arith.cmpf(13, v.value, arith.constant(v.dtype.mlir(), 0.0)), Int(1))  # une
        return TV(arith.cmpi(1, v.value, arith.constant(v.dtype.mlir(), 0)), Int(1))
