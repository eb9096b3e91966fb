"""Allo's ``s.build(...)`` on our backends.

Allo's CPU module accepts arrays of any numeric dtype and Python scalars, casts them to the
kernel's types, and writes results of in-place kernels back into the caller's arrays; ours insists
on exact dtypes. ``CompatCPUModule`` does the casting and the write-back around our module.
"""
from __future__ import annotations

import numpy as np

from ..lang.types import ArrayType
from .errors import UnsupportedFeature


class CompatCPUModule:
    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, k):
        return getattr(self.inner, k)

    def __call__(self, *args):
        types = self.inner.arg_types
        if len(args) != len(types):
            return self.inner(*args)  # raises the CallError naming the arguments
        conv, back = [], []
        # A kernel with results takes its arrays as inputs: writes to an argument it returns do not
        # reach the caller's array (Allo's tests rely on this); a kernel without results works in place.
        inputs_only = bool(self.inner.res_types)
        for a, t in zip(args, types):
            if isinstance(t, ArrayType) and isinstance(a, np.ndarray):
                want = t.dtype.numpy
                if inputs_only:
                    conv.append(np.array(a, dtype=want, order="C", copy=True))
                    continue
                if a.dtype != want or not a.flags.c_contiguous:
                    c = np.array(a, dtype=want, order="C")
                    conv.append(c)
                    back.append((a, c))
                    continue
            elif isinstance(t, ArrayType):
                a = np.array(a, dtype=t.dtype.numpy, order="C")  # not ascontiguousarray: it makes 0-d 1-d
            elif isinstance(a, np.ndarray) and a.shape == ():
                a = a.item()
            conv.append(a)
        out = self.inner(*conv)
        for orig, c in back:
            if orig.flags.writeable:
                np.copyto(orig, c, casting="unsafe")
        return out


class CompatHLSModule:
    def __init__(self, inner):
        self.inner = inner

    @property
    def hls_code(self) -> str:
        return str(self.inner)

    def __getattr__(self, k):
        return getattr(self.inner, k)

    def __str__(self) -> str:
        return str(self.inner)

    def __call__(self, *a, **k):
        raise UnsupportedFeature("calling a target='vhls' module runs Vitis HLS, which is not available here; "
                                 "use target='vitis_hls', mode='csim' for the g++ simulation")


def compat_build(s, target, mode, project, **options):
    from ..schedule import Schedule

    target = target or "llvm"
    if target == "llvm":
        return CompatCPUModule(Schedule.build(s, "llvm", **options))
    if target in ("vhls", "vivado_hls") and mode in (None, "debug"):
        return CompatHLSModule(Schedule.build(s, "vhls"))
    if target == "vitis_hls" and mode in (None, "csim", "sw_emu"):
        return Schedule.build(s, "vitis_hls", mode="csim")
    raise UnsupportedFeature(f"build(target={target!r}, mode={mode!r}) is not supported here "
                             "(llvm, vhls and vitis_hls csim are)")
