"""softmax and log_softmax in fixed point: max subtraction and lookup tables sized from the type.

Per row: ``m = max(x)``; every ``d = x - m`` is <= 0, so ``exp(d)`` lies in (0, 1] and needs no
integer range beyond 1. ``exp`` is a table over ``d`` in ``[-R, 0]`` with ``R`` the point where
``exp(-R)`` is below the output's last bit (larger ``|d|`` read the last entry); the row sum lies in
``[1, C]`` (the maximum contributes exactly 1), so ``1/sum`` and ``log(sum)`` are tables over
``[1, C]``. Table sizes follow the type's fraction bits, capped at ``MAX_TABLE`` entries, and the
exp values are held in ``UFixed(E, E - 1)`` with ``E = min(bits, 18)`` fraction bits, so wide types
(``ap_fixed<32,16>``, where hls4ml 1.3.0's softmax collapses to a uniform output) keep their
precision instead of overflowing a table index.

The reciprocal is common to a row, so its table error scales the row uniformly and never changes
the argmax; exp(0) is exactly 1, so the maximum keeps its place.

log_softmax's output ``x - m - log(sum)`` reaches below ``-(max - min)`` of the input, beyond T's
range when a row's logits spread wide: it is computed in a wider type and saturated at T's minimum,
since a wrapped value (WRAP) would turn the least likely class into the most likely one.

No ``from __future__ import annotations`` here: kernel annotations must be evaluated eagerly.
"""

import math

import numpy as np

from ...lang import Fixed, UFixed, grid, index, int32, table

MAX_TABLE = 1024


def _exp_table(T):
    """exp(-d) = HI[int(d * 2**k)] * LO[int(frac(d * 2**k) * 2**kl)]: a coarse table over the reach and
    a fine one within one coarse step, together resolving d to its own last bit (up to MAX_TABLE)."""
    E = min(T.bits, 15)
    et = UFixed(E + 1, E)  # (0, 1], frac E (one integer bit for the exact 1.0); 16 bits at most
    reach = E * math.log(2.0) + 1.0  # exp(-reach) < 2**-E: below the last bit
    k = max(0, min(T.frac, int(math.floor(math.log2(MAX_TABLE / reach)))))
    n = int(math.ceil(reach * 2 ** k)) + 1
    kl = max(0, min(T.frac - k, int(math.log2(MAX_TABLE))))
    hi = table(np.exp(-np.arange(n) / 2.0 ** k), et)
    lo = table(np.exp(-np.arange(2 ** kl) / 2.0 ** (k + kl)), et)
    return et, k, n, kl, hi, lo


def _sum_type(et, C):
    return UFixed(et.bits + max(1, math.ceil(math.log2(C + 1))), et.frac)


def _row_table(C, frac, fn, t):
    """``fn`` over [1, C] (the row sum), step 2**-k, indexed by ``int((s - 1) * 2**k)``."""
    k = max(0, min(frac, int(math.floor(math.log2(MAX_TABLE / max(C - 1, 1))))))
    n = (C - 1) * 2 ** k + 1
    centres = 1.0 + (np.arange(n) + 0.5) / 2.0 ** k  # the middle of each bucket
    return k, n, table(fn(np.minimum(centres, C)), t)


class Plan:
    """Every constant of the fixed softmax/log_softmax of rows of ``C`` values of type ``T``: the
    intermediate types, the table reach and scales, and the tables themselves. The kernels below and
    ``allo_ext.compress.fixed_qat`` (which must reproduce them bit for bit) both read it."""

    def __init__(self, T, C, log=False):
        self.et, self.k, self.n, self.kl, self.EXP, self.EXPLO = _exp_table(T)
        self.S = _sum_type(self.et, C)  # the row sum
        self.D = Fixed(T.bits + 1, T.frac)  # m - x, exact
        self.lscale = Fixed(self.kl + 2, 0)
        self.scale = Fixed(self.k + 2, 0)  # 2**k as an exact constant
        if log:
            # log(s) in [0, log C]
            self.rt = UFixed(max(2, math.ceil(math.log2(math.log(C) + 1)) + 1) + self.et.frac, self.et.frac)
            self.kr, self.nr, self.ROW = _row_table(C, self.et.frac, np.log, self.rt)
        else:
            self.rt = UFixed(self.et.bits, self.et.frac)  # 1/s in (0, 1]
            self.kr, self.nr, self.ROW = _row_table(C, self.et.frac, lambda s: 1.0 / s, self.rt)
        self.rscale = Fixed(self.kr + 2, 0)
        if log:
            # x - m - lse >= 2 * T.min - log C: held exactly (at T's fraction) before saturating at T.min
            self.Zw = Fixed(max(T.bits - T.frac, self.rt.bits - self.rt.frac) + 2 + T.frac, T.frac, q=T.q)
            self.ZMIN = T.min
        self.DMAX = self.n / 2.0 ** self.k
        self.CLAMP = self.D.max > self.DMAX  # keep d * 2**k within int32 for wide types
        self.Dk = Fixed(self.D.bits + self.k + 2, self.D.frac)  # d * 2**k, exact


