"""Symbolic index arithmetic over loop induction variables.

Subscripts such as ``X[i * 8 + j, k // 2]`` are kept as small expression trees while the kernel
is compiled, and only turned into an affine map when they are used. That way every affine subscript
becomes one ``affine.load``/``affine.store`` with its map, which MLIR's affine passes (and the HLS
emitter) can reason about, instead of a chain of ``arith`` ops on ``index`` values.
"""
from __future__ import annotations

from torch_mlir import ir
from torch_mlir.dialects import affine, arith


class Idx:
    """An index-valued expression: a leaf SSA value, a constant, or +, *, //, % of those.

    Multiplication is affine only by a constant and floordiv/mod only by a positive constant;
    anything else is materialised with ``arith`` and becomes an opaque (non-affine) leaf.
    """

    __slots__ = ("kind", "a", "b", "affine_ok")

    def __init__(self, kind: str, a=None, b=None, affine_ok: bool = True):
        self.kind, self.a, self.b, self.affine_ok = kind, a, b, affine_ok

    # -- constructors
    @staticmethod
    def leaf(value: ir.Value, affine_ok: bool = True) -> "Idx":
        return Idx("val", value, affine_ok=affine_ok)

    @staticmethod
    def const(c: int) -> "Idx":
        return Idx("const", int(c))

    @property
    def is_const(self) -> bool:
        return self.kind == "const"

    @property
    def is_affine(self) -> bool:
        if self.kind == "val":
            return self.affine_ok
        if self.kind == "const":
            return True
        return self.a.is_affine and (self.b.is_affine if isinstance(self.b, Idx) else True)

    # -- arithmetic (constants folded; non-affine combinations materialised by the caller).
    # Python ints are accepted too, so compile-time helpers can compute with indices directly.
    def __add__(self, o) -> "Idx":
        o = _as_idx(o)
        if self.is_const and o.is_const:
            return Idx.const(self.a + o.a)
        if o.is_const and o.a == 0:
            return self
        if self.is_const and self.a == 0:
            return o
        return Idx("add", self, o)

    def __neg__(self) -> "Idx":
        return self.mul_const(-1)

    def __sub__(self, o) -> "Idx":
        return self + (-_as_idx(o))

    def __radd__(self, o) -> "Idx":
        return _as_idx(o) + self

    def __rsub__(self, o) -> "Idx":
        return _as_idx(o) - self

    def __mul__(self, c) -> "Idx":
        if isinstance(c, Idx) and c.is_const:
            c = c.a
        if not isinstance(c, int):
            return NotImplemented  # index * index is not affine; kernels handle it with arith
        return self.mul_const(c)

    __rmul__ = __mul__

    def __floordiv__(self, c) -> "Idx":
        if not isinstance(c, int) or c <= 0:
            return NotImplemented
        return self.floordiv_const(c)

    def __mod__(self, c) -> "Idx":
        if not isinstance(c, int) or c <= 0:
            return NotImplemented
        return self.mod_const(c)

    def mul_const(self, c: int) -> "Idx":
        if self.is_const:
            return Idx.const(self.a * c)
        if c == 1:
            return self
        return Idx("mul", self, int(c))

    def floordiv_const(self, c: int) -> "Idx":
        if self.is_const:
            return Idx.const(self.a // c)
        return Idx("floordiv", self, int(c))

    def mod_const(self, c: int) -> "Idx":
        if self.is_const:
            return Idx.const(self.a % c)
        return Idx("mod", self, int(c))

    def leaves(self, out: list) -> list:
        if self.kind == "val":
            if not any(v == self.a for v in out):
                out.append(self.a)
        elif self.kind != "const":
            self.a.leaves(out)
            if isinstance(self.b, Idx):
                self.b.leaves(out)
        return out

    def to_affine_expr(self, operands: list) -> ir.AffineExpr:
        k = self.kind
        if k == "val":
            pos = next(p for p, v in enumerate(operands) if v == self.a)
            return ir.AffineDimExpr.get(pos)
        if k == "const":
            return ir.AffineConstantExpr.get(self.a)
        if k == "add":
            return ir.AffineAddExpr.get(self.a.to_affine_expr(operands), self.b.to_affine_expr(operands))
        c = ir.AffineConstantExpr.get(self.b)
        lhs = self.a.to_affine_expr(operands)
        if k == "mul":
            return ir.AffineMulExpr.get(lhs, c)
        if k == "floordiv":
            return ir.AffineFloorDivExpr.get(lhs, c)
        if k == "mod":
            return ir.AffineModExpr.get(lhs, c)
        raise AssertionError(k)

    def materialize(self) -> ir.Value:
        """An ``index`` SSA value for this expression, at the current insertion point."""
        if self.kind == "val":
            return self.a
        idx_t = ir.IndexType.get()
        if self.kind == "const":
            return arith.constant(idx_t, self.a)
        if self.is_affine:
            operands = self.leaves([])
            amap = ir.AffineMap.get(len(operands), 0, [self.to_affine_expr(operands)])
            return affine.apply(amap, operands)
        lhs = self.a.materialize()
        if self.kind == "add":
            return arith.addi(lhs, self.b.materialize())
        rhs = arith.constant(idx_t, self.b)
        return {"mul": arith.muli, "floordiv": arith.floordivsi, "mod": arith.remsi}[self.kind](lhs, rhs)


def _as_idx(v) -> Idx:
    if isinstance(v, Idx):
        return v
    if isinstance(v, int):
        return Idx.const(v)
    raise TypeError(f"cannot combine an index with {v!r}")


def affine_access(indices: list[Idx]):
    """(map, operands) for an affine access, or None if some subscript is not affine."""
    if not all(i.is_affine for i in indices):
        return None
    operands: list = []
    for i in indices:
        i.leaves(operands)
    exprs = [i.to_affine_expr(operands) for i in indices]
    return ir.AffineMap.get(len(operands), 0, exprs), operands
