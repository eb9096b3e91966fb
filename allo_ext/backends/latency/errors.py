"""Errors of the latency (static schedule) route."""
from __future__ import annotations

from ...lang.errors import AlloError


class StaticLoweringError(AlloError):
    """A kernel, op or type the static route cannot trace into da4ml; the message names it."""
