"""Elementwise activations. Kernels use Allo's syntax; rank-generic ones loop with ``grid(*shape)``.

No ``from __future__ import annotations`` here: kernel annotations must be evaluated eagerly.
"""

from ...lang import grid
from ..registry import kernel, schedule_of

__all__ = ["relu2d", "relu3d", "relu"]


@kernel()
def relu2d(T, M, N):
    def relu2d(X: T[M, N]) -> T[M, N]:
        Z: T[M, N] = 0.0
        for i, j in grid(M, N, name="relu"):
            Z[i, j] = max(X[i, j], 0.0)
        return Z

    return relu2d


@kernel()
def relu3d(T, B, N, C):
    def relu3d(X: T[B, N, C]) -> T[B, N, C]:
        Z: T[B, N, C] = 0.0
        for b, n, c in grid(B, N, C, name="relu"):
            Z[b, n, c] = max(X[b, n, c], 0.0)
        return Z

    return relu3d


@kernel()
def relu(T, shape):
    shape = tuple(shape)

    def relu(X: T[shape]) -> T[shape]:
        Z: T[shape] = 0.0
        for i in grid(*shape, name="relu"):
            Z[i] = max(X[i], 0.0)
        return Z

    return relu


@schedule_of(relu2d)
def _schedule_relu2d(s, fn, profile):
    s.pipeline(f"{fn}:relu.j")


@schedule_of(relu3d)
def _schedule_relu3d(s, fn, profile):
    s.pipeline(f"{fn}:relu.c")


@schedule_of(relu)
def _schedule_relu(s, fn, profile):
    loops = sorted(n for n in s.get_loops(fn) if n.startswith("relu"))
    if loops:
        s.pipeline(f"{fn}:{loops[-1]}")
