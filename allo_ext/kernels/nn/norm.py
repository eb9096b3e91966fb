"""Normalisation layers: BatchNorm1d in inference mode (running statistics) and LayerNorm.

BatchNorm computes each channel's ``1/sqrt(var + eps)`` once in a ``stat`` loop, so the main
band does only multiply-adds (one square root per channel, not per element, in hardware).
LayerNorm takes the mean first and then the biased variance of the centred values (two passes),
which loses no precision when the mean is large compared with the spread, unlike E[x^2]-E[x]^2.

No ``from __future__ import annotations`` here: kernel annotations must be evaluated eagerly.
"""

import numpy as np

from ...lang import Fixed, float32, grid, sqrt
from ..registry import kernel, schedule_of
from .activation import schedule_rows
from .elementwise import check_dims, check_eps, check_shape
from .shape import schedule_latency

__all__ = ["batchnorm1d_2d", "batchnorm1d_3d", "batchnorm_channels_last", "layernorm"]


def bn_fixed_scale(T, gamma, var, eps):
    """The per-channel scale of the fixed-point BatchNorm computed at compile time, with the same
    float32 steps as the kernel's ``stat`` loop (gamma and var first quantised to T, as the kernel's
    T-typed inputs are; IEEE float32 add, sqrt and divide are correctly rounded in numpy as in C), so
    that a model with constant statistics needs no float hardware (target="rtl")."""
    from ...lang import fixed as fx

    g = fx.dequantize(fx.quantize(np.asarray(gamma, np.float64), T), T).astype(np.float32)
    v = fx.dequantize(fx.quantize(np.asarray(var, np.float64), T), T).astype(np.float32)
    return (g / np.sqrt(v + np.float32(eps))).astype(np.float32)


def _bn_fixed(name, T, shape, axis, eps, acc, const_scale=False):
    """Fixed point: one scale ``gamma / sqrt(var + eps)`` per channel, computed in float32 in the
    ``stat`` loop and held in ``acc`` (default Fixed(32, 20)), then ``(x - mean) * scale + beta``
    with exact products, quantised into T once. Loop names as in the float kernels.
    ``const_scale``: the scale is an input of type ``acc`` instead (``bn_fixed_scale``, for
    constant statistics): no float loop, so the kernel has an integer-only form."""
    S = acc if acc is not None else Fixed(32, 20)
    C = shape[axis]
    if const_scale:
        return _bn_scaled(name, T, S, shape, axis)
    if len(shape) == 2:
        B = shape[0]

        def bn(X: T[B, C], gamma: T[C], beta: T[C], mean: T[C], var: T[C]) -> T[B, C]:
            scale: S[C]
            for c in range(C, name="stat"):
                scale[c] = float32(gamma[c]) / sqrt(float32(var[c]) + eps)
            Z: T[B, C]
            for b, c in grid(B, C, name="bn"):
                Z[b, c] = (X[b, c] - mean[c]) * scale[c] + beta[c]
            return Z
    elif axis == 1:
        B, L = shape[0], shape[2]

        def bn(X: T[B, C, L], gamma: T[C], beta: T[C], mean: T[C], var: T[C]) -> T[B, C, L]:
            scale: S[C]
            for c in range(C, name="stat"):
                scale[c] = float32(gamma[c]) / sqrt(float32(var[c]) + eps)
            Z: T[B, C, L]
            for b, c, l in grid(B, C, L, name="bn"):
                Z[b, c, l] = (X[b, c, l] - mean[c]) * scale[c] + beta[c]
            return Z
    else:
        B, L = shape[0], shape[1]

        def bn(X: T[B, L, C], gamma: T[C], beta: T[C], mean: T[C], var: T[C]) -> T[B, L, C]:
            scale: S[C]
            for c in range(C, name="stat"):
                scale[c] = float32(gamma[c]) / sqrt(float32(var[c]) + eps)
            Z: T[B, L, C]
            for b, l, c in grid(B, L, C, name="bn"):
                Z[b, l, c] = (X[b, l, c] - mean[c]) * scale[c] + beta[c]
            return Z

    bn.__name__ = name
    return bn


def _bn_scaled(name, T, S, shape, axis):
    C = shape[axis]
    if len(shape) == 2:
        B = shape[0]

        def bn(X: T[B, C], scale: S[C], beta: T[C], mean: T[C]) -> T[B, C]:
            Z: T[B, C]
            for b, c in grid(B, C, name="bn"):
                Z[b, c] = (X[b, c] - mean[c]) * scale[c] + beta[c]
            return Z
    elif axis == 1:
        B, L = shape[0], shape[2]

        def bn(X: T[B, C, L], scale: S[C], beta: T[C], mean: T[C]) -> T[B, C, L]:
            Z: T[B, C, L]
            for b, c, l in grid(B, C, L, name="bn"):
                Z[b, c, l] = (X[b, c, l] - mean[c]) * scale[c] + beta[c]
            return Z
    else:
        B, L = shape[0], shape[1]

        def bn(X: T[B, L, C], scale: S[C], beta: T[C], mean: T[C]) -> T[B, L, C]:
            Z: T[B, L, C]
            for b, l, c in grid(B, L, C, name="bn"):
                Z[b, l, c] = (X[b, l, c] - mean[c]) * scale[c] + beta[c]
            return Z

    bn.__name__ = name
    return bn


