"""HLS C++ backends.

- ``target="vhls"``: :func:`build_vhls` returns an :class:`HLSModule` (``.code``, ``.header``,
  ``.weights``, ``.write(dir)``).
- ``target="vitis_hls", mode="csim"``: :func:`build_csim` compiles that C++ with g++ and the
  ap_types headers into a numpy callable (:class:`CSimModule`); builds are cached.
- ``target="vitis_hls", mode="csyn"|"sw_emu"|"hw_emu"|"hw"``: :func:`build_vitis_project` writes a
  complete Vitis project (:class:`VitisProject`) and runs it where Vitis is installed.
"""
from __future__ import annotations

from ...lang.errors import AlloError
from .emit import EmitError, HLSModule, build_vhls, emit_module

MODES = ("csim", "csyn", "sw_emu", "hw_emu", "hw")


def build_vitis_hls(schedule, mode: str = "csim", **options):
    if mode == "csim":
        from .csim import build_csim

        return build_csim(schedule, **options)
    if mode in MODES:
        from .vitis import build_vitis_project

        return build_vitis_project(schedule, mode=mode, **options)
    raise AlloError(f"unknown vitis_hls mode {mode!r}; choose one of {MODES}")


__all__ = ["EmitError", "HLSModule", "MODES", "build_vhls", "build_vitis_hls", "emit_module"]
