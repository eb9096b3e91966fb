"""Elementwise math, comparisons and masks for the PyTorch frontend.

Every tensor of a compiled model is float32: a bool is 0.0/1.0 and an integer an exact float (up
to 2**24), so a comparison writes 1.0 or 0.0 and ``where`` tests ``!= 0``. One factory covers each
family; the op is picked by a compile-time code (``if OP == k`` emits only the taken branch), so
each instance is one small loop nest.

No ``from __future__ import annotations`` here: kernel annotations must be evaluated eagerly.
"""
import functools

from ...lang import atan, atan2, ceil, erf, exp, floor, grid, log, sqrt, tanh
from ..registry import kernel, schedule_of
from .elementwise import KernelArgumentError, _broadcast, _gather, broadcast_shape, check_shape, innermost
from .shape import schedule_latency

__all__ = ["unary", "binary", "where", "UNARY_OPS", "BINARY_OPS"]

UNARY_OPS = ("abs", "neg", "exp", "log", "sqrt", "rsqrt", "sigmoid", "tanh", "elu", "leaky_relu", "clamp", "sign",
             "pow", "square", "remainder", "logical_not", "to_bool", "trunc", "reciprocal", "atan", "floor", "ceil",
             "round", "erf", "softplus", "affine", "rpow")
BINARY_OPS = ("pow", "minimum", "maximum", "atan2", "remainder", "eq", "ne", "lt", "le", "gt", "ge",
              "logical_and", "logical_or", "logical_xor")


@kernel()
def unary(T, shape, op, a=0.0, b=0.0, c=1.0):
    """``Z = op(X)``; ``a``, ``b``, ``c`` are the op's scalars (elu: alpha, scale, input_scale;
    leaky_relu: slope; clamp: min, max; pow/remainder/rpow: the other operand; softplus: beta,
    threshold; affine: ``a*x + b``)."""
    shape = check_shape("unary", shape)
    if op not in UNARY_OPS:
        raise KernelArgumentError(f"unary: op must be one of {UNARY_OPS}, got {op!r}")
    return _unary(T, shape, UNARY_OPS.index(op), float(a), float(b), float(c))


@functools.lru_cache(maxsize=None)
def _unary(T, shape, OP, A, B, C):
    def unary(X: T[shape]) -> T[shape]:
        Z: T[shape]
        for i in grid(*shape, name="ew"):
            x: T = X[i]
            if OP == 0:
                Z[i] = abs(x)
            elif OP == 1:
                Z[i] = -x
            elif OP == 2:
                Z[i] = exp(x)
            elif OP == 3:
                Z[i] = log(x)
            elif OP == 4:
                Z[i] = sqrt(x)
            elif OP == 5:
                Z[i] = 1.0 / sqrt(x)
            elif OP == 6:
                Z[i] = 1.0 / (1.0 + exp(-x))
            elif OP == 7:
                Z[i] = tanh(x)
            elif OP == 8:  # elu: scale * (x > 0 ? x : alpha * (exp(x * input_scale) - 1))
                neg: T = A * (exp(x * C) - 1.0)
                Z[i] = B * (x if x > 0.0 else neg)
            elif OP == 9:
                Z[i] = x if x > 0.0 else x * A
            elif OP == 10:
                Z[i] = min(max(x, A), B)
            elif OP == 11:
                p: T = 1.0 if x > 0.0 else 0.0
                q: T = 1.0 if x < 0.0 else 0.0
                Z[i] = p - q
            elif OP == 12:
                Z[i] = x ** A
            elif OP == 13:
                Z[i] = x * x
            elif OP == 14:
                Z[i] = x % A
            elif OP == 15:
                Z[i] = 1.0 if x == 0.0 else 0.0
            elif OP == 16:
                Z[i] = 0.0 if x == 0.0 else 1.0
            elif OP == 17:
                Z[i] = floor(x) if x >= 0.0 else ceil(x)
            elif OP == 18:
                Z[i] = 1.0 / x
            elif OP == 19:
                Z[i] = atan(x)
            elif OP == 20:
                Z[i] = floor(x)
            elif OP == 21:
                Z[i] = ceil(x)
            elif OP == 22:
                Z[i] = round(x)
            elif OP == 23:
                Z[i] = erf(x)
            elif OP == 24:  # softplus: x * beta > threshold ? x : log(1 + exp(x * beta)) / beta
                soft: T = log(1.0 + exp(x * A)) / A
                Z[i] = x if x * A > B else soft
            elif OP == 25:
                Z[i] = A * x + B
            else:
                Z[i] = A ** x
        return Z

    return unary


