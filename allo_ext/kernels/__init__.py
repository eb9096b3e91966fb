"""The kernel library. Each kernel is an Allo-style factory with its schedule beside it."""
from .registry import KERNELS, KernelEntry, apply_schedules, kernel, schedule_of

__all__ = ["KERNELS", "KernelEntry", "apply_schedules", "kernel", "schedule_of"]
