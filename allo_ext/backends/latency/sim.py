"""RTL simulation of a da4ml pipeline: one input word per clock (II = 1), outputs sampled every clock.

One Verilog testbench for both simulators (Icarus, or Verilator with ``--binary --timing``). It drives
three phases and writes the output port after every rising edge:

1. ``warm`` clocks of the all-zero word, 2. ``warm`` clocks of the all-one word (a step),
3. the items, one per clock, then ``warm`` clocks of zeros (flush).

The latency is measured from the simulation, never taken from da4ml's stage count: it is the number of
clocks from the step at the input ports to the first change at the output ports (``measure``), and the
output must then hold the all-one response for the rest of the phase (a pipeline whose paths have
unequal register counts would show intermediate values: an error). Item ``i`` comes out at
``2*warm + latency - 1 + i``. Icarus starts every register at x, so its first defined sample gives a
second, independent latency figure, which must agree.

Builds are cached under ``$ALLO_EXT_CACHE/latency/<sha256 of sources, tables, testbench, simulator,
flags and version>``.

Simulator facts (Icarus 11, Verilator 5.006, Debian), measured on JetFormer-sized designs:
- Icarus elaborates da4ml's netlists in time quadratic in the number of instances of a primitive
  module: 99% of the time in ``PGenerate::elaborate_sig`` (every ``shift_adder`` instance has
  ``generate`` blocks). 0.5 MB of Verilog builds in 1.4 CPU-s, 0.8 MB in 4.4 s, the whole
  JetFormer-tiny (9 MB, 41k adders) had not finished after 6 CPU-minutes. Its event-driven
  simulation costs 37-110 ms per clock at 0.5-0.8 MB. Good for small designs; Verilator above.
- Verilator 5.006 ``$readmemh`` drops the last word of a file that does not end in a newline, which
  da4ml's table files do not: the simulated copies get one (contents unchanged). It also reads da4ml's
  ``X`` (don't-care) table words as 0 where Icarus reads x; da4ml's tables mark unreachable indices so.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from ...cache import atomic_write_text, cache_root, sha256
from ..rtl.simulate import RTLSimulationError, _version, find_tool

MAX_ITEMS = 1 << 16  # testbench memory depth: items per simulation call
SIMULATORS = ("icarus", "verilator")
# Above this much Verilog, "auto" picks Verilator: Icarus's elaboration is quadratic (module docstring).
AUTO_VERILATOR_BYTES = 1_500_000
# Verilator flags that cut the C++ build of a fully unrolled pipeline (measured on JetFormer-tiny):
# no X randomisation code, the C++ split into files compiled two at a time, -O1 for the hot code and
# -O0 for the once-run initialisation code. No tracing.
VERILATOR_FLAGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "--x-assign", "fast", "--x-initial", "fast",
                   "--output-split", "20000", "--output-split-cfuncs", "2000", "-j", "2",
                   "-MAKEFLAGS", "OPT_FAST=-O1 OPT_SLOW=-O0 OPT_GLOBAL=-O1"]


def testbench(top: str, w_in: int, w_out: int) -> str:
    return f"""`timescale 1ns/1ps
module tb;
  reg clk = 1'b0;
  reg [{w_in - 1}:0] inp;
  wire [{w_out - 1}:0] out;
  reg [{w_in - 1}:0] mem [0:{MAX_ITEMS - 1}];
  integer n, warm, t, fd;
  {top} dut (.clk(clk), .model_inp(inp), .model_out(out));
  initial begin
    if (!$value$plusargs("items=%d", n)) n = 1;
    if (!$value$plusargs("warm=%d", warm)) warm = 64;
    $readmemh("in.hex", mem, 0, n - 1);
    fd = $fopen("out.hex", "w");
    for (t = 0; t < 3 * warm + n; t = t + 1) begin
      if (t < warm) inp = {{{w_in}{{1'b0}}}};
      else if (t < 2 * warm) inp = {{{w_in}{{1'b1}}}};
      else if (t < 2 * warm + n) inp = mem[t - 2 * warm];
      else inp = {{{w_in}{{1'b0}}}};
      #1 clk = 1'b1;
      #1 $fdisplay(fd, "%h", out);
      #1 clk = 1'b0;
      #1;
    end
    $fclose(fd);
    $display("ALLO_DONE");
    $finish;
  end
endmodule
"""


def measure(samples: list[str], warm: int, n: int, simulator: str) -> tuple[int, list[str]]:
    """(latency in clocks, the n item outputs) from the sampled output words of one run."""
    if len(samples) != 3 * warm + n:
        raise RTLSimulationError(f"latency route: the testbench wrote {len(samples)} samples, expected {3 * warm + n}")
    undefined = [any(c in s.lower() for c in "xz") for s in samples]
    if any(undefined[warm // 2:]):
        k = warm // 2 + undefined[warm // 2:].index(True)
        raise RTLSimulationError(f"latency route: output sample {k} has undefined (x/z) bits after the pipeline "
                                 f"was flushed for {warm // 2} clocks: an uninitialised path or table entry "
                                 f"is reached")
    zero, one = samples[warm - 1], samples[2 * warm - 1]
    if any(s != zero for s in samples[warm // 2:warm]):
        raise RTLSimulationError(f"latency route: the output did not settle within {warm // 2} clocks of a constant "
                                 f"input: the pipeline is deeper than the testbench's warm-up ({warm}); raise it")
    if zero == one:
        raise RTLSimulationError("latency route: the design gives the same output for the all-zero and the all-one "
                                 "input words, so the testbench cannot see the step it measures the latency with")
    step = next(t for t in range(warm, 2 * warm) if samples[t] != zero)
    latency = step - warm + 1
    if latency > warm // 2 or any(s != one for s in samples[step:2 * warm]):
        raise RTLSimulationError(f"latency route: after the input step the output changed at clock {latency} but "
                                 f"did not hold the new value: paths of unequal latency, or a pipeline deeper "
                                 f"than the warm-up ({warm})")
    if simulator == "icarus":
        first = undefined.index(False)
        if first + 1 != latency:
            raise RTLSimulationError(f"latency route: Icarus's first defined output is at clock {first + 1} but the "
                                     f"input step reaches the output after {latency}: the two measurements disagree")
    start = 2 * warm + latency - 1
    return latency, samples[start:start + n]


class PipelineSim:
    """A built simulation of one design (Verilog sources + table files + testbench), in Icarus or Verilator."""

    def __init__(self, sources: dict, memfiles: dict, top: str, w_in: int, w_out: int, cache_dir=None,
                 simulator: str = "icarus"):
        if simulator not in SIMULATORS:
            raise RTLSimulationError(f"latency route: unknown simulator {simulator!r}; choose one of "
                                     f"{', '.join(SIMULATORS)} or 'auto'")
        self.simulator = simulator
        self.tools = [find_tool("iverilog"), find_tool("vvp")] if simulator == "icarus" else [find_tool("verilator")]
        self.tb = testbench(top, w_in, w_out)
        # Verilator 5.006 drops a table file's last word without a final newline (module docstring).
        self.sources, self.memfiles = sources, {k: v if v.endswith("\n") else v + "\n" for k, v in memfiles.items()}
        if simulator == "verilator":
            # da4ml's lint pragmas name WIDTHTRUNC/WIDTHEXPAND, which Verilator 5.006 rejects as unknown
            # codes (they arrived in 5.008); WIDTH covers both. Comments only: the logic is untouched.
            self.sources = {k: re.sub(r"\bWIDTH(TRUNC|EXPAND)\b", "WIDTH", v) for k, v in sources.items()}
        flags = VERILATOR_FLAGS if simulator == "verilator" else ["-g2012"]
        blob = json.dumps([sorted(self.sources.items()), sorted(self.memfiles.items()), self.tb, simulator, flags,
                           _version(self.tools[0])])
        self.key = sha256(blob.encode())[:32]
        self.directory = (Path(cache_dir) if cache_dir else cache_root("latency")) / self.key
        self.binary = self.directory / ("sim.vvp" if simulator == "icarus" else "Vtb")
        self.cache_hit = (self.directory / "manifest.json").is_file() and self.binary.is_file()
        self.build_s = 0.0
        if not self.cache_hit:
            t0 = time.perf_counter()
            self._build()
            self.build_s = time.perf_counter() - t0

    def _command(self, files: list[str]) -> list[str]:
        if self.simulator == "icarus":
            return [self.tools[0], "-g2012", "-o", "sim.vvp", "-s", "tb", "tb.v", *files]
        return [self.tools[0], "--binary", "--timing", *VERILATOR_FLAGS, "--top-module", "tb", "-o", "Vtb",
                "--Mdir", "obj_dir", "tb.v", *files]

    def _build(self):
        root = self.directory.parent
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".build-{self.key[:8]}-", dir=root))
        try:
            files = []
            for name, text in self.sources.items():
                (tmp / name).write_text(text)
                files.append(name)
            for name, text in self.memfiles.items():
                (tmp / name).write_text(text)
            (tmp / "tb.v").write_text(self.tb)
            cmd = self._command(sorted(files))
            r = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, check=False)
            (tmp / "build.log").write_text(" ".join(cmd) + "\n" + r.stdout + r.stderr)
            if self.simulator == "verilator" and r.returncode == 0 and (tmp / "obj_dir" / "Vtb").is_file():
                os.replace(tmp / "obj_dir" / "Vtb", tmp / "Vtb")
                shutil.rmtree(tmp / "obj_dir", ignore_errors=True)  # objects and C++: many times the binary
            binary = tmp / self.binary.name
            if r.returncode != 0 or not binary.is_file():
                keep = root / f"failed-{self.key[:16]}"
                shutil.rmtree(keep, ignore_errors=True)
                os.replace(tmp, keep)
                tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-15:])
                raise RTLSimulationError(f"latency route: {self.simulator} failed to build the pipeline (exit "
                                         f"{r.returncode}):\n{tail}\nsources and log kept in {keep}")
            atomic_write_text(tmp / "manifest.json", json.dumps({"key": self.key, "files": sorted(files),
                                                                 "simulator": self.simulator}))
            try:
                os.replace(tmp, self.directory)
            except OSError:
                if not self.binary.is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def run(self, words: list[int], w_in: int, warm: int = 64, timeout: float | None = None) -> list[str]:
        """Drive the three phases with ``words`` as the items; returns every sampled output word as hex text."""
        if len(words) > MAX_ITEMS:
            raise RTLSimulationError(f"latency route: {len(words)} items in one call; the testbench holds "
                                     f"{MAX_ITEMS} (call it in chunks)")
        digits = max(1, (w_in + 3) // 4)
        with tempfile.TemporaryDirectory(prefix="allo-lat-") as wd:
            wd = Path(wd)
            for name in self.memfiles:
                (wd / name).symlink_to(self.directory / name)
            (wd / "in.hex").write_text("".join(f"{w:0{digits}x}\n" for w in words))
            args = [f"+items={len(words)}", f"+warm={warm}"]
            cmd = [self.tools[1], "-n", str(self.binary), *args] if self.simulator == "icarus" else [
                str(self.binary), *args]
            try:
                r = subprocess.run(cmd, cwd=wd, capture_output=True, text=True, check=False, timeout=timeout)
            except subprocess.TimeoutExpired as e:
                raise RTLSimulationError(f"latency route: the {self.simulator} simulation ran longer than "
                                         f"{timeout} s") from e
            if r.returncode != 0 or "ALLO_DONE" not in r.stdout or not (wd / "out.hex").is_file():
                tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-10:])
                raise RTLSimulationError(f"latency route: the {self.simulator} simulation did not finish (exit "
                                         f"{r.returncode}):\n{tail}")
            return (wd / "out.hex").read_text().split()


IcarusPipeline = PipelineSim  # the name of the Icarus-only version