def softmax_fixed(T, shape, acc=None):
    outer, C = shape[:-1], shape[-1]
    p = Plan(T, C)
    EXP, EXPLO, S, D, lscale, scale = p.EXP, p.EXPLO, p.S, p.D, p.lscale, p.scale
    k, n, kl, rt, kr, nr, RECIP, rscale = p.k, p.n, p.kl, p.rt, p.kr, p.nr, p.ROW, p.rscale
    CLAMP, DMAX, Dk = p.CLAMP, p.DMAX, p.Dk

    def softmax(X: T[shape]) -> T[shape]:
        Z: T[shape]
        Ev: S[C]
        for o in grid(*outer, name="row"):
            m: T = X[o, 0]
            for c in range(C, name="max"):
                m = max(m, X[o, c])
            total: S = 0.0
            for c in range(C, name="sum"):
                d: D = m - X[o, c]
                if CLAMP:
                    d = min(d, DMAX)
                dk: Dk = d * scale(2 ** k)
                i: int32 = int32(dk)
                jl: int32 = int32((dk - i) * lscale(2 ** kl))
                i = min(i, n - 1)
                e: S = EXP[index(i)] * EXPLO[index(jl)]
                Ev[c] = e
                total += e
            j: int32 = int32((total - 1.0) * rscale(2 ** kr))
            j = min(max(j, 0), nr - 1)
            r: rt = RECIP[index(j)]
            for c in range(C, name="norm"):
                Z[o, c] = Ev[c] * r
        return Z

    return softmax


def log_softmax_fixed(T, shape, D_axis):
    from .activation import _insert

    outer, C = shape[:D_axis] + shape[D_axis + 1:], shape[D_axis]
    p = Plan(T, C, log=True)
    EXP, EXPLO, S, Dt, lscale, scale = p.EXP, p.EXPLO, p.S, p.D, p.lscale, p.scale
    k, n, kl, lt, kr, nr, LOG, rscale = p.k, p.n, p.kl, p.rt, p.kr, p.nr, p.ROW, p.rscale
    CLAMP, DMAX, Dk = p.CLAMP, p.DMAX, p.Dk
    Dax = D_axis
    Zw, ZMIN = p.Zw, p.ZMIN

    def log_softmax(X: T[shape]) -> T[shape]:
        Z: T[shape]
        for o in grid(*outer, name="row"):
            m: T = X[_insert(o, Dax, 0)]
            for c in range(C, name="max"):
                m = max(m, X[_insert(o, Dax, c)])
            total: S = 0.0
            for c in range(C, name="sum"):
                d: Dt = m - X[_insert(o, Dax, c)]
                if CLAMP:
                    d = min(d, DMAX)
                dk: Dk = d * scale(2 ** k)
                i: int32 = int32(dk)
                jl: int32 = int32((dk - i) * lscale(2 ** kl))
                i = min(i, n - 1)
                total += EXP[index(i)] * EXPLO[index(jl)]
            j: int32 = int32((total - 1.0) * rscale(2 ** kr))
            j = min(max(j, 0), nr - 1)
            lse: lt = LOG[index(j)]
            for c in range(C, name="norm"):
                z: Zw = X[_insert(o, Dax, c)] - m - lse
                Z[_insert(o, Dax, c)] = max(z, ZMIN)
        return Z

    return log_softmax
