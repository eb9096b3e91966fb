"""Fixed-point rules shared by the language, the integer lowering and the numpy interfaces.

- Result types of exact arithmetic (what ap_fixed computes before any assignment):
  ``a + b`` / ``a - b`` has max(frac) fraction bits and one integer bit more than the wider operand;
  ``a * b`` has bits1 + bits2 bits and frac1 + frac2 fraction bits; ``-a`` one bit more than ``a``.
  The result is signed when either operand is (a difference always is).
- Type specs: the string form of a type carried in MLIR attributes (``sfixed<16,10,TRN,WRAP>``,
  ``ufixed<...>``, ``si8``/``ui8``, ``f32``/``f64``, ``index``), read back with :func:`from_spec`.
- :func:`quantize` / :func:`dequantize`: float64 numpy arrays to raw integers and back, with the type's
  modes. The compiled kernels' numpy interfaces use them (ap_fixed's own double constructor does the same
  job in C simulation, which makes the two backends an independent check of each other).
"""
from __future__ import annotations

import re

import numpy as np

from .types import DType, Fixed, Float, Index, Int


def as_fixed(t: DType) -> Fixed:
    """An integer type viewed as the fixed-point type holding the same values (frac 0)."""
    if t.is_fixed:
        return t
    if t.is_int:
        if t.bits == 1:
            return Fixed(2, 0)  # bool as 0/1, signed: a 1-bit signed value would be 0/-1
        return _exact(t.bits, 0, t.signed)
    raise TypeError(f"{t} has no fixed-point view")


def _ibits(t: Fixed) -> int:
    return t.bits - t.frac


def add_type(a: Fixed, b: Fixed, sub: bool = False) -> Fixed:
    signed = a.signed or b.signed or sub
    # an unsigned operand next to a signed one needs a sign bit of its own
    ia = _ibits(a) + (1 if signed and not a.signed else 0)
    ib = _ibits(b) + (1 if signed and not b.signed else 0)
    frac = max(a.frac, b.frac)
    bits = max(ia, ib) + 1 + frac
    return _exact(bits, frac, signed)


def mul_type(a: Fixed, b: Fixed) -> Fixed:
    signed = a.signed or b.signed
    return _exact(a.bits + b.bits, a.frac + b.frac, signed)


def neg_type(a: Fixed) -> Fixed:
    return _exact(a.bits + 1, a.frac, True)


def common_type(a: Fixed, b: Fixed) -> Fixed:
    """The narrowest type holding every value of both (for comparisons and max/min)."""
    signed = a.signed or b.signed
    ia = _ibits(a) + (1 if signed and not a.signed else 0)
    ib = _ibits(b) + (1 if signed and not b.signed else 0)
    frac = max(a.frac, b.frac)
    return _exact(max(ia, ib) + frac, frac, signed)


class Wide(Fixed):
    """An intermediate fixed type wider than the declared maximum (products of wide operands).
    Only SSA values have it; storing one needs a cast to a declared type."""

    def __init__(self, bits: int, frac: int, signed: bool):
        self.bits, self.frac, self.q, self.o, self._signed = bits, frac, "TRN", "WRAP", signed
        self.name = f"{'' if signed else 'U'}Fixed({bits}, {frac})"


def _exact(bits: int, frac: int, signed: bool) -> Fixed:
    bits = max(bits, 2 if signed else 1)
    try:
        return Fixed(bits, frac, signed=signed)
    except ValueError:
        return Wide(bits, frac, signed)


# ---------------------------------------------------------------------------- specs in attributes
_SPEC = re.compile(r"([su])fixed<(\d+),(-?\d+),(\w+),(\w+)>")


def spec(t: DType) -> str:
    if t.is_fixed:
        return f"{'s' if t.signed else 'u'}fixed<{t.bits},{t.frac},{t.q},{t.o}>"
    if t.is_float:
        return f"f{t.bits}"
    if t.is_index:
        return "index"
    if t.is_int:
        return f"{'s' if t.signed else 'u'}i{t.bits}"
    raise TypeError(f"no spec for {t}")


def from_spec(s: str) -> DType:
    m = _SPEC.fullmatch(s)
    if m:
        sg, bits, frac, q, o = m.groups()
        bits, frac = int(bits), int(frac)
        try:
            return Fixed(bits, frac, q, o, signed=sg == "s")
        except ValueError:
            return Wide(bits, frac, sg == "s")
    if s in ("f32", "f64"):
        return Float(int(s[1:]))
    if s == "index":
        return Index()
    m = re.fullmatch(r"([su])i(\d+)", s)
    if m:
        return Int(int(m.group(2)), signed=m.group(1) == "s")
    raise ValueError(f"not a type spec: {s!r}")


