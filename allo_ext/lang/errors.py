"""Errors raised while compiling and running kernels. Each names where and what, and how to fix it."""
from __future__ import annotations


class AlloError(Exception):
    """Base class of every error allo-ext raises on purpose."""


class KernelSyntaxError(AlloError):
    """A construct in a kernel body that the language does not support."""

    def __init__(self, msg: str, *, file: str | None = None, line: int | None = None, kernel: str | None = None):
        where = f"{file}:{line}" if file else "<unknown>"
        prefix = f"{where}: in kernel '{kernel}': " if kernel else f"{where}: "
        super().__init__(prefix + msg)
        self.file, self.line, self.kernel = file, line, kernel


class KernelTypeError(KernelSyntaxError):
    """Two operands, or a value and its destination, have different types."""


class ScheduleError(AlloError):
    """A schedule primitive was given a loop, buffer or factor that does not fit the kernel."""


class CallError(AlloError, TypeError):
    """A compiled kernel was called with arguments of the wrong count, shape or dtype."""


class ToolNotFoundError(AlloError, RuntimeError):
    """An external tool (g++, Verilator, Vitis...) is missing; the message says how to install it."""


class NoSuchBuffer(ScheduleError, AttributeError):
    """``s.X`` (Allo's buffer handle) for a name that is not a buffer of any kernel in the schedule."""
