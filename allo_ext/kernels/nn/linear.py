"""Matrix products: torch ``Linear`` (weights stored ``[out, in]``), ``matmul`` and ``bmm``.

Every product accumulates in a scalar temporary over a ``range(K)`` loop named ``k`` inside the
output band ``mm``. For the linears the reduction reads ``X[.., k]`` and ``W[j, k]``, both
contiguous, which is why the weights stay in torch's layout instead of being transposed.

No ``from __future__ import annotations`` here: kernel annotations must be evaluated eagerly.
"""

from ...lang import grid
from ..registry import kernel, schedule_of
from .elementwise import MAX_UNROLL, check_dims, trip_count

__all__ = ["linear2d", "linear3d", "matmul", "bmm"]


@kernel()
def linear2d(T, M, K, N, bias=True):
    check_dims("linear2d", M=M, K=K, N=N)
    if bias:
        def linear2d(X: T[M, K], W: T[N, K], b: T[N]) -> T[M, N]:
            Z: T[M, N]
            for i, j in grid(M, N, name="mm"):
                acc: T = b[j]
                for k in range(K):
                    acc += X[i, k] * W[j, k]
                Z[i, j] = acc
            return Z
    else:
        def linear2d(X: T[M, K], W: T[N, K]) -> T[M, N]:
            Z: T[M, N]
            for i, j in grid(M, N, name="mm"):
                acc: T = 0.0
                for k in range(K):
                    acc += X[i, k] * W[j, k]
                Z[i, j] = acc
            return Z
    return linear2d


@kernel()
def linear3d(T, B, L, K, N, bias=True):
    check_dims("linear3d", B=B, L=L, K=K, N=N)
    if bias:
        def linear3d(X: T[B, L, K], W: T[N, K], b: T[N]) -> T[B, L, N]:
            Z: T[B, L, N]
            for n, l, j in grid(B, L, N, name="mm"):
                acc: T = b[j]
                for k in range(K):
                    acc += X[n, l, k] * W[j, k]
                Z[n, l, j] = acc
            return Z
    else:
        def linear3d(X: T[B, L, K], W: T[N, K]) -> T[B, L, N]:
            Z: T[B, L, N]
            for n, l, j in grid(B, L, N, name="mm"):
                acc: T = 0.0
                for k in range(K):
                    acc += X[n, l, k] * W[j, k]
                Z[n, l, j] = acc
            return Z
    return linear3d


@kernel()
def matmul(T, M, K, N):
    check_dims("matmul", M=M, K=K, N=N)

    def matmul(A: T[M, K], B: T[K, N]) -> T[M, N]:
        Z: T[M, N]
        for i, j in grid(M, N, name="mm"):
            acc: T = 0.0
            for k in range(K):
                acc += A[i, k] * B[k, j]
            Z[i, j] = acc
        return Z

    return matmul


@kernel()
def bmm(T, B, M, K, N):
    check_dims("bmm", B=B, M=M, K=K, N=N)

    def bmm(A: T[B, M, K], Bm: T[B, K, N]) -> T[B, M, N]:
        Z: T[B, M, N]
        for n, i, j in grid(B, M, N, name="mm"):
            acc: T = 0.0
            for k in range(K):
                acc += A[n, i, k] * Bm[n, k, j]
            Z[n, i, j] = acc
        return Z

    return bmm


def _schedule_product(s, fn, profile):
    """Pipeline the innermost output loop; the latency profile also unrolls a short reduction."""
    s.pipeline(f"{fn}:mm.j")
    if profile == "latency" and trip_count(s, fn, "k") <= MAX_UNROLL:
        s.unroll(f"{fn}:k")


for _factory in (linear2d, linear3d, matmul, bmm):
    schedule_of(_factory)(_schedule_product)
