"""The fixed-point ops of the kernel language (``allo.fixed_*``, see ``allo_ext/lang/fixed_ops.py``)
as ap_fixed C++: every fixed value is an ``ap_fixed<W, W - frac, Q, O>`` (``ap_ufixed`` when
unsigned), so g++ computes with Xilinx's ap_types and C simulation checks our integer lowering
(``allo_ext/passes/fixed_to_int.py``) independently.

- constants: ``T(0.75)`` (the exact decimal of the raw value), or from raw bits above 53 bits;
- ``+ - *`` and negation: ap_fixed's own operators, which are exact, as the language's ops are;
- conversions: ap_fixed's constructor (quantisation and overflow of the destination type);
  to float ``.to_float()``/``.to_double()``; to integers through a type with at least one integer
  bit (ap_fixed's ``to_int`` gives -1 for negative values of types without one) and ``to_int64()``,
  which truncates toward zero, then C's conversion to the integer width;
- comparisons: ap_fixed's exact operators.
"""
from __future__ import annotations

from ...lang import fixed as fx
from ...lang.types import Fixed
from . import cpp
from .common import attr_str
from .cpp import ADD, EQ, MUL, REL, E

_PRED = {"lt": ("<", REL), "le": ("<=", REL), "gt": (">", REL), "ge": (">=", REL), "eq": ("==", EQ), "ne": ("!=", EQ)}


class FixedOps:
    def _fx_type(self, op, name="type"):
        return fx.from_spec(attr_str(op, name))

    def _fx_ctype(self, t) -> str:
        return cpp.dtype_ctype(t, self.me.needs)

    def _fx_operand(self, op, k: int, spec_attr: str) -> E:
        """Operand k as an ap value: integers (fixed point with no fraction in the op's view) are
        converted explicitly, so no C++ integer promotion takes part."""
        t = fx.from_spec(attr_str(op, spec_attr))
        x = op.operands[k]
        e = self.v(x)
        if x in self.fx:
            return e
        if t.is_fixed:
            self.me.needs.headers.add("ap_fixed.h")
            return cpp.call(self._fx_ctype(t), e)
        return e

    def op_allo_fixed_constant(self, op, pos):
        t = self._fx_type(op)
        self.note_fixed(op.results[0], t)
        raw = int(op.attributes["value"].value)
        ct = self._fx_ctype(t)
        if t.bits <= 53:
            val = fx.dequantize(raw, t).item()
            e = cpp.call(ct, cpp.float_literal(val, 64))
        else:
            self.me.needs.helpers.add("fixed_raw")
            e = E(f"allo_fixed_raw<{ct}, {t.bits}>({raw & ((1 << t.bits) - 1)}ULL)")
        self.vals[op.results[0]] = e if self.nuses(op.results[0]) else e

    def _fx_binary(self, op, pos, sym: str, prec: int):
        t = self._fx_type(op)
        self.note_fixed(op.results[0], t)
        a, b = self._fx_operand(op, 0, "lhs"), self._fx_operand(op, 1, "rhs")
        self.define(op, pos, cpp.binary(a, sym, b, prec))

    def op_allo_fixed_add(self, op, pos):
        self._fx_binary(op, pos, "+", ADD)

    def op_allo_fixed_sub(self, op, pos):
        self._fx_binary(op, pos, "-", ADD)

    def op_allo_fixed_mul(self, op, pos):
        self._fx_binary(op, pos, "*", MUL)

    def op_allo_fixed_neg(self, op, pos):
        t = self._fx_type(op)
        self.note_fixed(op.results[0], t)
        self.define(op, pos, cpp.unary("-", self._fx_operand(op, 0, "lhs")))

    def op_allo_fixed_cmp(self, op, pos):
        sym, prec = _PRED[attr_str(op, "predicate")]
        a, b = self._fx_operand(op, 0, "lhs"), self._fx_operand(op, 1, "rhs")
        ta, tb = _as_fixed(self._fx_type(op, "lhs")), _as_fixed(self._fx_type(op, "rhs"))
        if (ta.bits, ta.frac, ta.signed) != (tb.bits, tb.frac, tb.signed):
            # ap_types compares some pairs of different types wrongly: signed against unsigned like C
            # (ap_fixed<2, 2>(-2) < ap_ufixed<32, 32>(0) is false), and formats with no integer or no
            # fraction bit (ap_ufixed<16, 22> against ap_fixed<3, -6>). Compare in one ordinary type that
            # holds both exactly.
            ct = self._fx_ctype(_usual(fx.common_type(ta, tb)))
            a, b = cpp.call(ct, a), cpp.call(ct, b)
        self.define(op, pos, cpp.binary(a, sym, b, prec), "bool")

    def op_allo_fixed_cast(self, op, pos):
        src, dst = self._fx_type(op, "lhs"), self._fx_type(op)
        x = op.operands[0]
        a = self.v(x)
        if dst.is_fixed:
            self.note_fixed(op.results[0], dst)
            if src.is_int and src.bits == 1:
                a = cpp.select(a, E("1"), E("0"))
            self.define(op, pos, cpp.call(self._fx_ctype(dst), a))
            return
        if dst.is_float:
            self.define(op, pos, E(f"{cpp.paren(a, cpp.PRIMARY)}.{'to_float' if dst.bits == 32 else 'to_double'}()"))
            return
        # to an integer: through a type with an integer bit, truncating toward zero
        s: Fixed = src
        ib = max(s.int_bits, 1) + (0 if s.signed else 0)
        wide = Fixed(ib + max(s.frac, 0), max(s.frac, 0), signed=s.signed) if ib + max(s.frac, 0) <= 64 and \
            (ib + max(s.frac, 0) >= (2 if s.signed else 1)) else None
        base = cpp.call(self._fx_ctype(wide), a) if wide is not None and wide != s else a
        val = E(f"{cpp.paren(base, cpp.PRIMARY)}.to_int64()")
        self.define(op, pos, cpp.cast(self.ct(op.results[0].type), val))


def _as_fixed(t):
    return t if t.is_fixed else fx.as_fixed(t)


def _unusual(t) -> bool:
    """A format ap_types' operators get wrong at the edges: no integer bit, or no fraction bit."""
    return t.int_bits < 1 or t.frac < 0


def _usual(t):
    """The narrowest signed type holding every value of ``t`` with an integer and a fraction bit."""
    frac = max(t.frac, 0)
    return fx._exact(max(t.int_bits, 1) + 1 + frac, frac, True)
