"""softmax and log_softmax rows as da4ml lookup tables: the fixed kernels' own tables and steps.

The kernel (``allo_ext.kernels.nn.fixed_softmax``) computes per element ``d = m - x`` (clamped to the
table's reach), splits ``d * 2**k`` into its integer part ``i`` and the next ``kl`` fraction bits
``jl``, and multiplies two table entries ``EXP[i] * EXPLO[jl]`` into the sum type; the row sum picks
``1/s`` (or ``log s``) from a third table at ``floor((s - 1) * 2**kr)``. Here the same bit fields are
cut with da4ml quantisations (a floor, and a wrap that keeps the fraction), and the table contents
are the kernel's tables (the same factory functions), indexed over the values each field can take.
"""
from __future__ import annotations

import inspect
import math

import numpy as np

from ...lang.types import Fixed
from . import fixed as F
from .errors import StaticLoweringError
from .kernels_util import act_mul, tree_max, tree_sum


def _values(tab) -> np.ndarray:
    """A kernel ``table(values, T)`` as the exact numbers the kernel reads."""
    return F.constant(np.asarray(tab.values, dtype=np.float64), tab.dtype)


def _lookup(v, entry):
    """``entry(t)`` for every value ``t`` (an integer) that da4ml says ``v`` can hold, as one ROM."""
    lo, hi, step = float(v.low), float(v.high), float(v.step)
    # the fields are integers; a step of 2**s > 1 means the type feeding them has fewer fraction bits than
    # the table resolves (a calibrated narrow type): only every 2**s-th entry can be read
    if step < 1 or step != round(step):
        raise AssertionError(f"table index {v} is not integer-valued (step {step})")
    idx = np.arange(int(round(lo)), int(round(hi)) + 1, int(round(step)))
    table = np.array([entry(int(t)) for t in idx], dtype=np.float64)
    if len(table) == 1:
        return float(table[0])
    return v.lookup(table)


def _int_field(v, frac_shift: int, int_bits: int):
    """floor(v * 2**frac_shift) for v >= 0 as an integer-valued da4ml value."""
    return (v * float(2 ** frac_shift)).quantize(0, int_bits, 0, overflow_mode="WRAP", round_mode="TRN")


def _frac_field(v, frac_shift: int, bits: int):
    """floor(frac(v * 2**frac_shift) * 2**bits) as an integer-valued value (the bits below the point)."""
    f = (v * float(2 ** frac_shift)).quantize(0, 0, bits, overflow_mode="WRAP", round_mode="TRN")
    return f * float(2 ** bits)


def kernel_constants(fn, where: str) -> dict:
    """The tables, types and sizes the kernel instance closes over (read, never recomputed here, so a
    change of the kernel's tables changes this route with it)."""
    consts = dict(inspect.getclosurevars(fn).nonlocals)
    need = ("EXP", "EXPLO", "k", "n", "kl", "S", "kr", "nr", "CLAMP", "DMAX")
    missing = [c for c in need if c not in consts]
    if missing:
        raise StaticLoweringError(f"{where}: the fixed-point softmax kernel no longer defines {missing}; update "
                                  f"allo_ext/backends/latency/softmax.py to its new tables")
    return consts


def _exp_terms(row, c, where):
    """Per element: the kernel's ``e = S(EXP[i] * EXPLO[jl])`` and the row maximum."""
    k, n, kl, S = c["k"], c["n"], c["kl"], c["S"]
    D = c.get("D") or c.get("Dt")
    hi_vals, lo_vals = _values(c["EXP"]), _values(c["EXPLO"])
    dmax = float(F.constant(c["DMAX"], D))
    clamp = c["CLAMP"]
    m = tree_max(list(row))
    es = []
    for x in row:
        d = m - x
        if isinstance(d, float):
            d = float(F.constant(d, D))
        else:
            d = F.quantize(np.array([d], dtype=object), D, where)[0]
            d = d.relu()  # m is the row maximum: d >= 0 (the relu only tells da4ml so)
            if clamp:
                d = d.min_of(dmax)
        if isinstance(d, float):
            i = min(int(math.floor(d * 2 ** k)), n - 1)
            jl = int(math.floor((d * 2 ** k - math.floor(d * 2 ** k)) * 2 ** kl))
            e = float(F.constant(hi_vals[i] * lo_vals[jl], S))
            es.append(e)
            continue
        ibits = max(1, math.ceil(math.log2(float(d.high) * 2 ** k + 2)))
        i = _int_field(d, k, ibits)
        hi = _lookup(i, lambda t: hi_vals[min(max(t, 0), n - 1)])
        if kl > 0:
            jl = _frac_field(d, k, kl)
            lo = _lookup(jl, lambda t: lo_vals[t % (2 ** kl)])
            prod = act_mul(hi, lo)
        else:
            prod = hi * float(lo_vals[0])
        es.append(F.quantize(np.array([prod], dtype=object), S, where)[0])
    return es, m


def _row_index(total, kr: int, nr: int):
    """The kernel's ``j = clamp(int32((total - 1) * 2**kr), 0, nr - 1)`` as a da4ml integer value (>= 0)."""
    t = total - 1.0
    t = t.relu()  # clamp below at 0 (total >= 1 in exact arithmetic: exp(0) is the table's 1.0)
    ibits = max(1, math.ceil(math.log2(float(t.high) * 2 ** kr + 2)))
    return _int_field(t, kr, ibits)


def softmax_rows(rows: np.ndarray, T, where: str, fn) -> np.ndarray:
    out = np.empty(rows.shape, dtype=object)
    c = kernel_constants(fn, where)
    S, kr, nr, rv = c["S"], c["kr"], c["nr"], _values(c["RECIP"])
    for r in range(rows.shape[0]):
        es, m = _exp_terms(rows[r], c, where)
        total = tree_sum(es)
        total = F.quantize(np.array([total], dtype=object), S, where)[0]
        j = _row_index(total, kr, nr)
        recip = _lookup(j, lambda t: rv[min(max(t, 0), nr - 1)])
        out[r] = F.quantize(np.array([act_mul(e, recip) for e in es], dtype=object), T, where)
    return out


def log_softmax_rows(rows: np.ndarray, T, where: str, fn) -> np.ndarray:
    out = np.empty(rows.shape, dtype=object)
    c = kernel_constants(fn, where)
    S, kr, nr, lv = c["S"], c["kr"], c["nr"], _values(c["LOG"])
    sat = Fixed(T.bits, T.frac, q=T.q, o="SAT")
    for r in range(rows.shape[0]):
        es, m = _exp_terms(rows[r], c, where)
        total = tree_sum(es)
        total = F.quantize(np.array([total], dtype=object), S, where)[0]
        j = _row_index(total, kr, nr)
        lse = _lookup(j, lambda t: lv[min(max(t, 0), nr - 1)])
        # the kernel saturates at T.min (x - m - lse <= 0 reaches below T's range for a wide row)
        out[r] = F.quantize(np.array([(x - m) - lse for x in rows[r]], dtype=object), sat, where)
    return out