# ---------------------------------------------------------------------------- numpy conversions
def quantize(x, t: Fixed) -> np.ndarray:
    """Raw integers (int64, or Python ints in an object array above 62 bits) of float values ``x``
    converted to ``t`` with its quantisation and overflow modes, as ap_fixed's double constructor
    does. NaN becomes 0."""
    x = np.asarray(x, dtype=np.float64)
    # x * 2**frac is exact (a power-of-two scaling), barring overflow to inf for absurd frac
    y = np.ldexp(np.nan_to_num(x, nan=0.0, posinf=np.finfo(np.float64).max, neginf=-np.finfo(np.float64).max),
                 t.frac)
    r = round_scaled(y, t)
    if t.bits <= 53:
        return r.astype(np.int64)
    return np.vectorize(lambda v: int(v), otypes=[object])(r) if r.ndim else np.asarray(int(r), dtype=object)


def round_scaled(y, t: Fixed, xp=np):
    """The raw integer, as a float array of ``xp``, of ``y = x * 2**frac`` in ``t`` with its
    quantisation and overflow modes (the rules of ap_fixed's double constructor).

    ``xp`` is the array module: numpy here, torch in ``compress.fixed_qat`` (which needs the rounding
    inside autograd graphs); one table serves both because they spell floor/where/fmod/clip alike.
    Exact while the values fit float64's 53-bit significand: ``floor`` and ``y - floor(y)`` of a
    float64 are exact, and so are ``fmod`` by and additions of a power of two in that range."""
    fl = xp.floor(y)
    rem = y - fl
    tie = rem == 0.5
    q = t.q
    if q == "TRN":
        r = fl
    elif q == "TRN_ZERO":
        r = xp.where((y < 0) & (rem > 0), fl + 1, fl)
    elif q == "RND":
        r = xp.where(rem >= 0.5, fl + 1, fl)
    elif q == "RND_ZERO":
        r = xp.where((rem > 0.5) | (tie & (y < 0)), fl + 1, fl)
    elif q == "RND_MIN_INF":
        r = xp.where(rem > 0.5, fl + 1, fl)
    elif q == "RND_INF":
        r = xp.where((rem > 0.5) | (tie & (y > 0)), fl + 1, fl)
    elif q == "RND_CONV":
        odd = xp.fmod(fl, 2) != 0
        r = xp.where((rem > 0.5) | (tie & odd), fl + 1, fl)
    else:
        raise ValueError(f"{t}: unknown quantisation mode {q!r}")
    lo, hi, span = float(t.raw_min), float(t.raw_max), 2.0 ** t.bits
    o = t.o
    if o == "WRAP":
        r = xp.fmod(r, span)  # exact; then into the two's complement range
        r = xp.where(r < lo, r + span, r)
        r = xp.where(r > hi, r - span, r)
    elif o == "SAT":
        r = xp.clip(r, lo, hi)
    elif o == "SAT_ZERO":
        r = xp.where((r < lo) | (r > hi), r * 0, r)
    elif o == "SAT_SYM":
        r = xp.clip(r, -hi if t.signed else lo, hi)
    else:
        raise ValueError(f"{t}: unknown overflow mode {o!r}")
    return r


def dequantize(raw, t: Fixed) -> np.ndarray:
    """The float64 value of raw integers of ``t`` (exact up to 53 significant bits)."""
    raw = np.asarray(raw)
    if raw.dtype == object:
        return np.vectorize(lambda v: float(v) * 2.0 ** -t.frac, otypes=[np.float64])(raw)
    return np.ldexp(raw.astype(np.float64), -t.frac)


def to_storage(raw, t: Fixed) -> np.ndarray:
    """Raw integers in the type's numpy container, as its low ``bits`` bits (upper bits zero)."""
    mask = (1 << t.bits) - 1
    u = np.vectorize(lambda v: int(v) & mask, otypes=[object])(np.asarray(raw, dtype=object))
    return np.asarray(u.astype(np.uint64)).view(np.uint64).astype(_unsigned(t.storage_numpy)).view(t.storage_numpy)


def from_storage(stored, t: Fixed) -> np.ndarray:
    """Raw integers (int64; object above 63 unsigned bits) from a container: the low ``bits`` bits,
    sign-extended when the type is signed."""
    s = np.asarray(stored)
    u = s.view(_unsigned(s.dtype)).astype(np.uint64)
    if t.bits < 64:
        u = u & np.uint64((1 << t.bits) - 1)
        v = u.astype(np.int64)
        if t.signed:
            v = np.where(v >= (1 << (t.bits - 1)), v - (1 << t.bits), v)
        return v
    return u.view(np.int64) if t.signed else u.astype(object)


def _unsigned(dt) -> np.dtype:
    dt = np.dtype(dt)
    return np.dtype(f"uint{dt.itemsize * 8}")
