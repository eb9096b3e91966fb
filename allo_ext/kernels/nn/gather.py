"""Data-dependent indexing for the frontend: topk/sort on a short last dim, gather, index, and tile.

``topk`` ranks every element of a row against every other (a comparison matrix: n*n independent
compares, the usual HLS structure for kNN on a few dozen particles, with no data-dependent loop
bounds); an element's rank is how many elements beat it, ties broken by the lower index, so the
order equals a stable descending sort. Indices are float32 values (exact below 2**24), as every
integer tensor of a compiled model.

No ``from __future__ import annotations`` here: kernel annotations must be evaluated eagerly.
"""
import functools

from ...lang import grid, index
from ..registry import kernel, schedule_of
from .elementwise import KernelArgumentError
from .shape import as_int, check_dim, check_shape, replace_index, schedule_latency

__all__ = ["topk", "gather", "index_select_nd", "tile"]


@kernel()
def topk(T, shape, k, largest=True):
    """The ``k`` largest (or smallest) values of each row of the last dim, in order, and their indices."""
    shape = check_shape("topk", shape)
    n = shape[-1]
    k = as_int("topk", "k", k)
    if not 1 <= k <= n:
        raise KernelArgumentError(f"topk: k must be in 1..{n} (the size of the last dim), got {k}")
    return _topk(T, shape, k, bool(largest))


@functools.lru_cache(maxsize=None)
def _topk(T, shape, K, LARGEST):
    outer, n = shape[:-1], shape[-1]
    out = outer + (K,)

    def topk(X: T[shape]) -> (T[out], T[out]):
        V: T[out]
        I: T[out]
        for o in grid(*outer, name="row"):
            for a in range(n, name="rank"):
                xa: T = X[o, a]
                r: index = 0
                for b in range(n, name="cmp"):
                    xb: T = X[o, b]
                    if LARGEST:
                        if xb > xa or (xb == xa and b < a):
                            r = r + 1
                    else:
                        if xb < xa or (xb == xa and b < a):
                            r = r + 1
                if r < K:
                    V[o, r] = xa
                    I[o, r] = T(a)
        return V, I

    return topk


@kernel()
def gather(T, shape_x, shape_i, dim):
    """``torch.gather(x, dim, idx)``: ``Z[i] = X[i with dim replaced by idx[i]]`` (negative indices wrap)."""
    shape_x = check_shape("gather", shape_x, "shape_x")
    shape_i = check_shape("gather", shape_i, "shape_i")
    dim = check_dim("gather", dim, len(shape_x))
    if len(shape_i) != len(shape_x) or any(a > b for k, (a, b) in enumerate(zip(shape_i, shape_x)) if k != dim):
        raise KernelArgumentError(f"gather: index shape {shape_i} must have the rank of {shape_x} and be no larger "
                                  f"outside dim {dim}")
    return _gather(T, shape_x, shape_i, dim)


@functools.lru_cache(maxsize=None)
def _gather(T, shape_x, shape_i, dim):
    SIZE = float(shape_x[dim])

    def gather(X: T[shape_x], Ix: T[shape_i]) -> T[shape_i]:
        Z: T[shape_i]
        for i in grid(*shape_i, name="ga"):
            v: T = Ix[i]
            w: T = v + SIZE if v < 0.0 else v
            j: index = index(w)
            Z[i] = X[replace_index(i, dim, j)]
        return Z

    return gather


@kernel()
def index_select_nd(T, shape_x, shape_i, dim):
    """``x[:, ..., idx, ...]`` with one index tensor at ``dim`` (advanced indexing):
    result shape ``shape_x[:dim] + shape_i + shape_x[dim+1:]``."""
    shape_x = check_shape("index_select_nd", shape_x, "shape_x")
    shape_i = check_shape("index_select_nd", shape_i, "shape_i")
    dim = check_dim("index_select_nd", dim, len(shape_x))
    return _index_select_nd(T, shape_x, shape_i, dim)


def _split(o, dim, ri):
    return tuple(o[dim:dim + ri])


def _place(o, dim, ri, j):
    return tuple(o[:dim]) + (j,) + tuple(o[dim + ri:])


@functools.lru_cache(maxsize=None)
def _index_select_nd(T, shape_x, shape_i, dim):
    ri = len(shape_i)
    out = shape_x[:dim] + shape_i + shape_x[dim + 1:]
    SIZE = float(shape_x[dim])

    def index_select_nd(X: T[shape_x], Ix: T[shape_i]) -> T[out]:
        Z: T[out]
        for o in grid(*out, name="ix"):
            v: T = Ix[_split(o, dim, ri)]
            w: T = v + SIZE if v < 0.0 else v
            j: index = index(w)
            Z[o] = X[_place(o, dim, ri, j)]
        return Z

    return index_select_nd


@kernel()
def tile(T, shape_in, reps):
    """``x.repeat(*reps)``: the input tiled ``reps[k]`` times along dim k (missing leading dims are 1)."""
    shape_in = check_shape("tile", shape_in, "shape_in")
    reps = tuple(as_int("tile", "reps entry", r) for r in reps)
    if len(reps) < len(shape_in) or any(r < 1 for r in reps):
        raise KernelArgumentError(f"tile: reps {reps} must be positive and at least as many as the dims of "
                                  f"{shape_in}")
    return _tile(T, shape_in, reps)


@functools.lru_cache(maxsize=None)
def _tile(T, shape_in, reps):
    lead = len(reps) - len(shape_in)
    full = (1,) * lead + shape_in
    out = tuple(d * r for d, r in zip(full, reps))

    def src(i):
        return tuple(0 if shape_in[k] == 1 else i[k + lead].mod_const(shape_in[k]) if reps[k + lead] > 1
                     else i[k + lead] for k in range(len(shape_in)))

    def tile(X: T[shape_in]) -> T[out]:
        Z: T[out]
        for i in grid(*out, name="tile"):
            Z[i] = X[src(i)]
        return Z

    return tile


@schedule_of(topk)
@schedule_of(gather)
@schedule_of(index_select_nd)
@schedule_of(tile)
def _schedule_data_dependent(s, fn, profile):
    if profile == "latency":
        return schedule_latency(s, fn)
