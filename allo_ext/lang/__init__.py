"""The Allo-style kernel language: types, loop constructs and math functions.

Kernels are plain Python functions with typed arguments, compiled from their AST::

    def relu3d(T, B, N, C):
        def relu3d(X: T[B, N, C]) -> T[B, N, C]:
            Z: T[B, N, C] = 0.0
            for b, n, c in grid(B, N, C, name="relu"):
                Z[b, n, c] = max(X[b, n, c], 0.0)
            return Z
        return relu3d

Supported inside a kernel: typed array arguments and results, local buffers with an initial
value, ``grid``/``range`` loops (``affine.for``), scalar temporaries, ``+ - * / // %``,
comparisons, ``max``/``min``/``abs``/``round`` (half to even), ``if``/``else`` and conditional expressions, the math functions
below, casts written ``float32(x)``, calls to other kernels, and compile-time helper calls that
work on index tuples (``for i in grid(*shape)`` binds ``i`` to a tuple of indices).
"""
from .errors import AlloError, CallError, KernelSyntaxError, KernelTypeError, ScheduleError, ToolNotFoundError
from .types import (ArrayType, DType, Fixed, Float, Index, Int, UFixed, bool_, float32, float64, index, int1, int8,
                    int16, int32, int64, parse_precision, uint8, uint16, uint32, uint64)


def table(values, dtype):
    """A constant array for a kernel's closure, of element type ``dtype`` (fixed point: quantised with
    the type's modes at compile time), e.g. a lookup table: ``EXP = table(np.exp(-x), Fixed(18, 17))``."""
    import numpy as _np

    from .values import Table

    return Table(_np.asarray(values), dtype)


def grid(*dims, name: str | None = None):
    """Loop nest over ``dims``; inside a kernel each dimension becomes an ``affine.for``."""
    import itertools

    flat = [d for x in dims for d in (x if isinstance(x, (tuple, list)) else (x,))]
    return itertools.product(*(range(d) for d in flat))


def _builtin(name, np_fn):
    def f(x):
        return np_fn(x)

    f.__name__ = name
    f.__allo_builtin__ = name
    return f


import math as _m  # noqa: E402

import numpy as _np  # noqa: E402

exp = _builtin("exp", _np.exp)
log = _builtin("log", _np.log)
sqrt = _builtin("sqrt", _np.sqrt)
tanh = _builtin("tanh", _np.tanh)
erf = _builtin("erf", _np.vectorize(_m.erf))
floor = _builtin("floor", _np.floor)
ceil = _builtin("ceil", _np.ceil)
atan = _builtin("atan", _np.arctan)


def atan2(y, x):
    """Two-argument arctangent (``math.atan2``), as torch.atan2."""
    return _np.arctan2(y, x)


atan2.__allo_builtin__ = "atan2"

__all__ = [
    "AlloError", "CallError", "KernelSyntaxError", "KernelTypeError", "ScheduleError", "ToolNotFoundError",
    "ArrayType", "DType", "Fixed", "Float", "Index", "Int", "UFixed", "parse_precision", "bool_", "float32", "float64", "index",
    "int1", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "grid", "table", "exp", "log", "sqrt", "tanh", "erf", "floor", "ceil", "atan", "atan2",
]
