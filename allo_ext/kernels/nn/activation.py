"""Activations: elementwise ones (relu, silu, gelu) and the row-wise softmax/log_softmax.

Kernels use Allo's syntax; rank-generic ones loop with ``grid(*shape)``. softmax and log_softmax
subtract the row maximum before ``exp``, so every exponential is at most 1: float32 ``exp``
overflows above about 88.7, where a naive ``log(sum(exp(x)))`` would give inf.

No ``from __future__ import annotations`` here: kernel annotations must be evaluated eagerly.
"""

import math

from ...lang import erf, exp, grid, log, tanh
from ..registry import kernel, schedule_of
from .fixed_softmax import log_softmax_fixed, softmax_fixed
from .elementwise import KernelArgumentError, check_dims, check_shape, innermost, normalize_dim
from .shape import schedule_latency

__all__ = ["relu2d", "relu3d", "relu", "silu", "gelu", "softmax", "softmax_lanes", "log_softmax"]

NEG_INF = float("-inf")
INV_SQRT2 = 1.0 / math.sqrt(2.0)
# torch-mlir's tanh-GELU uses 0.797724 here; the exact constant is what torch itself uses.
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
GELU_APPROXIMATIONS = ("none", "tanh")


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
    if profile == "latency":
        return schedule_latency(s, fn)
    s.pipeline(f"{fn}:relu.j")


@schedule_of(relu3d)
def _schedule_relu3d(s, fn, profile):
    if profile == "latency":
        return schedule_latency(s, fn)
    s.pipeline(f"{fn}:relu.c")


@schedule_of(relu)
def _schedule_relu(s, fn, profile):
    if profile == "latency":
        return schedule_latency(s, fn)
    loops = sorted(n for n in s.get_loops(fn) if n.startswith("relu"))
    if loops:
        s.pipeline(f"{fn}:{loops[-1]}")


@kernel()
def silu(T, shape):
    shape = check_shape("silu", shape)

    def silu(X: T[shape]) -> T[shape]:
        Z: T[shape]
        for i in grid(*shape, name="silu"):
            Z[i] = X[i] / (1.0 + exp(-X[i]))
        return Z

    return silu


@kernel()
def gelu(T, shape, approximate="none"):
    shape = check_shape("gelu", shape)
    if approximate not in GELU_APPROXIMATIONS:
        raise KernelArgumentError(f"gelu: approximate must be one of {GELU_APPROXIMATIONS} (as in "
                                  f"torch.nn.GELU), got {approximate!r}")
    if approximate == "none":
        def gelu(X: T[shape]) -> T[shape]:
            Z: T[shape]
            for i in grid(*shape, name="gelu"):
                Z[i] = 0.5 * X[i] * (1.0 + erf(X[i] * INV_SQRT2))
            return Z
    else:
        def gelu(X: T[shape]) -> T[shape]:
            Z: T[shape]
            for i in grid(*shape, name="gelu"):
                x: T = X[i]
                Z[i] = 0.5 * x * (1.0 + tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))
            return Z
    return gelu


def _insert(o, d, c):
    """Compile-time helper: the index tuple ``o`` with ``c`` inserted at position ``d``."""
    return tuple(o[:d]) + (c,) + tuple(o[d:])


@kernel()
def softmax(T, shape):
    shape = check_shape("softmax", shape, min_rank=1)
    if T.is_fixed:
        return softmax_fixed(T, shape)
    outer, C = shape[:-1], shape[-1]

    def softmax(X: T[shape]) -> T[shape]:
        Z: T[shape]
        for o in grid(*outer, name="row"):
            m: T = NEG_INF
            for c in range(C, name="max"):
                m = max(m, X[o, c])
            total: T = 0.0
            for c in range(C, name="sum"):
                e: T = exp(X[o, c] - m)
                Z[o, c] = e
                total += e
            for c in range(C, name="norm"):
                Z[o, c] = Z[o, c] / total
        return Z

    return softmax


