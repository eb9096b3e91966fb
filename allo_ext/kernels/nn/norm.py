"""Normalisation layers: BatchNorm1d in inference mode (running statistics) and LayerNorm.

Fixed-point BatchNorm with constant statistics (a model in eval mode, what the frontend compiles) is
one multiply-add per element, ``Z = T(X * scale + offset)``: ``scale = gamma / sqrt(var + eps)`` and
``offset = beta - mean * scale`` are folded at compile time (``bn_fold``), so the hardware has no
subtract of the mean, no square root and no float. With run-time statistics the fixed kernel computes
each channel's scale once in a float32 ``stat`` loop and then ``(x - mean) * scale + beta``; the float
kernels do the same in their type.
LayerNorm takes the mean first and then the biased variance of the centred values (two passes),
which loses no precision when the mean is large compared with the spread, unlike E[x^2]-E[x]^2.

No ``from __future__ import annotations`` here: kernel annotations must be evaluated eagerly.
"""
from dataclasses import dataclass

import numpy as np

from ...lang import Fixed, float32, grid, sqrt
from ...lang.errors import AlloError
from ..registry import kernel, schedule_of
from .activation import schedule_rows
from .elementwise import check_dims, check_eps, check_shape
from .shape import schedule_latency

__all__ = ["batchnorm1d_2d", "batchnorm1d_3d", "batchnorm_channels_last", "layernorm", "bn_fold", "BnFold"]

DEFAULT_SCALE = Fixed(32, 20)  # ap_fixed<32,12>: the scale's type when no accumulator type is given


def bn_scale_type(acc):
    """The type of the per-channel BatchNorm scale: the accumulator type, else ``DEFAULT_SCALE``."""
    return acc if acc is not None else DEFAULT_SCALE


@dataclass(frozen=True)
class BnFold:
    """Constant statistics folded for ``Z = T(X * scale + offset)``: both arrays float64, exactly on their
    types' grids (``scale`` in ``scale_t``, ``offset`` in ``offset_t``)."""
    scale: np.ndarray
    offset: np.ndarray
    scale_t: Fixed
    offset_t: Fixed


def round_nearest(x, frac: int) -> np.ndarray:
    """``x`` (float64) rounded to the nearest multiple of ``2**-frac``, ties up (ap_fixed's AP_RND)."""
    return np.ldexp(np.floor(np.ldexp(np.asarray(x, np.float64), frac) + 0.5), -frac)


def offset_type(offset, frac: int) -> Fixed:
    """The narrowest signed type with ``frac`` fraction bits holding every (already rounded) offset."""
    raw = np.ldexp(np.asarray(offset, np.float64), frac)
    hi = max(float(np.max(raw, initial=0.0)), float(-np.min(raw, initial=0.0)) - 1.0, 0.0)
    bits = max(int(hi).bit_length() + 1, 2)  # magnitude bits and a sign bit
    if bits > 64:
        raise AlloError(f"BatchNorm offset beta - mean * scale reaches {np.abs(offset).max():.6g}: with {frac} "
                        "fraction bits it needs more than 64 bits; check the running statistics")
    return Fixed(bits, frac)


def bn_fold(T, acc, gamma, beta, mean, var, eps, where: str = "BatchNorm") -> BnFold:
    """Fold constant BatchNorm statistics for the fixed-point kernel ``Z = T(X * scale + offset)``.

    Computed in float64 from the full-precision statistics (the float32 values torch holds; none is
    first quantised to T, whose range and resolution running statistics need not fit: a variance of
    1e-4 is 0 in ap_fixed<16,6>, a mean of 40 wraps), each result rounded once, to nearest:

    - ``scale = gamma / sqrt(var + eps)`` into the scale type (``acc``, default ``Fixed(32, 20)``);
      a scale outside that type's range is an error (widen ``precision["accum"]``);
    - ``offset = beta - mean * scale`` with the ROUNDED scale, so that ``X * scale + offset`` equals
      ``(X - mean) * scale + beta`` up to the offset's rounding: the scale's rounding error is multiplied
      by ``X - mean``, not by ``X``, as in the subtract-first form. Its type has the scale type's
      fraction bits (the offset's rounding, half an LSB of that, stays far below T's) and the fewest
      integer bits that hold every channel's offset: the offsets are known here, and a bound from the
      types alone (beta's and mean * scale's integer bits) would be up to ~20 bits wider for nothing.
    """
    S = bn_scale_type(acc)
    g, b, m, v = (np.asarray(a, np.float64).reshape(-1) for a in (gamma, beta, mean, var))
    scale = round_nearest(g / np.sqrt(v + float(eps)), S.frac)
    if np.any(scale > S.max) or np.any(scale < S.min):
        c = int(np.argmax(np.maximum(scale - S.max, S.min - scale)))
        raise AlloError(f"{where}: the BatchNorm scale gamma/sqrt(var + eps) of channel {c} is {scale[c]:.6g}, outside "
                        f"its type {S} [{S.min}, {S.max}]; give a wider accumulator, e.g. "
                        f"precision={{..., 'accum': 'ap_fixed<{S.bits + 4},{S.bits - S.frac + 4}>'}}")
    offset = round_nearest(b - m * scale, S.frac)
    return BnFold(scale, offset, S, offset_type(offset, S.frac))


