"""Backends: one module per target. ``build`` dispatches on the target name."""
from __future__ import annotations

from ..lang.errors import AlloError

TARGETS = ("llvm",)


def build(schedule, target: str = "llvm", **options):
    if target == "llvm":
        from .llvm import build_llvm

        return build_llvm(schedule, **options)
    raise AlloError(f"unknown target {target!r}; available targets: {', '.join(TARGETS)}")
