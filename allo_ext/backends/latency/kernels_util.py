"""Reductions as balanced trees (log depth), constant products and multipliers on da4ml values."""
from __future__ import annotations

import numpy as np


def _tree(values: list, op):
    vals = list(values)
    while len(vals) > 1:
        nxt = [op(vals[i], vals[i + 1]) for i in range(0, len(vals) - 1, 2)]
        if len(vals) % 2:
            nxt.append(vals[-1])
        vals = nxt
    return vals[0]


def tree_sum(values: list):
    vals = [v for v in values if not (isinstance(v, float) and v == 0.0)]
    return _tree(vals, lambda a, b: a + b) if vals else 0.0


def _max(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return max(a, b)
    if isinstance(a, float):
        a, b = b, a
    return a.max_of(b)


def tree_max(values: list):
    """max is associative and exact: the kernel's running max equals the tree's."""
    return _tree(values, _max)


# ---------------------------------------------------------------------------- multipliers
import contextvars  # noqa: E402
import math  # noqa: E402

# Delay (in da4ml's units: one adder level) of an activation-activation product mapped to a DSP48E2, or
# None for da4ml's own model (a LUT array multiplier: one adder level per bit of the narrower operand).
DSP_DELAY = contextvars.ContextVar("allo_latency_dsp_delay", default=None)


def act_mul(a, b):
    """``a * b`` of two traced values (a multiplier in the Verilog), with the delay model chosen."""
    if isinstance(a, float) and isinstance(b, float):
        return a * b
    if isinstance(a, float):
        return const_mul(b, a)
    if isinstance(b, float):
        return const_mul(a, b)
    if hasattr(a, "model_mul"):  # the estimate's signal model (estimate.Sig), not a da4ml value
        return a.model_mul(b)
    dsp = DSP_DELAY.get()
    if dsp is None or a.low == a.high or b.low == b.high:
        return a * b
    from da4ml.trace import FixedVariable

    # The product node built with the delay and LUT cost given (da4ml computes its own when they are
    # not): the interval is the exact range of a product of the two intervals.
    ends = [a.low * b.low, a.low * b.high, a.high * b.low, a.high * b.high]
    base = max(float(a.latency), float(b.latency))
    cutoff = a.hwconf.latency_cutoff
    if 0 < cutoff < dsp:
        from .errors import StaticLoweringError

        raise StaticLoweringError(f"a multiplier (dsp_delay={dsp} adder levels) does not fit a pipeline stage of "
                                  f"delay={cutoff}: raise delay= to at least {dsp}, or pass dsp_delay=None")
    lat = base + dsp
    if cutoff > 0 and math.ceil(lat / cutoff) > math.ceil(base / cutoff):
        lat = math.ceil(base / cutoff) * cutoff + dsp  # starts at the next stage, as da4ml does for adders
    return FixedVariable(min(ends), max(ends), a.step * b.step, _from=(a, b), hwconf=a.hwconf,
                         _factor=a._factor * b._factor, opr="vmul", latency=lat, cost=0.0)


def f32_parts(c: np.ndarray) -> list:
    """``c`` as a sum of arrays each exact in float32 (da4ml's constant-matrix solver reads float32:
    a 32-bit BatchNorm scale or a wide weight would otherwise lose its low bits)."""
    parts, rest = [], np.asarray(c, dtype=np.float64)
    while np.any(rest != 0) and len(parts) < 8:
        hi = rest.astype(np.float32).astype(np.float64)
        parts.append(hi)
        rest = rest - hi  # exact: hi is rest rounded to 24 significant bits
    return parts or [np.zeros_like(rest)]


def const_matmul(row, w: np.ndarray, solver=None) -> np.ndarray:
    """``row @ w`` (row: 1-D object array of traced values or floats, w: (K, N) constants) through da4ml's
    constant-matrix solver: exact, and shared subexpressions across outputs. Its scalar ``x * c`` (a
    canonical-signed-digit expansion) is not used: in da4ml 0.6.0 it gives wrong bits for constants
    with 20 fraction bits (e.g. x * 2.78131008 into ap_fixed<16,6>: 18.78 for 2.78)."""
    row = np.asarray(row, dtype=object)
    if all(isinstance(v, float) for v in row):
        return np.array([float(v) for v in np.asarray(row, dtype=np.float64) @ w], dtype=object)
    from .estimate import cmvm, is_model

    if is_model(row):  # the estimate's own model of a constant-matrix product (no da4ml)
        return cmvm(row, w)
    from da4ml.trace import FixedVariableArray

    arr = FixedVariableArray(row.copy(), solver_options=solver or {})
    out = None
    for part in f32_parts(w):
        y = (arr @ part)._vars
        out = y if out is None else out + y
    return np.asarray(out, dtype=object)


def const_mul(v, c: float):
    """A traced value times a constant, exactly (see ``const_matmul``)."""
    if isinstance(v, float):
        return v * c
    if c == 0.0:
        return 0.0
    return const_matmul(np.array([v], dtype=object), np.array([[c]], dtype=np.float64))[0]
