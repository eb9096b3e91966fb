"""Errors of the Allo compatibility layer."""
from __future__ import annotations

from ..lang.errors import AlloError


class UnsupportedFeature(AlloError, NotImplementedError):
    """An Allo feature allo_ext does not implement: the message names it."""


class CompileExit(SystemExit, AlloError):
    """A kernel did not compile. Allo reports compile errors by exiting (tests expect SystemExit);
    this is that exit, and an AlloError carrying our message."""

    def __init__(self, msg: str):
        SystemExit.__init__(self, msg)
        self.msg = msg

    def __str__(self) -> str:
        return self.msg


class UnsupportedName(UnsupportedFeature, AttributeError):
    """``allo.X`` for a name of Allo's API we do not provide (an AttributeError too, for hasattr)."""