@kernel()
def batchnorm1d_2d(T, B, C, eps=1e-5, acc=None, const_scale=False):
    check_dims("batchnorm1d_2d", B=B, C=C)
    eps = check_eps("batchnorm1d_2d", eps)
    if T.is_fixed:
        return _bn_fixed("batchnorm1d_2d", T, (B, C), 1, eps, acc, const_scale)

    def batchnorm1d_2d(X: T[B, C], gamma: T[C], beta: T[C], mean: T[C], var: T[C]) -> T[B, C]:
        inv_std: T[C]
        for c in range(C, name="stat"):
            inv_std[c] = 1.0 / sqrt(var[c] + eps)
        Z: T[B, C]
        for b, c in grid(B, C, name="bn"):
            Z[b, c] = (X[b, c] - mean[c]) * inv_std[c] * gamma[c] + beta[c]
        return Z

    return batchnorm1d_2d


@kernel()
def batchnorm1d_3d(T, B, C, L, eps=1e-5, acc=None, const_scale=False):
    check_dims("batchnorm1d_3d", B=B, C=C, L=L)
    eps = check_eps("batchnorm1d_3d", eps)
    if T.is_fixed:
        return _bn_fixed("batchnorm1d_3d", T, (B, C, L), 1, eps, acc, const_scale)

    def batchnorm1d_3d(X: T[B, C, L], gamma: T[C], beta: T[C], mean: T[C], var: T[C]) -> T[B, C, L]:
        inv_std: T[C]
        for c in range(C, name="stat"):
            inv_std[c] = 1.0 / sqrt(var[c] + eps)
        Z: T[B, C, L]
        for b, c, l in grid(B, C, L, name="bn"):
            Z[b, c, l] = (X[b, c, l] - mean[c]) * inv_std[c] * gamma[c] + beta[c]
        return Z

    return batchnorm1d_3d


@kernel()
def batchnorm_channels_last(T, B, L, C, eps=1e-5, acc=None, const_scale=False):
    """BatchNorm1d over the channels of a (B, L, C) token tensor, i.e. ``bn(x.transpose(1, 2)).transpose(1, 2)``
    without the two transposes (the frontend fuses that pattern, which JetFormer uses for every norm)."""
    check_dims("batchnorm_channels_last", B=B, L=L, C=C)
    eps = check_eps("batchnorm_channels_last", eps)
    if T.is_fixed:
        return _bn_fixed("batchnorm_channels_last", T, (B, L, C), 2, eps, acc, const_scale)

    def batchnorm_channels_last(X: T[B, L, C], gamma: T[C], beta: T[C], mean: T[C], var: T[C]) -> T[B, L, C]:
        inv_std: T[C]
        for c in range(C, name="stat"):
            inv_std[c] = 1.0 / sqrt(var[c] + eps)
        Z: T[B, L, C]
        for b, l, c in grid(B, L, C, name="bn"):
            Z[b, l, c] = (X[b, l, c] - mean[c]) * inv_std[c] * gamma[c] + beta[c]
        return Z

    return batchnorm_channels_last


@kernel()
def layernorm(T, shape, eps=1e-5):
    shape = check_shape("layernorm", shape, min_rank=1)
    eps = check_eps("layernorm", eps)
    outer, C = shape[:-1], shape[-1]

    def layernorm(X: T[shape], gamma: T[C], beta: T[C]) -> T[shape]:
        Z: T[shape]
        for o in grid(*outer, name="row"):
            total: T = 0.0
            for c in range(C, name="sum"):
                total += X[o, c]
            mu: T = total / C
            sq: T = 0.0
            for c in range(C, name="var"):
                d: T = X[o, c] - mu
                sq += d * d
            rstd: T = 1.0 / sqrt(sq / C + eps)
            for c in range(C, name="norm"):
                Z[o, c] = (X[o, c] - mu) * rstd * gamma[c] + beta[c]
        return Z

    return layernorm


@schedule_of(batchnorm1d_2d)
def _schedule_batchnorm1d_2d(s, fn, profile):
    if profile == "latency":
        return schedule_latency(s, fn)
    if "stat.c" in s.get_loops(fn):  # absent with const_scale
        s.pipeline(f"{fn}:stat.c")
    s.pipeline(f"{fn}:bn.c")


@schedule_of(batchnorm1d_3d)
def _schedule_batchnorm1d_3d(s, fn, profile):
    if profile == "latency":
        return schedule_latency(s, fn)
    if "stat.c" in s.get_loops(fn):  # absent with const_scale
        s.pipeline(f"{fn}:stat.c")
    s.pipeline(f"{fn}:bn.l")


@schedule_of(batchnorm_channels_last)
def _schedule_batchnorm_channels_last(s, fn, profile):
    if profile == "latency":
        return schedule_latency(s, fn)
    if "stat.c" in s.get_loops(fn):  # absent with const_scale
        s.pipeline(f"{fn}:stat.c")
    s.pipeline(f"{fn}:bn.c")


@schedule_of(layernorm)
def _schedule_layernorm(s, fn, profile):
    schedule_rows(s, fn, profile, ("sum", "var", "norm"))
