"""Allo fixed-point types on da4ml's symbolic values.

``Fixed(bits, frac, q, o, signed)`` is da4ml's (k, i, f) with k = signed, i = bits - frac - k integer
bits without the sign, f = frac. da4ml implements ap_fixed's TRN and RND rounding and WRAP, SAT and
SAT_SYM overflow exactly as ap_fixed does (checked bit for bit against target="llvm" in the tests);
the other modes are refused rather than approximated.
"""
from __future__ import annotations

import numpy as np

from ...lang import fixed as fx
from .errors import StaticLoweringError

ROUND_MODES = ("TRN", "RND")
OVERFLOW_MODES = ("WRAP", "SAT", "SAT_SYM")
NO_WRAP = 64  # integer bits that never wrap: quantisation that only rounds


def kif(t) -> tuple[int, int, int]:
    k = int(t.signed)
    return k, t.bits - t.frac - k, t.frac


def check_type(t, where: str):
    if not t.is_fixed:
        raise StaticLoweringError(f"{where} computes in {t}: the latency route is fixed point only; pass "
                                  f"precision='ap_fixed<16,6>' (or a dict) to from_pytorch")
    if t.q not in ROUND_MODES or t.o not in OVERFLOW_MODES:
        raise StaticLoweringError(f"{where} uses {t} (rounding {t.q}, overflow {t.o}); the latency route (da4ml) "
                                  f"implements rounding {'/'.join(ROUND_MODES)} and overflow "
                                  f"{'/'.join(OVERFLOW_MODES)}: choose one of those")


def _map(arr, fn) -> np.ndarray:
    """``fn`` on every element of an object array; constants (floats) pass through ``fn`` too."""
    a = np.asarray(arr, dtype=object)
    out = np.empty(a.shape, dtype=object)
    flat_in, flat_out = a.ravel(), out.ravel()
    for n, v in enumerate(flat_in):
        flat_out[n] = fn(v)
    return out


def quantize(arr, t, where: str = "?") -> np.ndarray:
    """Every element converted into ``t`` with its modes, as an assignment does in the kernels."""
    check_type(t, where)
    k, i, f = kif(t)

    def q(v):
        if isinstance(v, (int, float, np.floating, np.integer)):
            return float(fx.dequantize(fx.quantize(np.float64(v), t), t))
        return v.quantize(k, i, f, overflow_mode=t.o, round_mode=t.q)

    return _map(arr, q)


def round_to(arr, frac: int, q: str = "TRN") -> np.ndarray:
    """Rounding to ``frac`` fraction bits without any overflow (a product into a wide accumulator)."""
    def r(v):
        if isinstance(v, (int, float, np.floating, np.integer)):
            y = float(v) * 2.0 ** frac
            return float(np.floor(y + (0.5 if q == "RND" else 0.0))) * 2.0 ** -frac
        # k=1 with more integer bits than the value has: da4ml keeps its own sign and range, no wrap
        return v.quantize(1, NO_WRAP, frac, overflow_mode="WRAP", round_mode=q)

    return _map(arr, r)


def constant(values, t) -> np.ndarray:
    """Numbers quantised to ``t`` (its modes, as the kernels' weights are), as exact float64 values."""
    check_type(t, "a constant")
    return np.asarray(fx.dequantize(fx.quantize(np.asarray(values, dtype=np.float64), t), t), dtype=np.float64)


def frac_of(v) -> int:
    """Fraction bits a da4ml value (or constant) carries."""
    if isinstance(v, (int, float, np.floating, np.integer)):
        x, f = float(v), 0
        while x != np.floor(x) and f < 200:
            x *= 2
            f += 1
        return f
    return int(v.kif[2])
