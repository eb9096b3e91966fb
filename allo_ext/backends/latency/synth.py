"""Yosys ``synth_xilinx`` on the latency route's Verilog: LUT/FF/DSP of the written design.

The design's lookup tables are ``$readmemh`` files next to the sources; Yosys reads them from its
working directory, so the sources and the table files are written into one directory, and the
sources are read with ``-defer`` (a table module is elaborated only with its file parameter). The family
is UltraScale+ (``xcup``: DSP48E2, 27 x 18 multipliers), the parts the L1 trigger uses (VU9P), and
``-nobram``: da4ml marks its tables as distributed ROM (LUTs), which Yosys would otherwise put in block RAM.
Results are cached by content (``rtl.yosys.synthesize``'s cache directory and key scheme).

Two ways (``synthesize_sources(..., per_stage=)``):

- whole: the flattened design in one run, what the tests hold the estimate to. Yosys 0.23's run time grows
  faster than the design: a 120 KB kernel takes seconds; on the 2.1 MB JetFormer.tiny block it was unfinished
  after 38 minutes at a load of 12-24, and after 18 minutes (7 CPU minutes) at a load of 6.
- per stage: each stage of the pipeline with its input register (``stage_wrapper``), in parallel runs,
  summed: the 2.1 MB block in ~18 minutes on 2 busy cores. The stages meet only at registers, so what the
  split loses is what the flattened run does across a register (``tests/test_latency_synth.py``, measured
  on the kernels where both finish): constant or duplicate bits and logic feeding bits the next stage never
  reads (the sum is 0-9% above on FF, 7-14% on LUT), and register chains that carry a value unchanged through
  several stages, which the flattened run makes SRL16E shift-register LUTs, with table output registers
  moved into the tables (log_softmax: FF +53% and LUT -32% against the flattened run). A per-stage result
  is an approximation of the flattened one and is reported as such.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ...cache import cache_root, sha256
from ..rtl.simulate import _version, find_tool
from ..rtl.yosys import Resources, SynthesisError, from_cells, parse_stat

FAMILY = "xcup"
STAGE_TOP = "allo_stage_wrapper"


def script(top: str, files: list[str]) -> str:
    reads = "\n".join(f"read_verilog -defer {f}" for f in files)
    return f"{reads}\nsynth_xilinx -family {FAMILY} -top {top} -flatten -noiopad -nobram\ntee -o stat.txt stat\n"


def _rename_tables(sources: dict, memfiles: dict) -> tuple[dict, dict]:
    # da4ml names its table files by random UUIDs: rename them by content, so that one design always has
    # one cache key (a Yosys run on a design with tables can take many minutes)
    rename = {n: f"table_{sha256(t.encode())[:24]}.mem" for n, t in sorted(memfiles.items())}
    fixed = {}
    for name, text in sources.items():
        for old, new in rename.items():
            text = text.replace(old, new)
        fixed[name] = text
    return fixed, {rename[n]: t for n, t in memfiles.items()}


def digest(sources: dict, memfiles: dict) -> str:
    """The design's content hash (tables renamed by content): what a recorded Yosys result belongs to."""
    sources, memfiles = _rename_tables(sources, memfiles)
    return sha256(json.dumps([sorted(sources.items()), sorted(memfiles.items())]).encode())[:32]


def _run(sources: dict, memfiles: dict, top: str, what: str, root: Path, timeout: float) -> Resources:
    """One cached Yosys run of ``top`` over ``sources`` (file name -> text)."""
    yosys = find_tool("yosys")
    files = sorted(sources)
    blob = json.dumps([sorted(sources.items()), sorted(memfiles.items()), script(top, files), _version(yosys)])
    entry = root / f"synth-latency-{sha256(blob.encode())[:32]}.json"
    try:
        r = from_cells(json.loads(entry.read_text())["cells"])  # the counts follow from_cells as it is now
        r.log = ""
        return r
    except (OSError, ValueError, KeyError):
        pass
    with tempfile.TemporaryDirectory(prefix="allo-lat-yosys-") as d:
        for name, text in {**sources, **memfiles}.items():
            Path(d, name).write_text(text)
        Path(d, "synth.ys").write_text(script(top, files))
        try:
            p = subprocess.run([yosys, "-q", "-s", "synth.ys"], cwd=d, capture_output=True, text=True, check=False,
                               timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise SynthesisError(f"latency route: Yosys ran longer than {timeout:.0f} s on {what}; "
                                 f"pass a larger timeout=, or per_stage=True for a large design") from e
        stat = Path(d, "stat.txt")
        if p.returncode != 0 or not stat.is_file():
            tail = "\n".join((p.stdout + p.stderr).strip().splitlines()[-12:])
            raise SynthesisError(f"latency route: Yosys failed on {what} (exit {p.returncode}):\n{tail}")
        r = parse_stat(stat.read_text())
        r.log = ""
    root.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".synth-", dir=root)
    with os.fdopen(fd, "w") as f:
        json.dump({"resources": dict(r), "cells": r.cells}, f)
    os.replace(tmp, entry)
    return r


