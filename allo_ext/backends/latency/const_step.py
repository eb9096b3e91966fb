"""da4ml 0.6's constant steps made exact while this route traces (a work-around, not a re-implementation).

da4ml stores a traced value as ``factor * unscaled`` with a power-of-two ``factor`` that its
constant-matrix solver picks (2**-39 in JetFormer's attention scores: the q/k products' factors
multiply). A constant operand of a multiplexer (``min_of``/``max_of``: the softmax clamp
``min(d, DMAX)``, a saturating conversion's bounds) is stored unscaled, ``DMAX / factor``, with the
coarsest step that holds it exactly, found by ``_const_f`` -- which only searches exponents in
(-32, 32]. ``10.734375 / 2**-39 = 687 * 2**33`` then gets the step 2**31 instead of 2**33; the
multiplexer would have to align it by ``output frac - operand frac = -2``, a negative shift that
da4ml's Verilog generator (``mux`` SHIFT1 = 0) and its C++ interpreter both drop: the clamped value
came out 0 in the C++ interpreter (``predict``) and another wrong value in the Verilog, while the
Python interpreter, which works in floats, was right (tests/test_latency_precision.py, the deep
attention scores). Here ``_const_f`` returns the exact exponent below the original search's reach (and da4ml's own
answer elsewhere), so the constant's step equals the value's and no shift is needed.
"""
from __future__ import annotations

import contextlib
import math


def exact_const_f(const) -> int:
    """The smallest ``f`` with ``const * 2**f`` an integer where da4ml's search cannot reach it (``f <= -32``,
    a large unscaled constant); da4ml's own answer everywhere else, so nothing else changes."""
    orig = _ORIGINAL
    if orig is None:
        from da4ml.trace.fixed_variable import _const_f as orig
    c = float(const)
    if c == 0.0 or not math.isfinite(c):
        return orig(const)
    m, e = math.frexp(abs(c))  # |c| = m * 2**e, 0.5 <= m < 1, m has 53 significant bits
    mant = int(m * 2.0 ** 53)
    f = 53 - e - ((mant & -mant).bit_length() - 1)  # minus the mantissa's trailing zero bits
    return f if f < -31 else orig(const)


_ORIGINAL = None


@contextlib.contextmanager
def exact_const_steps():
    """Within the block, da4ml's tracer and values use ``exact_const_f``."""
    global _ORIGINAL
    from da4ml.trace import fixed_variable, tracer

    saved = (fixed_variable._const_f, tracer._const_f)
    if saved[0] is not exact_const_f:  # nested: keep the first original
        _ORIGINAL = saved[0]
    fixed_variable._const_f = tracer._const_f = exact_const_f
    try:
        yield
    finally:
        fixed_variable._const_f, tracer._const_f = saved
