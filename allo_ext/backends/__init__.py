"""Backends: one module per target. ``build`` dispatches on the target name."""
from __future__ import annotations

from ..lang.errors import AlloError

TARGETS = ("llvm", "vhls", "vitis_hls", "rtl")


def build(schedule, target: str = "llvm", **options):
    from ..passes.safety import check_module

    with schedule.context:
        check_module(schedule.module)  # recursion and provably out-of-bounds accesses, on every target
    if target == "llvm":
        from .llvm import build_llvm

        return build_llvm(schedule, **options)
    if target == "vhls":
        from .hls import build_vhls

        return build_vhls(schedule, **options)
    if target == "vitis_hls":
        from .hls import build_vitis_hls

        return build_vitis_hls(schedule, **options)
    if target == "rtl":
        from .rtl import build_rtl

        return build_rtl(schedule, **options)
    raise AlloError(f"unknown target {target!r}; available targets: {', '.join(TARGETS)}")
