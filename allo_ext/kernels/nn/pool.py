"""Pooling over one dimension: ``mean_pool`` (torch ``x.mean(dim)``), e.g. over the particles of a jet.

No ``from __future__ import annotations`` here: kernel annotations must be evaluated eagerly.
"""
import functools

from ...lang import grid
from ..registry import kernel, schedule_of
from .shape import check_dim, check_shape, insert_index, schedule_latency

__all__ = ["mean_pool"]


@kernel()
def mean_pool(T, shape, dim):
    shape = check_shape("mean_pool", shape)
    dim = check_dim("mean_pool", dim, len(shape))
    return _mean_pool(T, shape, dim)


@functools.lru_cache(maxsize=None)
def _mean_pool(T, shape, dim):
    out_shape = shape[:dim] + shape[dim + 1:]
    n = shape[dim]

    def mean_pool(X: T[shape]) -> T[out_shape]:
        Z: T[out_shape]
        for i in grid(*out_shape, name="mp"):
            acc: T = 0.0
            for k in range(n, name="mp_red"):
                acc += X[insert_index(i, dim, k)]
            Z[i] = acc / n
        return Z

    return mean_pool


@schedule_of(mean_pool)
def _schedule_mean_pool(s, fn, profile):
    if profile == "latency":
        return schedule_latency(s, fn)
    s.pipeline(f"{fn}:mp_red.k")