@kernel()
def binary(T, shape_a, shape_b, op):
    """``Z = op(A, B)`` with numpy broadcasting; comparisons and logical ops write 1.0 or 0.0."""
    if op not in BINARY_OPS:
        raise KernelArgumentError(f"binary: op must be one of {BINARY_OPS}, got {op!r}")
    sa, sb, out, ga, gb = _broadcast("binary", shape_a, shape_b)
    return _binary(T, sa, sb, out, ga, gb, BINARY_OPS.index(op))


@functools.lru_cache(maxsize=None)
def _binary(T, sa, sb, out, ga, gb, OP):
    def binary(A: T[sa], B: T[sb]) -> T[out]:
        Z: T[out]
        for i in grid(*out, name="ew"):
            x: T = A[ga(i)]
            y: T = B[gb(i)]
            if OP == 0:
                Z[i] = x ** y
            elif OP == 1:
                Z[i] = min(x, y)
            elif OP == 2:
                Z[i] = max(x, y)
            elif OP == 3:
                Z[i] = atan2(x, y)
            elif OP == 4:
                Z[i] = x % y
            elif OP == 5:
                Z[i] = 1.0 if x == y else 0.0
            elif OP == 6:
                Z[i] = 1.0 if x != y else 0.0
            elif OP == 7:
                Z[i] = 1.0 if x < y else 0.0
            elif OP == 8:
                Z[i] = 1.0 if x <= y else 0.0
            elif OP == 9:
                Z[i] = 1.0 if x > y else 0.0
            elif OP == 10:
                Z[i] = 1.0 if x >= y else 0.0
            elif OP == 11:
                Z[i] = 1.0 if x != 0.0 and y != 0.0 else 0.0
            elif OP == 12:
                Z[i] = 1.0 if x != 0.0 or y != 0.0 else 0.0
            else:
                Z[i] = 1.0 if (x != 0.0) != (y != 0.0) else 0.0
        return Z

    return binary


@kernel()
def where(T, shape_c, shape_a, shape_b):
    """``Z = C != 0 ? A : B`` (torch.where, masked_fill) with numpy broadcasting of all three."""
    out = broadcast_shape(broadcast_shape(shape_c, shape_a, "where"), shape_b, "where")
    sc, sa, sb = (tuple(int(d) for d in s) for s in (shape_c, shape_a, shape_b))
    return _where(T, sc, sa, sb, out, _gather(sc, out), _gather(sa, out), _gather(sb, out))


@functools.lru_cache(maxsize=None)
def _where(T, sc, sa, sb, out, gc, ga, gb):
    def where(C: T[sc], A: T[sa], B: T[sb]) -> T[out]:
        Z: T[out]
        for i in grid(*out, name="ew"):
            x: T = A[ga(i)]
            y: T = B[gb(i)]
            Z[i] = x if C[gc(i)] != 0.0 else y
        return Z

    return where


def _schedule_ew(s, fn, profile):
    if profile == "latency":
        return schedule_latency(s, fn)
    loop = innermost(s, fn, "ew")
    if loop is not None:
        s.pipeline(loop)


for _factory in (unary, binary, where):
    schedule_of(_factory)(_schedule_ew)
