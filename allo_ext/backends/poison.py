"""Poisoned output buffers: no backend hands back an element its kernel did not write.

Float outputs are filled with a NaN whose payload no arithmetic produces (computed NaNs carry the
canonical payload), so one run tells written from unwritten. Integers have no spare bit pattern:
they are filled with the type's minimum, and if any element still holds it after the run, the
kernel runs again into buffers filled with the maximum; an element holding each run's fill value
was written by neither run (kernels are deterministic).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..lang.errors import AlloError

POISON_F32 = np.array([0x7FC0DEAD], dtype=np.uint32).view(np.float32)[0]
POISON_F64 = np.array([0x7FF80000DEADBEEF], dtype=np.uint64).view(np.float64)[0]


def fill_value(dt: np.dtype, first: bool = True):
    dt = np.dtype(dt)
    if dt == np.float32:
        return POISON_F32
    if dt == np.float64:
        return POISON_F64
    if dt == np.bool_:
        return not first
    info = np.iinfo(dt)
    return info.min if first else info.max


def poisoned(shape, dtype, first: bool = True) -> np.ndarray:
    return np.full(tuple(shape), fill_value(dtype, first), dtype=dtype)


def unwritten(out: np.ndarray, first: bool = True) -> np.ndarray:
    """Mask of elements still holding the fill value."""
    if out.dtype == np.float32:
        return out.view(np.uint32) == np.uint32(0x7FC0DEAD)
    if out.dtype == np.float64:
        return out.view(np.uint64) == np.uint64(0x7FF80000DEADBEEF)
    return out == fill_value(out.dtype, first)


def raise_if_unwritten(bad: np.ndarray, name: str, k: int):
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0]) if bad.ndim else ()
        raise AlloError(f"kernel '{name}' left {int(bad.sum())} element(s) of output {k} unwritten "
                        f"(first at index {first}); the kernel does not write its whole result")


def run_poisoned(name: str, specs: Sequence[tuple], invoke: Callable[[list], None]) -> list[np.ndarray]:
    """Allocate poisoned outputs for ``specs`` ((shape, dtype) pairs), let ``invoke`` fill them, check them."""

    def once(first: bool) -> list:
        outs = [poisoned(shape, dt, first) for shape, dt in specs]
        invoke(outs)
        for k, o in enumerate(outs):
            if o.dtype.kind == "f":
                raise_if_unwritten(unwritten(o, first), name, k)
        return outs

    outs = once(True)
    suspects = [None if o.dtype.kind == "f" else unwritten(o, True) for o in outs]
    if any(m is not None and m.any() for m in suspects):
        again = once(False)
        for k, (m, o) in enumerate(zip(suspects, again)):
            if m is not None:
                raise_if_unwritten(m & unwritten(o, False), name, k)
        outs = again
    return outs
