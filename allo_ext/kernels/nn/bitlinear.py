"""The 1-bit linear layer of the JetFormer paper (BitNet-style): +-1 weights times absmax int8 activations.

Per row ``m`` of X: ``gamma = 127 / max(max|x|, 1e-5)``, ``xq = clamp(round_half_even(x * gamma),
-128, 127)`` as int8, ``acc[m, n] = sum_k xq[k] * S[n, k]`` in int32, then
``y = float(acc) * beta / gamma + b`` (left to right, as ``allo_ext.models.BitLinear`` evaluates it).

``bitlinear_int`` is the integer part alone, so it can be checked exactly; ``bitlinear`` calls it
and applies the float scale. ``bitlinear_weights`` turns a float weight matrix into (S, beta).

No ``from __future__ import annotations`` here: kernel annotations must be evaluated eagerly.
"""
import functools

import numpy as np

from ...lang import bool_, grid, int8, int32
from ..registry import kernel, schedule_of
from .shape import KernelArgumentError, check_shape, schedule_latency

__all__ = ["bitlinear", "bitlinear_core", "bitlinear_int", "bitlinear_sign_bits", "bitlinear_weights", "linear_int8"]

# int8 range of the quantised activations, and the floor of max|x| so an all-zero row gives a finite gamma.
QMAX = 127.0
QMIN = -128.0
EPS = 1e-5
# 128 * K must fit in int32 with room to spare: the accumulator never overflows.
MAX_K = 2**24