def _bn_fixed(name, T, shape, axis, eps, acc, const_scale, offset_t):
    """Fixed point, one body for the three layouts (the channel of element ``i`` is ``i[axis]``).

    ``const_scale`` (constant statistics): the inputs are ``bn_fold``'s per-channel ``scale`` (type
    ``acc``, default ``Fixed(32, 20)``) and ``offset`` (type ``offset_t``, default the scale's type),
    and each element is one multiply-add, exact until it is stored into T: no float loop, so the kernel
    has an integer-only form. Otherwise the scale ``gamma / sqrt(var + eps)`` is computed per channel in
    float32 in the ``stat`` loop, held in ``acc``, and ``(x - mean) * scale + beta`` is stored into T."""
    S = bn_scale_type(acc)
    C = shape[axis]

    def ch(i):  # compile time: the channel index of element i
        return (i[axis],)

    if const_scale:
        O = offset_t if offset_t is not None else S

        def bn(X: T[shape], scale: S[C], offset: O[C]) -> T[shape]:
            Z: T[shape]
            for i in grid(*shape, name="bn"):
                Z[i] = X[i] * scale[ch(i)] + offset[ch(i)]
            return Z
    else:
        def bn(X: T[shape], gamma: T[C], beta: T[C], mean: T[C], var: T[C]) -> T[shape]:
            scale: S[C]
            for c in range(C, name="stat"):
                scale[c] = float32(gamma[c]) / sqrt(float32(var[c]) + eps)
            Z: T[shape]
            for i in grid(*shape, name="bn"):
                Z[i] = (X[i] - mean[ch(i)]) * scale[ch(i)] + beta[ch(i)]
            return Z

    bn.__name__ = name
    return bn


@kernel()
def batchnorm1d_2d(T, B, C, eps=1e-5, acc=None, const_scale=False, offset_t=None):
    check_dims("batchnorm1d_2d", B=B, C=C)
    eps = check_eps("batchnorm1d_2d", eps)
    if T.is_fixed:
        return _bn_fixed("batchnorm1d_2d", T, (B, C), 1, eps, acc, const_scale, offset_t)

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
def batchnorm1d_3d(T, B, C, L, eps=1e-5, acc=None, const_scale=False, offset_t=None):
    check_dims("batchnorm1d_3d", B=B, C=C, L=L)
    eps = check_eps("batchnorm1d_3d", eps)
    if T.is_fixed:
        return _bn_fixed("batchnorm1d_3d", T, (B, C, L), 1, eps, acc, const_scale, offset_t)

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
def batchnorm_channels_last(T, B, L, C, eps=1e-5, acc=None, const_scale=False, offset_t=None):
    """BatchNorm1d over the channels of a (B, L, C) token tensor, i.e. ``bn(x.transpose(1, 2)).transpose(1, 2)``
    without the two transposes (the frontend fuses that pattern, which JetFormer uses for every norm)."""
    check_dims("batchnorm_channels_last", B=B, L=L, C=C)
    eps = check_eps("batchnorm_channels_last", eps)
    if T.is_fixed:
        return _bn_fixed("batchnorm_channels_last", T, (B, L, C), 2, eps, acc, const_scale, offset_t)

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


def _schedule_batchnorm(s, fn, profile):
    if profile == "latency":
        return schedule_latency(s, fn)
    loops = s.get_loops(fn)
    if "stat.c" in loops:  # absent with constant statistics
        s.pipeline(f"{fn}:stat.c")
    s.pipeline(list(loops.bands()["bn"].loops.values())[-1])  # the innermost loop of the band (pre-order)


for _k in (batchnorm1d_2d, batchnorm1d_3d, batchnorm_channels_last):
    schedule_of(_k)(_schedule_batchnorm)


@schedule_of(layernorm)
def _schedule_layernorm(s, fn, profile):
    schedule_rows(s, fn, profile, ("sum", "var", "norm"))
