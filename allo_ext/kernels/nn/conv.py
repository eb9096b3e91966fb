"""2-D convolution (NCHW, groups 1, dilation 1) with stride and zero padding; conv1d is the H=1 case.

Padding copies the input into a zero buffer first, so the multiply-accumulate nest has no bounds
tests in its body (one affine read per tap).

No ``from __future__ import annotations`` here: kernel annotations must be evaluated eagerly.
"""
import functools

from ...lang import grid
from ..registry import kernel, schedule_of
from .elementwise import KernelArgumentError, check_dims
from .shape import schedule_latency

__all__ = ["conv2d"]


@kernel()
def conv2d(T, B, Cin, H, W, Cout, KH, KW, stride=(1, 1), padding=(0, 0)):
    check_dims("conv2d", B=B, Cin=Cin, H=H, W=W, Cout=Cout, KH=KH, KW=KW)
    SH, SW = (int(s) for s in stride)
    PH, PW = (int(p) for p in padding)
    if SH < 1 or SW < 1 or PH < 0 or PW < 0:
        raise KernelArgumentError(f"conv2d: stride {stride} must be >= 1 and padding {padding} >= 0")
    OH, OW = (H + 2 * PH - KH) // SH + 1, (W + 2 * PW - KW) // SW + 1
    if OH < 1 or OW < 1:
        raise KernelArgumentError(f"conv2d: kernel {(KH, KW)} is larger than the padded input {(H + 2 * PH, W + 2 * PW)}")
    return _conv2d(T, B, Cin, H, W, Cout, KH, KW, SH, SW, PH, PW, OH, OW)


@functools.lru_cache(maxsize=None)
def _conv2d(T, B, Cin, H, W, Cout, KH, KW, SH, SW, PH, PW, OH, OW):
    HP, WP = H + 2 * PH, W + 2 * PW
    if PH == 0 and PW == 0:
        def conv2d(X: T[B, Cin, H, W], Wt: T[Cout, Cin, KH, KW], bias: T[Cout]) -> T[B, Cout, OH, OW]:
            Z: T[B, Cout, OH, OW]
            for b, co, oh, ow in grid(B, Cout, OH, OW, name="conv"):
                acc: T = bias[co]
                for ci, kh, kw in grid(Cin, KH, KW, name="mac"):
                    acc += X[b, ci, oh * SH + kh, ow * SW + kw] * Wt[co, ci, kh, kw]
                Z[b, co, oh, ow] = acc
            return Z
    else:
        def conv2d(X: T[B, Cin, H, W], Wt: T[Cout, Cin, KH, KW], bias: T[Cout]) -> T[B, Cout, OH, OW]:
            P: T[B, Cin, HP, WP] = 0.0
            for b, c, h, w in grid(B, Cin, H, W, name="pad"):
                P[b, c, h + PH, w + PW] = X[b, c, h, w]
            Z: T[B, Cout, OH, OW]
            for b, co, oh, ow in grid(B, Cout, OH, OW, name="conv"):
                acc: T = bias[co]
                for ci, kh, kw in grid(Cin, KH, KW, name="mac"):
                    acc += P[b, ci, oh * SH + kh, ow * SW + kw] * Wt[co, ci, kh, kw]
                Z[b, co, oh, ow] = acc
            return Z
    return conv2d


@schedule_of(conv2d)
def _schedule_conv2d(s, fn, profile):
    if profile == "latency":
        return schedule_latency(s, fn)