def stage_widths(top_text: str, top: str) -> list[tuple[str, int, int]]:
    """(stage module, input bits, output bits) from da4ml's top module, in pipeline order."""
    regs = {int(i): int(hi) + 1 for hi, i in re.findall(r"reg \[(\d+):0\] stage(\d+)_inp;", top_text)}
    outs = {int(i): int(hi) + 1 for hi, i in re.findall(r"wire \[(\d+):0\] stage(\d+)_out;", top_text)}
    mods = {int(i): m for m, i in re.findall(r"(\w+) stage(\d+) \(\.model_inp", top_text)}
    if not regs or set(regs) != set(outs) or set(regs) != set(mods) or sorted(regs) != list(range(len(regs))):
        raise SynthesisError(f"latency route: the pipeline registers of '{top}' are not da4ml's stage layout "
                             f"(reg stageN_inp / stageN_out / a module per stage); synthesise it whole "
                             f"(per_stage=False)")
    return [(mods[i], regs[i], outs[i]) for i in range(len(regs))]


def stage_wrapper(module: str, w_in: int, w_out: int, last: bool) -> str:
    """The stage with the register in front of it (and the output register after the last one), as the top
    module names them: a register bit the stage never reads is removed, as in the flattened design."""
    out = (f"    reg [{w_out - 1}:0] q_r;\n    always @(posedge clk) q_r <= y;\n    assign q = q_r;\n" if last
           else "    assign q = y;\n")
    return (f"module {STAGE_TOP} (input clk, input [{w_in - 1}:0] d, output [{w_out - 1}:0] q);\n"
            f"    reg [{w_in - 1}:0] r;\n    wire [{w_out - 1}:0] y;\n    always @(posedge clk) r <= d;\n"
            f"    {module} s (.model_inp(r), .model_out(y));\n{out}endmodule\n")


def synthesize_sources(sources: dict, memfiles: dict, top: str, cache_dir=None, timeout: float = 3600,
                       per_stage: bool = False, jobs: int | None = None, progress: bool = True) -> Resources:
    """``sources``/``memfiles``: file name -> text (``LatencyDesign._sources()``). ``per_stage``: see the module
    docstring; ``timeout`` is then per stage and ``jobs`` runs (default: the CPU count) go in parallel."""
    find_tool("yosys")
    sources, memfiles = _rename_tables(sources, memfiles)
    root = Path(cache_dir) if cache_dir else cache_root("latency")
    if not per_stage:
        return _run(sources, memfiles, top, f"'{top}'", root, timeout)
    top_file = next((n for n, t in sources.items() if re.search(rf"^module {re.escape(top)}\b", t, re.M)), None)
    if top_file is None:
        raise SynthesisError(f"latency route: no module '{top}' in the sources {sorted(sources)}")
    stages = stage_widths(sources[top_file], top)
    shared = {n: t for n, t in sources.items() if not re.search(r"^module \w+_stage\d+\b", t, re.M) and n != top_file}
    by_module = {re.search(r"^module (\w+)", t, re.M).group(1): (n, t) for n, t in sources.items() if n not in shared}

    def one(k: int) -> Resources:
        module, w_in, w_out = stages[k]
        name, text = by_module[module]
        used = {n: t for n, t in memfiles.items() if n in text}
        srcs = {**shared, name: text, "allo_stage_wrapper.v": stage_wrapper(module, w_in, w_out, k == len(stages) - 1)}
        return _run(srcs, used, STAGE_TOP, f"stage {k} of '{top}' ({module})", root, timeout)

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    results: list[Resources] = []
    with Progress(TextColumn(f"[bold]Yosys on {top}, stage by stage"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), disable=not progress, transient=True) as bar:
        task = bar.add_task("stages", total=len(stages))
        with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
            # the largest stages first, so that the parallel runs end together
            order = sorted(range(len(stages)), key=lambda k: -len(by_module[stages[k][0]][1]))
            for r in pool.map(one, order):
                results.append(r)
                bar.advance(task)
    cells: dict = {}
    for r in results:
        for c, v in r.cells.items():
            cells[c] = cells.get(c, 0) + v
    total = from_cells(cells)
    total.log = ""
    total["stages"] = len(stages)
    return total
