"""Reductions over one dim beyond sum and mean: max, min, prod, argmax, argmin, and the variance.

The variance takes the mean first and then the sum of squared deviations (two passes), which is
exact for a constant row (zero variance) where E[x^2] - E[x]^2 can go negative.

No ``from __future__ import annotations`` here: kernel annotations must be evaluated eagerly.
"""
import functools

from ...lang import grid
from ..registry import kernel, schedule_of
from .elementwise import KernelArgumentError
from .shape import check_dim, check_shape, insert_index, schedule_latency

__all__ = ["reduce_op", "variance", "REDUCE_OPS"]

REDUCE_OPS = ("max", "min", "prod", "argmax", "argmin")


@kernel()
def reduce_op(T, shape, dim, op):
    """``op`` over ``dim`` (dropped). argmax/argmin give the first index of the extreme value, as torch."""
    shape = check_shape("reduce_op", shape)
    dim = check_dim("reduce_op", dim, len(shape))
    if op not in REDUCE_OPS:
        raise KernelArgumentError(f"reduce_op: op must be one of {REDUCE_OPS}, got {op!r}")
    return _reduce_op(T, shape, dim, REDUCE_OPS.index(op))


@functools.lru_cache(maxsize=None)
def _reduce_op(T, shape, dim, OP):
    out = shape[:dim] + shape[dim + 1:]
    n = shape[dim]

    def reduce_op(X: T[shape]) -> T[out]:
        Z: T[out]
        for i in grid(*out, name="red"):
            acc: T = X[insert_index(i, dim, 0)]
            best: T = 0.0
            for k in range(1, n, name="red_k"):
                v: T = X[insert_index(i, dim, k)]
                if OP == 0:
                    acc = max(acc, v)
                elif OP == 1:
                    acc = min(acc, v)
                elif OP == 2:
                    acc = acc * v
                elif OP == 3:
                    if v > acc:
                        acc = v
                        best = T(k)
                else:
                    if v < acc:
                        acc = v
                        best = T(k)
            if OP >= 3:
                Z[i] = best
            else:
                Z[i] = acc
        return Z

    return reduce_op


@kernel()
def variance(T, shape, dim, correction=1.0):
    """``torch.var(x, dim, correction=correction)``: sum of squared deviations / (n - correction)."""
    shape = check_shape("variance", shape)
    dim = check_dim("variance", dim, len(shape))
    return _variance(T, shape, dim, float(correction))


@functools.lru_cache(maxsize=None)
def _variance(T, shape, dim, CORR):
    out = shape[:dim] + shape[dim + 1:]
    n = shape[dim]
    DEN = n - CORR

    def variance(X: T[shape]) -> T[out]:
        Z: T[out]
        for i in grid(*out, name="var"):
            total: T = 0.0
            for k in range(n, name="mean"):
                total += X[insert_index(i, dim, k)]
            mu: T = total / n
            ss: T = 0.0
            for k in range(n, name="dev"):
                d: T = X[insert_index(i, dim, k)] - mu
                ss += d * d
            Z[i] = ss / DEN
        return Z

    return variance


@schedule_of(reduce_op)
def _schedule_reduce_op(s, fn, profile):
    if profile == "latency":
        return schedule_latency(s, fn)


@schedule_of(variance)
def _schedule_variance(s, fn, profile):
    if profile == "latency":
        return schedule_latency(s, fn)
    s.pipeline(f"{fn}:mean.k")
    s.pipeline(f"{fn}:dev.k")
