"""Printers of the scalar ops (arith, math, affine index expressions) as C++ expressions.

A mixin of :class:`FunctionEmitter`: each ``op_<dialect>_<name>`` turns one op into an expression
and hands it to ``define``, which folds it into its user or names it. Integer results narrower than
int are cast back to their width, since C++ promotes them (MLIR wraps).
"""
from __future__ import annotations

import re

from torch_mlir import ir

from . import cpp
from .common import EmitError, attr_int, is_memref
from .cpp import ADD, BAND, BOR, BXOR, EQ, LAND, LOR, MUL, REL, SHIFT, E

_CMPI = {0: ("==", EQ, False), 1: ("!=", EQ, False), 2: ("<", REL, False), 3: ("<=", REL, False), 4: (">", REL, False),
         5: (">=", REL, False), 6: ("<", REL, True), 7: ("<=", REL, True), 8: (">", REL, True), 9: (">=", REL, True)}
_FBIN = {"arith.addf": ("+", ADD), "arith.subf": ("-", ADD), "arith.mulf": ("*", MUL), "arith.divf": ("/", MUL)}
_IBIN = {"arith.addi": ("+", ADD), "arith.subi": ("-", ADD), "arith.muli": ("*", MUL), "arith.divsi": ("/", MUL),
         "arith.remsi": ("%", MUL), "arith.shli": ("<<", SHIFT), "arith.shrsi": (">>", SHIFT)}
_UBIN = {"arith.divui": ("/", MUL), "arith.remui": ("%", MUL), "arith.shrui": (">>", SHIFT)}
# bitwise op, its precedence, and the logical op used on i1 values
_BITOP = {"arith.andi": ("&", BAND, "&&", LAND), "arith.ori": ("|", BOR, "||", LOR),
          "arith.xori": ("^", BXOR, "!=", EQ)}
_MATH1 = {"math.exp": "std::exp", "math.exp2": "std::exp2", "math.expm1": "std::expm1", "math.log": "std::log",
          "math.log2": "std::log2", "math.log10": "std::log10", "math.log1p": "std::log1p", "math.sqrt": "std::sqrt",
          "math.cbrt": "std::cbrt", "math.sin": "std::sin", "math.cos": "std::cos", "math.tan": "std::tan",
          "math.asin": "std::asin", "math.acos": "std::acos", "math.atan": "std::atan", "math.sinh": "std::sinh",
          "math.cosh": "std::cosh", "math.tanh": "std::tanh", "math.erf": "std::erf", "math.floor": "std::floor",
          "math.ceil": "std::ceil", "math.trunc": "std::trunc", "math.round": "std::round",
          "math.roundeven": "std::nearbyint", "math.absf": "std::fabs", "arith.maxnumf": "std::fmax",
          "arith.minnumf": "std::fmin"}
_MATH2 = {"math.powf": "std::pow", "math.atan2": "std::atan2", "math.copysign": "std::copysign",
          "arith.remf": "std::fmod", "arith.maxnumf": "std::fmax", "arith.minnumf": "std::fmin"}