@kernel()
def softmax_lanes(T, R, C, lanes=8):
    """The CPU form of ``softmax`` over the rows of ``X: T[R, C]`` (the frontend flattens the outer
    dims): ``lanes`` consecutive rows run side by side, one per vector lane, so the loops the
    vectoriser sees are the ``lanes``-wide ones, whatever the row length (JetFormer's rows of 9 have
    no width of their own). Each group of rows is copied to a lane-major scratch ``XT[C, lanes]``;
    the row maximum and sum are kept per lane, and each row is scaled by its reciprocal sum on the
    way out (one division per row).
    Same steps as ``softmax`` per row, except x * (1 / sum) for x / sum (<= 1 ulp apart).
    Float only; ``R`` must be a multiple of ``lanes`` (the frontend uses ``softmax`` otherwise)."""
    check_dims("softmax_lanes", R=R, C=C, lanes=lanes)
    if T.is_fixed:
        raise KernelArgumentError(f"softmax_lanes: {T} is fixed point; use softmax (its table form)")
    if R % lanes:
        raise KernelArgumentError(f"softmax_lanes: R={R} rows is not a multiple of lanes={lanes}; use softmax")
    G, L = R // lanes, lanes

    def softmax_lanes(X: T[R, C]) -> T[R, C]:
        Z: T[R, C]
        m: T[L]
        total: T[L]
        inv: T[L]
        XT: T[C, L]
        for g in range(G, name="row"):
            # Rows -> lanes. The vectoriser leaves this copy scalar (X is strided along l), and
            # every loop below reads unit-stride along l.
            for l in range(L, name="load"):
                for c in range(C, name="load_c"):
                    XT[c, l] = X[g * L + l, c]
            for l in range(L, name="init"):
                m[l] = NEG_INF
                total[l] = 0.0
            for c in range(C, name="max"):
                for l in range(L, name="max_l"):
                    m[l] = max(m[l], XT[c, l])
            for c in range(C, name="sum"):
                for l in range(L, name="sum_l"):
                    e: T = exp(XT[c, l] - m[l])
                    XT[c, l] = e
                    total[l] += e
            for l in range(L, name="inv"):
                inv[l] = 1.0 / total[l]
            for l in range(L, name="store"):
                for c in range(C, name="store_c"):
                    Z[g * L + l, c] = XT[c, l] * inv[l]
        return Z

    return softmax_lanes


@kernel()
def log_softmax(T, shape, dim=-1):
    shape = check_shape("log_softmax", shape, min_rank=1)
    D = normalize_dim("log_softmax", dim, len(shape))
    if T.is_fixed:
        return log_softmax_fixed(T, shape, D)
    outer, C = shape[:D] + shape[D + 1:], shape[D]

    def log_softmax(X: T[shape]) -> T[shape]:
        Z: T[shape]
        for o in grid(*outer, name="row"):
            m: T = NEG_INF
            for c in range(C, name="max"):
                m = max(m, X[_insert(o, D, c)])
            total: T = 0.0
            for c in range(C, name="sum"):
                total += exp(X[_insert(o, D, c)] - m)
            lse: T = log(total)
            for c in range(C, name="norm"):
                Z[_insert(o, D, c)] = X[_insert(o, D, c)] - m - lse
        return Z

    return log_softmax


@schedule_of(silu)
def _schedule_silu(s, fn, profile):
    if profile == "latency":
        return schedule_latency(s, fn)
    loop = innermost(s, fn, "silu")
    if loop is not None:
        s.pipeline(loop)


@schedule_of(gelu)
def _schedule_gelu(s, fn, profile):
    if profile == "latency":
        return schedule_latency(s, fn)
    loop = innermost(s, fn, "gelu")
    if loop is not None:
        s.pipeline(loop)


def schedule_rows(s, fn, profile, reductions):
    """Row-wise kernels (a ``row`` band around loops over the reduced dimension).

    default: pipeline each loop over the reduced dimension. latency: ``schedule_latency``, which
    pipelines the row loop and unrolls those loops when a row is short.
    """
    if profile == "latency":
        return schedule_latency(s, fn)
    for r in reductions:
        s.pipeline(f"{fn}:{r}.c")


@schedule_of(softmax)
@schedule_of(log_softmax)
def _schedule_softmax(s, fn, profile):
    schedule_rows(s, fn, profile, ("max", "sum", "norm"))
