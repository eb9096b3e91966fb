"""An independent model of ap_fixed, written from the Vitis HLS documentation (UG1399, "Arbitrary
Precision Fixed-Point Data Types"): exact rational arithmetic with Python's Fraction, then the
documented quantisation and overflow modes. It shares no code with allo_ext, so the fixed-point
tests compare our lowering and the ap_types C simulation against something neither computed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np


@dataclass(frozen=True)
class T:
    """W total bits, F fraction bits (ap_fixed<W, W - F>), signedness and the two modes."""

    W: int
    F: int
    signed: bool = True
    q: str = "TRN"
    o: str = "WRAP"

    @property
    def lo(self) -> int:
        return -(2 ** (self.W - 1)) if self.signed else 0

    @property
    def hi(self) -> int:
        return 2 ** (self.W - 1) - 1 if self.signed else 2 ** self.W - 1

    def value(self, raw: int) -> Fraction:
        return Fraction(raw) / Fraction(2) ** self.F


def quantise(v: Fraction, t: T) -> int:
    """The raw integer of the exact value ``v`` assigned to type ``t``."""
    s = v * Fraction(2) ** t.F
    fl = math.floor(s)
    r = s - fl  # in [0, 1)
    half = Fraction(1, 2)
    if t.q == "TRN":  # toward minus infinity
        n = fl
    elif t.q == "TRN_ZERO":  # toward zero
        n = fl + 1 if (s < 0 and r != 0) else fl
    elif t.q == "RND":  # nearest, ties toward plus infinity
        n = fl + 1 if r >= half else fl
    elif t.q == "RND_ZERO":  # nearest, ties toward zero
        n = fl + 1 if (r > half or (r == half and s < 0)) else fl
    elif t.q == "RND_MIN_INF":  # nearest, ties toward minus infinity
        n = fl + 1 if r > half else fl
    elif t.q == "RND_INF":  # nearest, ties away from zero
        n = fl + 1 if (r > half or (r == half and s > 0)) else fl
    elif t.q == "RND_CONV":  # nearest, ties to even
        n = fl + 1 if (r > half or (r == half and fl % 2 == 1)) else fl
    else:
        raise ValueError(t.q)
    lo = -t.hi if (t.o == "SAT_SYM" and t.signed) else t.lo  # symmetric: the minimum is -max
    if lo <= n <= t.hi:
        return n
    if t.o == "WRAP":
        m = n % 2 ** t.W
        return m - 2 ** t.W if (t.signed and m >= 2 ** (t.W - 1)) else m
    if t.o == "SAT":
        return t.lo if n < t.lo else t.hi
    if t.o == "SAT_ZERO":
        return 0
    if t.o == "SAT_SYM":
        return lo if n < lo else t.hi
    raise ValueError(t.o)


def to_int(v: Fraction, bits: int) -> int:
    """C's conversion to a signed ``bits``-bit integer: toward zero, then the low bits."""
    n = math.trunc(v) % 2 ** bits
    return n - 2 ** bits if n >= 2 ** (bits - 1) else n


def to_float32(v: Fraction) -> np.float32:
    """Round to nearest float32, ties to even (normal range only)."""
    if v == 0:
        return np.float32(0.0)
    sign = -1 if v < 0 else 1
    a = abs(v)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    if Fraction(2) ** (e + 1) <= a:
        e += 1
    m = a / Fraction(2) ** (e - 23)  # in [2**23, 2**24)
    fl = math.floor(m)
    r = m - fl
    if r > Fraction(1, 2) or (r == Fraction(1, 2) and fl % 2 == 1):
        fl += 1
    return np.float32(sign * math.ldexp(float(fl), e - 23))