class ScalarOps:
    def emit_scalar_op(self, op, pos) -> bool:
        """Print a table-driven arith/math op; False if ``op`` is not one of them."""
        name = op.name
        if name in _FBIN:
            a, b = self.v(op.operands[0]), self.v(op.operands[1])
            sym, prec = _FBIN[name]
            self.define(op, pos, cpp.binary(a, sym, b, prec))
        elif name in _IBIN:
            a, b = self.v(op.operands[0]), self.v(op.operands[1])
            sym, prec = _IBIN[name]
            self.define(op, pos, self.wrap_int(op.results[0].type, cpp.binary(a, sym, b, prec)))
        elif name in _UBIN:
            t = op.results[0].type
            ut = self.ct(t, unsigned=True)
            a, b = cpp.cast(ut, self.v(op.operands[0])), cpp.cast(ut, self.v(op.operands[1]))
            sym, prec = _UBIN[name]
            self.define(op, pos, cpp.cast(self.ct(t), cpp.binary(a, sym, b, prec)))
        elif name in _BITOP:
            self.emit_bitop(op, pos)
        elif name in _MATH1 and len(op.operands) == 1:
            self.define(op, pos, cpp.call(_MATH1[name], self.v(op.operands[0])))
        elif name in _MATH2:
            self.define(op, pos, cpp.call(_MATH2[name], self.v(op.operands[0]), self.v(op.operands[1])))
        else:
            return False
        return True

    def wrap_int(self, t, e: E) -> E:
        """C++ promotes narrow integers to int and ap_int widens: cast back to the op's width."""
        w = cpp.int_bits(t)
        if w is not None and w not in (32, 64, 1):
            return cpp.cast(self.ct(t), e)
        return e

    def emit_bitop(self, op, pos):
        t = op.results[0].type
        a, b = self.v(op.operands[0]), self.v(op.operands[1])
        sym, prec, bsym, bprec = _BITOP[op.name]
        if cpp.int_bits(t) == 1:
            if op.name == "arith.xori" and b.text == "true":
                self.define(op, pos, cpp.unary("!", a))
            else:
                self.define(op, pos, cpp.binary(a, bsym, b, bprec))
        else:
            self.define(op, pos, self.wrap_int(t, cpp.binary(a, sym, b, prec)))

    # -- arith
    def op_arith_constant(self, op, pos):
        r = op.results[0]
        attr = op.attributes["value"]
        t = r.type
        if str(t) in ("f32", "f64"):
            self.vals[r] = cpp.float_literal(ir.FloatAttr(attr).value, 32 if str(t) == "f32" else 64)
        elif str(t) == "index" or cpp.int_bits(t) is not None:
            w = 64 if str(t) == "index" else cpp.int_bits(t)
            val = ir.IntegerAttr(attr).value
            e = cpp.int_literal(val, w)
            if w not in (1, 8, 16, 32, 64) and str(t) != "index":
                e = cpp.cast(self.ct(t), e)
            self.vals[r] = e
        else:
            raise self.err(op, f"constant of type {t} (e.g. a dense vector) has no HLS C++ form")

    def op_arith_negf(self, op, pos):
        self.define(op, pos, cpp.unary("-", self.v(op.operands[0])))

    def op_arith_cmpf(self, op, pos):
        p = attr_int(op, "predicate")
        a, b = self.v(op.operands[0]), self.v(op.operands[1])
        simple = {1: ("==", EQ), 2: (">", REL), 3: (">=", REL), 4: ("<", REL), 5: ("<=", REL), 13: ("!=", EQ)}
        # unordered-or-X is the negation of the ordered opposite
        negated = {9: ("<=", REL), 10: ("<", REL), 11: (">=", REL), 12: (">", REL)}
        if p in simple:
            e = cpp.binary(a, *simple[p][:1], b, simple[p][1])
        elif p in negated:
            e = cpp.unary("!", cpp.binary(a, negated[p][0], b, negated[p][1]))
        elif p == 6:  # one
            e = cpp.binary(cpp.binary(a, "<", b, REL), "||", cpp.binary(a, ">", b, REL), LOR)
        elif p == 8:  # ueq
            e = cpp.unary("!", cpp.binary(cpp.binary(a, "<", b, REL), "||", cpp.binary(a, ">", b, REL), LOR))
        elif p == 7:  # ord
            e = cpp.binary(cpp.binary(a, "==", a, EQ), "&&", cpp.binary(b, "==", b, EQ), LAND)
        elif p == 14:  # uno
            e = cpp.binary(cpp.binary(a, "!=", a, EQ), "||", cpp.binary(b, "!=", b, EQ), LOR)
        elif p in (0, 15):
            e = E("false" if p == 0 else "true")
        else:
            raise self.err(op, f"unknown cmpf predicate {p}")
        self.define(op, pos, e, "bool")

    def op_arith_cmpi(self, op, pos):
        p = attr_int(op, "predicate")
        if p not in _CMPI:
            raise self.err(op, f"unknown cmpi predicate {p}")
        sym, prec, uns = _CMPI[p]
        a, b = self.v(op.operands[0]), self.v(op.operands[1])
        if uns:
            ut = self.ct(op.operands[0].type, unsigned=True)
            a, b = cpp.cast(ut, a), cpp.cast(ut, b)
        self.define(op, pos, cpp.binary(a, sym, b, prec), "bool")

    def op_arith_select(self, op, pos):
        c, a, b = (self.v(x) for x in op.operands)
        if is_memref(op.results[0].type):
            raise self.err(op, "select between arrays has no HLS C++ form")
        self.note_fixed(op.results[0], self.fx.get(op.operands[1]))
        self.define(op, pos, cpp.select(c, a, b))

    def _minmax(self, op, pos, fn, unsigned=False):
        t = op.results[0].type
        a, b = self.v(op.operands[0]), self.v(op.operands[1])
        self.me.needs.headers.add("algorithm")
        if unsigned:
            ut = self.ct(t, unsigned=True)
            self.define(op, pos, cpp.cast(self.ct(t), cpp.call(f"std::{fn}<{ut}>", cpp.cast(ut, a), cpp.cast(ut, b))))
        else:
            self.define(op, pos, cpp.call(f"std::{fn}<{self.ct(t)}>", a, b))

    def op_arith_maxsi(self, op, pos):
        self._minmax(op, pos, "max")

    def op_arith_minsi(self, op, pos):
        self._minmax(op, pos, "min")

    def op_arith_maxui(self, op, pos):
        self._minmax(op, pos, "max", unsigned=True)

    def op_arith_minui(self, op, pos):
        self._minmax(op, pos, "min", unsigned=True)

    def op_arith_maximumf(self, op, pos):
        self.me.needs.helpers.add("maximum")
        self.define(op, pos, cpp.call("allo_maximum", self.v(op.operands[0]), self.v(op.operands[1])))

    def op_arith_minimumf(self, op, pos):
        self.me.needs.helpers.add("minimum")
        self.define(op, pos, cpp.call("allo_minimum", self.v(op.operands[0]), self.v(op.operands[1])))

    def op_arith_floordivsi(self, op, pos):
        self.me.needs.helpers.add("floordiv")
        t = self.ct(op.results[0].type)
        self.define(op, pos, cpp.call(f"allo_floordiv<{t}>", self.v(op.operands[0]), self.v(op.operands[1])))

    def op_arith_ceildivsi(self, op, pos):
        self.me.needs.helpers.add("ceildiv")
        t = self.ct(op.results[0].type)
        self.define(op, pos, cpp.call(f"allo_ceildiv<{t}>", self.v(op.operands[0]), self.v(op.operands[1])))

    def _cast(self, op, pos, src_unsigned=False, dst_unsigned=False):
        src_t, dst_t = op.operands[0].type, op.results[0].type
        a = self.v(op.operands[0])
        if cpp.int_bits(src_t) == 1 and not src_unsigned and cpp.int_bits(dst_t) != 1:
            # a signed i1 is 0 or -1
            one = cpp.float_literal(-1.0, 32 if str(dst_t) == "f32" else 64) if str(dst_t) in ("f32", "f64") \
                else E("-1", cpp.UNARY)
            zero = cpp.float_literal(0.0, 32 if str(dst_t) == "f32" else 64) if str(dst_t) in ("f32", "f64") else E("0")
            self.define(op, pos, cpp.cast(self.ct(dst_t), cpp.select(a, one, zero)))
            return
        if cpp.int_bits(dst_t) == 1 and op.name == "arith.trunci":
            self.define(op, pos, cpp.binary(cpp.binary(a, "&", E("1"), BAND), "!=", E("0"), EQ))
            return
        if src_unsigned and cpp.int_bits(src_t) not in (None, 1):
            a = cpp.cast(self.ct(src_t, unsigned=True), a)
        if dst_unsigned:
            a = cpp.cast(self.ct(dst_t, unsigned=True), a)
        self.define(op, pos, cpp.cast(self.ct(dst_t), a))

    def op_arith_sitofp(self, op, pos):
        self._cast(op, pos)

    def op_arith_uitofp(self, op, pos):
        self._cast(op, pos, src_unsigned=True)

    def op_arith_fptosi(self, op, pos):
        self._cast(op, pos)

    def op_arith_fptoui(self, op, pos):
        self._cast(op, pos, dst_unsigned=True)

    def op_arith_extf(self, op, pos):
        self._cast(op, pos)

    def op_arith_truncf(self, op, pos):
        self._cast(op, pos)

    def op_arith_extsi(self, op, pos):
        self._cast(op, pos)

    def op_arith_extui(self, op, pos):
        self._cast(op, pos, src_unsigned=True)

    def op_arith_trunci(self, op, pos):
        self._cast(op, pos)

    def op_arith_index_cast(self, op, pos):
        self._cast(op, pos)

    def op_arith_index_castui(self, op, pos):
        self._cast(op, pos, src_unsigned=True)

    def op_arith_bitcast(self, op, pos):
        self.me.needs.helpers.add("bitcast")
        dst = self.ct(op.results[0].type)
        self.define(op, pos, cpp.call(f"allo_bitcast<{dst}>", self.v(op.operands[0])))

    def op_math_absi(self, op, pos):
        self.define(op, pos, self.wrap_int(op.results[0].type, cpp.call("std::abs", self.v(op.operands[0]))))

    def op_math_rsqrt(self, op, pos):
        one = cpp.float_literal(1.0, 32 if str(op.results[0].type) == "f32" else 64)
        self.define(op, pos, cpp.binary(one, "/", cpp.call("std::sqrt", self.v(op.operands[0])), MUL))

    def op_math_fma(self, op, pos):
        self.define(op, pos, cpp.call("std::fma", *(self.v(x) for x in op.operands)))

    # -- affine expressions
    def affine(self, expr, dims: list, syms: list) -> tuple[E, bool]:
        """(C++ expression, known non-negative) of an affine expression over ``dims``/``syms`` (E, nonneg)."""
        if isinstance(expr, ir.AffineConstantExpr):
            return cpp.int_literal(expr.value, 32), expr.value >= 0
        if isinstance(expr, ir.AffineDimExpr):
            return dims[expr.position]
        if isinstance(expr, ir.AffineSymbolExpr):
            return syms[expr.position]
        if isinstance(expr, ir.AffineAddExpr):
            # Flatten the sum and print positive terms first: MLIR writes 7 - i as -d0 + 7.
            terms, nonneg = [], True
            for t in _add_terms(expr):
                neg = None
                if isinstance(t, ir.AffineConstantExpr) and t.value < 0:
                    neg = cpp.int_literal(-t.value, 32)
                elif isinstance(t, ir.AffineMulExpr) and isinstance(t.rhs, ir.AffineConstantExpr) and t.rhs.value < 0:
                    m, _ = self.affine(t.lhs, dims, syms)
                    neg = m if t.rhs.value == -1 else cpp.binary(m, "*", cpp.int_literal(-t.rhs.value, 32), MUL)
                if neg is not None:
                    terms.append((neg, True))
                    nonneg = False
                else:
                    e, nn = self.affine(t, dims, syms)
                    terms.append((e, False))
                    nonneg = nonneg and nn
            terms.sort(key=lambda x: x[1])  # stable: positives first, each group in MLIR's order
            acc = terms[0][0] if not terms[0][1] else cpp.unary("-", terms[0][0])
            for e, neg in terms[1:]:
                acc = cpp.binary(acc, "-" if neg else "+", e, ADD)
            return acc, nonneg
        if isinstance(expr, ir.AffineMulExpr):
            a, an = self.affine(expr.lhs, dims, syms)
            b, bn = self.affine(expr.rhs, dims, syms)
            if b.text == "-1":
                return cpp.unary("-", a), False
            return cpp.binary(a, "*", b, MUL), an and bn
        for cls, op, helper in ((ir.AffineFloorDivExpr, "/", "floordiv"), (ir.AffineModExpr, "%", "floormod"),
                                (ir.AffineCeilDivExpr, None, "ceildiv")):
            if isinstance(expr, cls):
                a, an = self.affine(expr.lhs, dims, syms)
                b, bn = self.affine(expr.rhs, dims, syms)
                if an and bn and op is not None:
                    return cpp.binary(a, op, b, MUL), True
                self.me.needs.helpers.add(helper)
                fn = {"floordiv": "allo_floordiv", "floormod": "allo_mod", "ceildiv": "allo_ceildiv"}[helper]
                return cpp.call(f"{fn}<int>", a, b), an and bn
        raise EmitError(f"{self.loc}: in kernel '{self.sym}': unsupported affine expression {expr}")

    def map_results(self, amap, operands) -> list[tuple[E, bool]]:
        vals = [(self.v(x), x in self.nonneg or self._const_nonneg(x)) for x in operands]
        dims, syms = vals[:amap.n_dims], vals[amap.n_dims:]
        return [self.affine(r, dims, syms) for r in amap.results]

    def _const_nonneg(self, x) -> bool:
        e = self.vals.get(x)
        return e is not None and re.fullmatch(r"\d+", e.text) is not None

    def op_affine_apply(self, op, pos):
        amap = ir.AffineMapAttr(op.attributes["map"]).value
        e, nn = self.map_results(amap, list(op.operands))[0]
        if nn:
            self.nonneg.add(op.results[0])
        self.define(op, pos, e, "int")


def _add_terms(e) -> list:
    if isinstance(e, ir.AffineAddExpr):
        return _add_terms(e.lhs) + _add_terms(e.rhs)
    return [e]