def bitlinear_weights(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(S, beta) for weights ``W`` of shape (N, K): S = sign(W - mean(W)) as int8 with 0 -> +1, and
    beta = mean|W| as a float32 array of shape (1,).

    The means are accumulated in float64 and rounded once to float32, so they are the correctly
    rounded float32 means; torch's float32 reduction may differ from them in the last bit.
    """
    W = np.asarray(W)
    if W.ndim != 2 or W.size == 0:
        raise KernelArgumentError(f"bitlinear_weights: W must be a non-empty 2-D (out, in) matrix, got shape {W.shape}")
    if not np.issubdtype(W.dtype, np.floating):
        raise KernelArgumentError(f"bitlinear_weights: W must be floating point, got dtype {W.dtype}")
    if not np.isfinite(W).all():
        raise KernelArgumentError("bitlinear_weights: W contains NaN or inf")
    w = W.astype(np.float32)
    alpha = np.float32(w.mean(dtype=np.float64))
    S = np.where(w - alpha >= 0, 1, -1).astype(np.int8)
    beta = np.array([np.abs(w).mean(dtype=np.float64)], dtype=np.float32)
    return S, beta


def _check(kname, M, K, N):
    check_shape(kname, (M, K, N), "(M, K, N)")
    if K >= MAX_K:
        raise KernelArgumentError(f"{kname}: K={K} is too large for the int32 accumulator (|acc| <= 128 * K); "
                                  f"use K < {MAX_K}")


@kernel()
def bitlinear_int(T, M, K, N):
    _check("bitlinear_int", M, K, N)
    return _bitlinear_int(T, M, K, N)


@functools.lru_cache(maxsize=None)
def _bitlinear_int(T, M, K, N):
    def bitlinear_int(X: T[M, K], S: int8[N, K]) -> (int32[M, N], T[M]):
        Acc: int32[M, N]
        G: T[M]
        Xq: int8[K]
        for m in range(M, name="row"):
            amax: T = 0.0
            for k in range(K, name="absmax"):
                amax = max(amax, abs(X[m, k]))
            g: T = QMAX / max(amax, EPS)
            G[m] = g
            for k in range(K, name="quant"):
                Xq[k] = int8(min(max(round(X[m, k] * g), QMIN), QMAX))
            for n in range(N, name="dot"):
                acc: int32 = 0
                for k in range(K, name="dot_red"):
                    acc += int32(Xq[k]) * int32(S[n, k])
                Acc[m, n] = acc
        return Acc, G

    return bitlinear_int


@schedule_of(bitlinear_int)
def _schedule_bitlinear_int(s, fn, profile):
    if profile == "latency":
        return schedule_latency(s, fn)
    s.pipeline(f"{fn}:absmax.k")
    s.pipeline(f"{fn}:quant.k")
    s.pipeline(f"{fn}:dot_red.k")


@kernel()
def bitlinear(T, M, K, N, bias=True):
    _check("bitlinear", M, K, N)
    return _bitlinear(T, M, K, N, bool(bias))


@functools.lru_cache(maxsize=None)
def _bitlinear(T, M, K, N, bias):
    integer = _bitlinear_int(T, M, K, N)
    integer.__allo_kernel__ = "bitlinear_int"
    if bias:
        def bitlinear(X: T[M, K], S: int8[N, K], beta: T[1], b: T[N]) -> T[M, N]:
            Acc, G = integer(X, S)
            Z: T[M, N]
            for m, n in grid(M, N, name="scale"):
                Z[m, n] = T(Acc[m, n]) * beta[0] / G[m] + b[n]
            return Z
    else:
        def bitlinear(X: T[M, K], S: int8[N, K], beta: T[1]) -> T[M, N]:
            Acc, G = integer(X, S)
            Z: T[M, N]
            for m, n in grid(M, N, name="scale"):
                Z[m, n] = T(Acc[m, n]) * beta[0] / G[m]
            return Z
    return bitlinear


@schedule_of(bitlinear)
def _schedule_bitlinear(s, fn, profile):
    if profile == "latency":
        return schedule_latency(s, fn)
    # The integer part is its own function and gets bitlinear_int's schedule from apply_schedules.
    s.pipeline(f"{fn}:scale.n")


# ---------------------------------------------------------------------- the hardware core
def bitlinear_sign_bits(S: np.ndarray) -> np.ndarray:
    """The +-1 matrix of ``bitlinear_weights`` as one bit per weight (True for +1): the storage of
    ``bitlinear_core``."""
    S = np.asarray(S)
    if not np.isin(S, (-1, 1)).all():
        raise KernelArgumentError("bitlinear_sign_bits: S must hold only -1 and +1")
    return S > 0


@kernel()
def bitlinear_core(M, K, N):
    """The integer inner product of ``bitlinear_int`` for hardware: weights stored as one bit each
    (``bitlinear_sign_bits``), int8 activations already quantised, and each term added or subtracted,
    so the datapath has adders and no multiplier (Yosys maps it to LUTs and carry chains, no DSP).
    ``acc[m, n] = sum_k (Xq[m, k] if P[n, k] else -Xq[m, k])`` equals ``Xq @ S.T`` in int32."""
    _check("bitlinear_core", M, K, N)

    def bitlinear_core(Xq: int8[M, K], P: bool_[N, K]) -> int32[M, N]:
        Acc: int32[M, N]
        for m, n in grid(M, N, name="dot"):
            acc: int32 = 0
            for k in range(K, name="red"):
                x: int32 = int32(Xq[m, k])
                acc += x if P[n, k] else -x
            Acc[m, n] = acc
        return Acc

    return bitlinear_core


@schedule_of(bitlinear_core)
def _schedule_bitlinear_core(s, fn, profile):
    if profile == "latency":
        return schedule_latency(s, fn)
    s.pipeline(f"{fn}:red.k")


@kernel()
def linear_int8(M, K, N):
    """int8 activations times int8 weights into int32 accumulators: the multiplier-based baseline of
    ``bitlinear_core`` with the same shapes and the same output."""
    check_shape("linear_int8", (M, K, N), "(M, K, N)")

    def linear_int8(X: int8[M, K], W: int8[N, K]) -> int32[M, N]:
        Z: int32[M, N]
        for m, n in grid(M, N, name="dot"):
            acc: int32 = 0
            for k in range(K, name="red"):
                acc += int32(X[m, k]) * int32(W[n, k])
            Z[m, n] = acc
        return Z

    return linear_int8


@schedule_of(linear_int8)
def _schedule_linear_int8(s, fn, profile):
    if profile == "latency":
        return schedule_latency(s, fn)
    s.pipeline(f"{fn}:red.k")
