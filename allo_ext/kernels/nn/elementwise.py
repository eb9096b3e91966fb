"""Binary elementwise kernels with numpy broadcasting, plus the argument checks and schedule
helpers that the other kernel modules of this package share.

A broadcast operand is read through a compile-time index map (``_Gather``): each of its
dimensions either follows an output axis or, when its size is 1, is pinned to index 0. The map
is a frozen dataclass rather than a closure so that two instances with the same shapes compare
equal and compile to one function in a composed module.

No ``from __future__ import annotations`` here: kernel annotations must be evaluated eagerly.
"""

import re
from dataclasses import dataclass

import numpy as np

from ...lang import grid
from ..registry import kernel, schedule_of
# One error class for bad factory arguments across the package (AlloError and ValueError).
from .shape import KernelArgumentError, schedule_latency

__all__ = ["add", "sub", "mul", "div", "KernelArgumentError", "broadcast_shape"]


# ---------------------------------------------------------------------- argument checks
def check_dims(kernel_name: str, **dims) -> None:
    """Every named size must be a positive int (zero-size loops would leave nothing to compute)."""
    for name, d in dims.items():
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1:
            raise KernelArgumentError(f"{kernel_name}: size {name} must be a positive int, got {d!r}")


def check_shape(kernel_name: str, shape, min_rank: int = 0, what: str = "shape") -> tuple:
    """``shape`` as a tuple of positive ints, with at least ``min_rank`` dimensions."""
    try:
        dims = tuple(shape)
    except TypeError:
        raise KernelArgumentError(f"{kernel_name}: {what} must be a tuple of ints, got {shape!r}") from None
    if len(dims) < min_rank:
        raise KernelArgumentError(f"{kernel_name}: {what} must have rank >= {min_rank}, got {dims} "
                                  f"(rank {len(dims)})")
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1:
            raise KernelArgumentError(f"{kernel_name}: {what} {dims} must hold positive ints, got {d!r}")
    return tuple(int(d) for d in dims)


def normalize_dim(kernel_name: str, dim, rank: int) -> int:
    """torch's convention: ``dim`` in ``[-rank, rank)``, negative counting from the end."""
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or not -rank <= dim < rank:
        raise KernelArgumentError(f"{kernel_name}: dim must be an int in [{-rank}, {rank - 1}] for a tensor of "
                                  f"rank {rank}, got {dim!r}")
    return int(dim) % rank


def check_eps(kernel_name: str, eps) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating)) or not eps >= 0:
        raise KernelArgumentError(f"{kernel_name}: eps must be a non-negative float, got {eps!r}")
    return float(eps)


def broadcast_shape(shape_a, shape_b, kernel_name: str = "broadcast") -> tuple:
    """The numpy broadcast of two shapes, or an error naming both and the dimension that clashes."""
    a = check_shape(kernel_name, shape_a, what="shape_a")
    b = check_shape(kernel_name, shape_b, what="shape_b")
    try:
        return tuple(int(d) for d in np.broadcast_shapes(a, b))
    except ValueError:
        pass
    # numpy's own message does not say which dimension clashes; find it for the user.
    for k in range(1, min(len(a), len(b)) + 1):
        if a[-k] != b[-k] and 1 not in (a[-k], b[-k]):
            raise KernelArgumentError(
                f"{kernel_name}: shapes {a} and {b} cannot be broadcast together: dimension {-k} has size "
                f"{a[-k]} in the first and {b[-k]} in the second (sizes must match or one must be 1)") from None
    raise AssertionError("unreachable: numpy refused shapes that agree")  # pragma: no cover


@dataclass(frozen=True)
class _Gather:
    """Compile-time map from an output index tuple to an operand's index tuple."""

    axes: tuple  # per operand dimension: the output axis it follows, or None if pinned to 0

    def __call__(self, i):
        return tuple(0 if a is None else i[a] for a in self.axes)


def _gather(shape: tuple, out: tuple) -> _Gather:
    off = len(out) - len(shape)
    return _Gather(tuple(None if d == 1 else off + k for k, d in enumerate(shape)))


def _broadcast(kernel_name: str, shape_a, shape_b):
    out = broadcast_shape(shape_a, shape_b, kernel_name)
    sa, sb = tuple(int(d) for d in shape_a), tuple(int(d) for d in shape_b)
    return sa, sb, out, _gather(sa, out), _gather(sb, out)


# ---------------------------------------------------------------------- schedule helpers
def innermost(s, fn: str, band: str):
    """The innermost loop of a ``grid`` band (``band.x0 .. band.xN``), or None if the band is empty."""
    pat = re.compile(re.escape(band) + r"\.[A-Za-z_]*(\d+)$")
    found = [(int(m.group(1)), n) for n in s.get_loops(fn) if (m := pat.match(n))]
    return f"{fn}:{max(found)[1]}" if found else None


# ---------------------------------------------------------------------- kernels
@kernel()
def add(T, shape_a, shape_b):
    sa, sb, out, ga, gb = _broadcast("add", shape_a, shape_b)

    def add(A: T[sa], B: T[sb]) -> T[out]:
        Z: T[out]
        for i in grid(*out, name="ew"):
            Z[i] = A[ga(i)] + B[gb(i)]
        return Z

    return add


@kernel()
def sub(T, shape_a, shape_b):
    sa, sb, out, ga, gb = _broadcast("sub", shape_a, shape_b)

    def sub(A: T[sa], B: T[sb]) -> T[out]:
        Z: T[out]
        for i in grid(*out, name="ew"):
            Z[i] = A[ga(i)] - B[gb(i)]
        return Z

    return sub


@kernel()
def mul(T, shape_a, shape_b):
    sa, sb, out, ga, gb = _broadcast("mul", shape_a, shape_b)

    def mul(A: T[sa], B: T[sb]) -> T[out]:
        Z: T[out]
        for i in grid(*out, name="ew"):
            Z[i] = A[ga(i)] * B[gb(i)]
        return Z

    return mul


@kernel()
def div(T, shape_a, shape_b):
    sa, sb, out, ga, gb = _broadcast("div", shape_a, shape_b)

    def div(A: T[sa], B: T[sb]) -> T[out]:
        Z: T[out]
        for i in grid(*out, name="ew"):
            Z[i] = A[ga(i)] / B[gb(i)]
        return Z

    return div


def _schedule_elementwise(s, fn, profile):
    """Pipeline the innermost output loop; a rank-0 result has no loop to pipeline."""
    if profile == "latency":
        return schedule_latency(s, fn)
    loop = innermost(s, fn, "ew")
    if loop is not None:
        s.pipeline(loop)


for _factory in (add, sub, mul, div):
    schedule_of(_factory)(_schedule_elementwise)
