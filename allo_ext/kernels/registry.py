"""One table of every library kernel and its schedule.

A kernel is a factory (types and shapes in, Allo-style function out). ``@kernel`` registers it
and tags each function it makes with the kernel's name, so that ``from_pytorch`` and
``apply_schedules`` can find the schedule of any instance inside a composed module.

A schedule function has the signature ``schedule(s, fn_name, profile)``: it applies primitives to
the instance called ``fn_name`` inside Schedule ``s``. ``profile`` is ``"default"`` (pipeline the
inner loops) or ``"latency"`` (also unroll/partition where sizes are small).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

from ..lang.errors import AlloError

PROFILES = ("default", "latency")


@dataclass
class KernelEntry:
    name: str
    factory: Callable
    schedule: Callable | None = None


KERNELS: dict[str, KernelEntry] = {}


def kernel(name: str | None = None):
    """Register a kernel factory under ``name`` (default: the factory's name)."""

    def deco(factory: Callable) -> Callable:
        kname = name or factory.__name__

        @functools.wraps(factory)
        def make(*args, **kwargs):
            fn = factory(*args, **kwargs)
            fn.__allo_kernel__ = kname
            # The factory's arguments, for routes that implement a kernel from its parameters rather
            # than its body (the latency route traces linear2d(T, M, K, N, ...) into da4ml).
            fn.__allo_args__ = (args, kwargs)
            return fn

        if kname in KERNELS:
            raise AlloError(f"kernel '{kname}' is registered twice")
        KERNELS[kname] = KernelEntry(kname, make)
        make.__allo_kernel__ = kname
        return make

    return deco


def schedule_of(factory: Callable):
    """Register the decorated function as the schedule of ``factory``'s kernel."""

    def deco(fn: Callable) -> Callable:
        KERNELS[factory.__allo_kernel__].schedule = fn
        return fn

    return deco


def apply_schedules(s, profile: str = "default") -> list[str]:
    """Apply each library kernel's registered schedule to its instances in ``s``; returns their names."""
    if profile not in PROFILES:
        raise AlloError(f"unknown schedule profile {profile!r}; choose one of {PROFILES}")
    done = []
    for sym, fn in list(s.mb.py_functions.items()):
        entry = KERNELS.get(getattr(fn, "__allo_kernel__", ""))
        if entry is not None and entry.schedule is not None:
            entry.schedule(s, sym, profile)
            done.append(sym)
    return done
