"""Broadcast and reductions that the PyTorch frontend needs beyond the core kernels."""
import numpy as np

from ...lang import grid
from ...lang.errors import AlloError
from ..registry import kernel, schedule_of
from .shape import schedule_latency

__all__ = ["broadcast_to", "reduce_sum"]


@kernel()
def broadcast_to(T, shape_in, shape_out):
    """numpy/torch ``expand``: size-1 (or missing leading) dims of ``shape_in`` repeat to ``shape_out``."""
    shape_in, shape_out = tuple(shape_in), tuple(shape_out)
    try:
        if np.broadcast_shapes(shape_in, shape_out) != shape_out:
            raise ValueError
    except ValueError:
        raise AlloError(f"broadcast_to: cannot broadcast shape {shape_in} to {shape_out}") from None
    lead = len(shape_out) - len(shape_in)
    keep = tuple(d if shape_in[d - lead] != 1 else None for d in range(lead, len(shape_out)))

    def src(i):
        return tuple(0 if d is None else i[d] for d in keep)

    def broadcast_to(X: T[shape_in]) -> T[shape_out]:
        Z: T[shape_out]
        for i in grid(*shape_out, name="bcast"):
            Z[i] = X[src(i)]
        return Z

    return broadcast_to


@kernel()
def reduce_sum(T, shape, dim):
    """Sum over one dim (dropped), accumulated in a scalar in index order, like torch on CPU for small sizes."""
    shape = tuple(shape)
    if not -len(shape) <= dim < len(shape):
        raise AlloError(f"reduce_sum: dim {dim} is out of range for shape {shape}")
    dim %= len(shape)
    out = shape[:dim] + shape[dim + 1:]
    n = shape[dim]

    def ins(i, k):
        return tuple(i[:dim]) + (k,) + tuple(i[dim:])

    def reduce_sum(X: T[shape]) -> T[out]:
        Z: T[out]
        for i in grid(*out, name="sum"):
            acc: T = 0.0
            for k in range(n):
                acc += X[ins(i, k)]
            Z[i] = acc
        return Z

    return reduce_sum


@schedule_of(broadcast_to)
def _schedule_broadcast_to(s, fn, profile):
    if profile == "latency":
        return schedule_latency(s, fn)
    loops = sorted(n for n in s.get_loops(fn) if n.startswith("bcast"))
    if loops:
        s.pipeline(f"{fn}:{loops[-1]}")


@schedule_of(reduce_sum)
def _schedule_reduce_sum(s, fn, profile):
    if profile == "latency":
        return schedule_latency(s, fn)
    s.pipeline(f"{fn}:k")
