"""Allo's implicit casts, on for kernels compiled through ``allo_ext.compat`` (Allo's API).

allo_ext's own language is strict: two operands of different types, or a value stored into a
location of another type, is an error naming both types. Allo instead inserts the cast itself
(index <-> int <-> float), so kernels written for Allo rely on it. ``allo_typing()`` turns Allo's
rules on for what is compiled inside it; the compat layer's ``customize`` does that.

The rules (Allo's typing rules, without its exact-width growth of integer arithmetic):
- a stored or passed value is cast to the destination's type;
- two operands meet at the common type: a float beats any integer or index (the wider float
  beats the narrower); two integers give the wider, signed if either is, and an index meets an
  integer at the integer's type;
- a subscript that is not an index is cast to one; an integer condition means ``!= 0``.
Fixed-point operands are left to the fixed-point rules (no implicit casts to or from them here).
"""
from __future__ import annotations

import contextlib
import contextvars

from .types import DType, Float, Int

_ON: contextvars.ContextVar = contextvars.ContextVar("allo_typing", default=False)


def enabled() -> bool:
    return _ON.get()


@contextlib.contextmanager
def allo_typing(on: bool = True):
    token = _ON.set(on)
    try:
        yield
    finally:
        _ON.reset(token)


def promote(a: DType, b: DType) -> DType | None:
    """The common type of ``a`` and ``b`` under Allo's rules, or None (e.g. fixed point)."""
    if a == b:
        return a
    if a.is_fixed or b.is_fixed:
        return None
    if a.is_float or b.is_float:
        if a.is_float and b.is_float:
            return a if a.bits >= b.bits else b
        return a if a.is_float else b
    if a.is_index:
        return b
    if b.is_index:
        return a
    bits = max(a.bits, b.bits)
    signed = (a.signed and a.bits == bits) or (b.signed and b.bits == bits) or (a.signed and b.signed)
    if bits == 1:
        return Int(1)
    return Int(bits, signed=signed)


def widen_operands(compiler, node, opn: str, a, b):
    """Allo's integer growth: ``+``/``-`` of Int(m) and Int(n) is computed in Int(max(m, n) + 1) and
    ``*`` in Int(m + n) (capped at 64 bits), so intermediate results do not wrap; the store into a
    typed destination truncates, as in Allo. Values that are not integers pass through."""
    from .values import TV

    ta = a.dtype if isinstance(a, TV) else None
    tb = b.dtype if isinstance(b, TV) else None
    ints = [t for t in (ta, tb) if t is not None]
    if not ints or any(not t.is_int for t in ints) or any(t.bits == 1 for t in ints):
        return a, b
    if len(ints) == 1:  # a constant meets a typed value: it takes that type first
        ta = tb = ints[0]
    bits = max(ta.bits, tb.bits) + 1 if opn in ("Add", "Sub") else ta.bits + tb.bits
    bits = min(bits, 64)
    signed = ta.signed or tb.signed
    if bits <= max(ta.bits, tb.bits) and ta == tb:
        return a, b
    t = Int(bits, signed=signed)
    cast = lambda v: compiler.cast(node, v, t) if isinstance(v, TV) else v  # noqa: E731
    return cast(a), cast(b)


__all__ = ["allo_typing", "enabled", "promote", "widen_operands", "Float"]
