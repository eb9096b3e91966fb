"""Yosys ``synth_xilinx``: LUT/FF/DSP/BRAM counts of the generated SystemVerilog (cached by content).

The design's memories are ports of the top module (the testbench models them), so BRAM counts only
on-chip buffers the handshake flow made itself; there is no timing figure (no place and route).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

from ...lang.errors import AlloError
from ...cache import sha256
from .simulate import _version, cache_root, find_tool


class SynthesisError(AlloError):
    """Yosys failed on the generated SystemVerilog."""


def script(top: str, sv_name: str = "design.sv") -> str:
    return (f"read_verilog -sv {sv_name}\n"
            f"synth_xilinx -top {top} -flatten -noiopad\n"
            f"tee -o stat.txt stat\n")


class Resources(dict):
    """``{"lut", "ff", "dsp", "bram", "lutram", "carry", "srl"}`` (``from_cells``) plus ``.cells`` (every cell type's count) and ``.log``."""

    cells: dict
    log: str
    module = None  # the RTLModule synthesised (set by build_rtl(mode="synth"))

    def write(self, directory):
        """The project of the synthesised module (see RTLModule.write)."""
        if self.module is None:
            raise AlloError("these resources were not produced by build(target='rtl', mode='synth')")
        return self.module.write(directory)


def parse_stat(text: str) -> Resources:
    cells = {}
    # the last "=== top ===" block is the flattened design
    block = text[text.rfind("Number of cells"):]
    for m in re.finditer(r"^\s+([A-Z][A-Z0-9_]*)\s+(\d+)\s*$", block, re.M):
        cells[m.group(1)] = int(m.group(2))
    if not cells and "Number of cells" not in text:
        raise SynthesisError("rtl: Yosys printed no cell statistics")
    return from_cells(cells)


def from_cells(cells: dict) -> Resources:
    """Counts by resource from Yosys's cell counts. ``lut`` is every LUT a CLB spends, as Vivado's "CLB LUTs":
    logic LUTs and the shift-register LUTs (SRL16E/SRLC32E, ``srl``) that Yosys makes of register delay lines
    (each replaces up to 16/32 flip-flops, which ``ff`` then does not count); LUT RAM is ``lutram``."""
    logic = sum(v for k, v in cells.items() if re.fullmatch(r"LUT[1-6]", k))
    srl = sum(v for k, v in cells.items() if re.fullmatch(r"SRL(16E|C32E)", k))
    ff = sum(v for k, v in cells.items() if re.fullmatch(r"FD[A-Z]*", k))
    dsp = sum(v for k, v in cells.items() if k.startswith("DSP48"))
    bram = cells.get("RAMB36E1", 0) + 0.5 * cells.get("RAMB18E1", 0)
    lutram = sum(v for k, v in cells.items() if re.fullmatch(r"RAM\d+[A-Z0-9]*", k))
    r = Resources(lut=logic + srl, ff=ff, dsp=dsp, bram=bram, lutram=lutram, carry=cells.get("CARRY4", 0), srl=srl)
    r.cells = dict(cells)
    return r


def synthesize(sv: str, top: str, cache_dir=None, timeout: float = 1800) -> Resources:
    if not sv.strip():
        raise SynthesisError("rtl: the SystemVerilog is empty; refusing to report resources of nothing")
    yosys = find_tool("yosys")
    key = sha256(json.dumps([sv, top, script(top), _version(yosys)]).encode())[:32]
    root = Path(cache_dir) if cache_dir else cache_root()
    entry = root / f"synth-{key}.json"
    try:
        cached = json.loads(entry.read_text())
        if cached.get("design") == sha256(sv.encode()):
            r = from_cells(cached["cells"])  # the counts follow from_cells as it is now
            r.log = cached.get("log", "")
            return r
    except (OSError, ValueError, KeyError):
        pass
    with tempfile.TemporaryDirectory(prefix="allo-yosys-") as d:
        Path(d, "design.sv").write_text(sv)
        Path(d, "synth.ys").write_text(script(top))
        try:
            p = subprocess.run([yosys, "-q", "-s", "synth.ys"], cwd=d, capture_output=True, text=True,
                               check=False, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise SynthesisError(f"rtl: Yosys ran longer than {timeout} s on '{top}'") from e
        stat = Path(d, "stat.txt")
        if p.returncode != 0 or not stat.is_file():
            tail = "\n".join((p.stdout + p.stderr).strip().splitlines()[-12:])
            raise SynthesisError(f"rtl: Yosys failed on '{top}' (exit {p.returncode}):\n{tail}")
        r = parse_stat(stat.read_text())
        r.log = p.stdout[-20000:]
    root.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".synth-", dir=root)
    with os.fdopen(fd, "w") as f:
        json.dump({"design": sha256(sv.encode()), "resources": dict(r), "cells": r.cells, "log": r.log}, f)
    os.replace(tmp, entry)
    return r
