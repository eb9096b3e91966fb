"""target="rtl": integer/fixed-point kernels as SystemVerilog, simulated cycle by cycle and synthesised.

Route (shared/notes/rtl-recipes.md): ``lower.py`` (stage A, torch-mlir: inline, flatten memrefs,
constant tables -> ROM ports, affine/scf -> cf, narrow indices) -> ``circt.py`` (stage B, CIRCT's
handshake flow in a subprocess) -> SystemVerilog -> ``testbench.py`` + ``simulate.py`` (Icarus or
Verilator: outputs and cycles) or ``yosys.py`` (synth_xilinx: LUT/FF/DSP/BRAM).

- ``mode="sim"`` (default): an :class:`RTLModule`, a numpy callable with ``.cycles``.
- ``mode="synth"``: the Yosys resource counts (a dict; ``.module`` is the RTLModule).
"""
from __future__ import annotations

from ...lang.errors import AlloError
from .circt_driver import CIRCTError, to_verilog
from .lower import lower
from .module import RTLModule
from .simulate import SIMULATORS, RTLSimulationError
from .yosys import Resources, SynthesisError

MODES = ("sim", "synth")


def build_rtl(schedule, mode: str = "sim", simulator: str = "icarus", buffer_strategy: str = "cycles",
              narrow_index: bool = True, max_cycles: int = 5_000_000, cache_dir=None):
    if mode not in MODES:
        raise AlloError(f"unknown rtl mode {mode!r}; choose one of {MODES}")
    if simulator not in SIMULATORS:
        raise AlloError(f"rtl: unknown simulator {simulator!r}; choose one of {SIMULATORS}")
    lowered = lower(schedule, narrow_index=narrow_index)
    sv = to_verilog(lowered.text, lowered.top, buffer_strategy)
    mod = RTLModule(lowered, sv, schedule, simulator=simulator, max_cycles=max_cycles, cache_dir=cache_dir)
    if mode == "synth":
        res = mod.synth()
        res.module = mod
        return res
    return mod


__all__ = ["CIRCTError", "MODES", "RTLModule", "RTLSimulationError", "Resources", "SynthesisError", "build_rtl"]
