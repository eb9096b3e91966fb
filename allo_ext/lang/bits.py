"""Bit access on integers, as in Allo: ``x[i]`` (one bit, a ``UInt(1)``), ``x[lo:hi]`` (bits lo..hi-1,
a ``UInt(hi - lo)``), assignment to either (``b[0] = v``, ``B[i][0:2] = v``, ``v[0:16] += r``),
``x.reverse()`` (bit order reversed) and ``x.bitcast()`` (same bits as a float of the same width,
or a float's bits as an unsigned integer).

Bounds may be run-time indices (``A[i - 1 : i]``) as long as the width is a compile-time constant.
A mixin of ``FunctionCompiler``.
"""
from __future__ import annotations

import ast

from torch_mlir import ir
from torch_mlir.dialects import arith, memref

from .index_expr import Idx
from .types import Float, Int
from .values import TV, Literal, ScalarVar


class BitsMixin:
    def _bit_range(self, node, sl):
        """(lo as an Idx, width) of a subscript: an index ``i`` or a slice ``lo:hi``."""
        if isinstance(sl, ast.Slice):
            if sl.step is not None or sl.lower is None or sl.upper is None:
                raise self.err(node, "bit slices are written x[lo:hi] with both bounds and no step")
            lo = self.as_index(node, self.eval(sl.lower))
            hi = self.as_index(node, self.eval(sl.upper))
            d = hi - lo
            if not d.is_const or d.a < 1:
                raise self.err(node, f"the width of bit slice '{ast.unparse(sl)}' must be a positive compile-time "
                                     "constant")
            return lo, int(d.a)
        return self.as_index(node, self.eval(sl)), 1

    def _int_operand(self, node, v) -> TV:
        if isinstance(v, Idx) or (isinstance(v, TV) and v.dtype.is_index):
            v = self.cast(node, v, Int(64))
        if not isinstance(v, TV) or not v.dtype.is_int:
            raise self.err(node, f"bit access needs an integer value, got {self.describe(v)}")
        return v

    def _shift_amount(self, lo: Idx, t) -> ir.Value:
        return arith.index_cast(t.mlir(), lo.materialize())

    def bit_get(self, node, v, sl) -> TV:
        v = self._int_operand(node, v)
        lo, width = self._bit_range(node, sl)
        if lo.is_const and lo.a + width > v.dtype.bits:
            raise self.err(node, f"bits {lo.a}..{lo.a + width - 1} are outside the {v.dtype.bits} bits of {v.dtype}")
        t = v.dtype
        shifted = arith.shrui(v.value, self._shift_amount(lo, t))
        out = Int(width, signed=False)
        return TV(arith.trunci(out.mlir(), shifted) if width < t.bits else shifted, out)

    def bit_set(self, node, old: TV, sl, val) -> TV:
        """``old`` with the bits of ``sl`` replaced by the low bits of ``val``."""
        old = self._int_operand(node, old)
        lo, width = self._bit_range(node, sl)
        t = old.dtype
        if isinstance(val, Literal):
            val = TV(arith.constant(t.mlir(), int(val.value)), t)
        val = self._int_operand(node, val)
        if val.dtype.bits < t.bits:
            v = arith.extui(t.mlir(), val.value)
        elif val.dtype.bits > t.bits:
            v = arith.trunci(t.mlir(), val.value)
        else:
            v = val.value
        sh = self._shift_amount(lo, t)
        ones = arith.constant(t.mlir(), (1 << width) - 1 if width < t.bits else -1)
        mask = arith.shli(ones, sh)
        allones = arith.constant(t.mlir(), -1)
        cleared = arith.andi(old.value, arith.xori(mask, allones))
        return TV(arith.ori(cleared, arith.andi(arith.shli(v, sh), mask)), t)

    def store_bits(self, target: ast.Subscript, val, node) -> bool:
        """``x[...] = val`` where ``x`` is an integer scalar or an array element: True if handled."""
        inner = target.value
        if isinstance(inner, ast.Name):
            var = self.lookup(inner.id)
            if isinstance(var, ScalarVar) and var.dtype.is_int:
                cur = TV(memref.load(var.slot, []), var.dtype)
                self.store_scalar(var, self.bit_set(node, cur, target.slice, val))
                return True
            return False
        if isinstance(inner, ast.Subscript):
            base = self.eval(inner.value)
            r = self.index_or_view(inner, base)
            if isinstance(r, tuple) and r[0].type.dtype.is_int:
                buf, idx = r
                self.store(buf, idx, self.bit_set(node, self.load(buf, idx), target.slice, val))
                return True
        return False

    def bit_method(self, node, v, name: str):
        if name == "reverse":
            v = self._int_operand(node, v)
            t, w = v.dtype, v.dtype.bits
            acc = arith.constant(t.mlir(), 0)
            one = arith.constant(t.mlir(), 1)
            for k in range(w):
                bit = arith.andi(arith.shrui(v.value, arith.constant(t.mlir(), k)), one)
                acc = arith.ori(acc, arith.shli(bit, arith.constant(t.mlir(), w - 1 - k)))
            return TV(acc, t)
        if name == "bitcast":
            if isinstance(v, TV) and v.dtype.is_float:
                out = Int(v.dtype.bits, signed=False)
                return TV(arith.bitcast(out.mlir(), v.value), out)
            v = self._int_operand(node, v)
            if v.dtype.bits not in (16, 32, 64):
                raise self.err(node, f"bitcast of {v.dtype}: only 16, 32 and 64 bits have a float of that width")
            out = Float(v.dtype.bits)
            return TV(arith.bitcast(out.mlir(), v.value), out)
        raise self.err(node, f"unknown method '{name}'")
