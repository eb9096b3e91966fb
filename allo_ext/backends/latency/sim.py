"""Icarus simulation of a da4ml pipeline: one input word per clock (II = 1), outputs sampled every clock.

The testbench drives ``model_inp`` with undefined bits (x) before the first item and after the last,
so the first clock whose ``model_out`` has no undefined bit is where item 0 comes out: the latency is
measured from the simulation, not taken from the pipeline's stage count. Builds are cached under
``$ALLO_EXT_CACHE/latency/<sha256 of sources, tables and testbench>``.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ...cache import atomic_write_text, cache_root, sha256
from ..rtl.simulate import RTLSimulationError, _version, find_tool

MAX_ITEMS = 1 << 16  # testbench memory depth: items per simulation call


def testbench(top: str, w_in: int, w_out: int) -> str:
    return f"""`timescale 1ns/1ps
module tb;
  reg clk = 1'b0;
  reg [{w_in - 1}:0] inp;
  wire [{w_out - 1}:0] out;
  reg [{w_in - 1}:0] mem [0:{MAX_ITEMS - 1}];
  integer n, extra, t, fd;
  {top} dut (.clk(clk), .model_inp(inp), .model_out(out));
  initial begin
    if (!$value$plusargs("items=%d", n)) n = 1;
    if (!$value$plusargs("extra=%d", extra)) extra = 64;
    $readmemh("in.hex", mem);
    fd = $fopen("out.hex", "w");
    inp = {{{w_in}{{1'bx}}}};
    for (t = 0; t < n + extra; t = t + 1) begin
      inp = (t < n) ? mem[t] : {{{w_in}{{1'bx}}}};
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


class IcarusPipeline:
    """A built simulation of one design (Verilog sources + table files + testbench)."""

    def __init__(self, sources: dict, memfiles: dict, top: str, w_in: int, w_out: int, cache_dir=None):
        self.iverilog, self.vvp = find_tool("iverilog"), find_tool("vvp")
        self.tb = testbench(top, w_in, w_out)
        self.sources, self.memfiles = sources, memfiles
        blob = json.dumps([sorted(sources.items()), sorted(memfiles.items()), self.tb, _version(self.iverilog)])
        self.key = sha256(blob.encode())[:32]
        self.directory = (Path(cache_dir) if cache_dir else cache_root("latency")) / self.key
        self.cache_hit = (self.directory / "manifest.json").is_file() and (self.directory / "sim.vvp").is_file()
        if not self.cache_hit:
            self._build()

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
            cmd = [self.iverilog, "-g2012", "-o", "sim.vvp", "-s", "tb", "tb.v", *sorted(files)]
            r = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, check=False)
            if r.returncode != 0 or not (tmp / "sim.vvp").is_file():
                keep = root / f"failed-{self.key[:16]}"
                shutil.rmtree(keep, ignore_errors=True)
                os.replace(tmp, keep)
                tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-15:])
                raise RTLSimulationError(f"latency route: iverilog failed to build the pipeline (exit {r.returncode}):"
                                         f"\n{tail}\nsources kept in {keep}")
            atomic_write_text(tmp / "manifest.json", json.dumps({"key": self.key, "files": sorted(files)}))
            try:
                os.replace(tmp, self.directory)
            except OSError:
                if not (self.directory / "sim.vvp").is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def run(self, words: list[int], w_in: int, extra: int = 64, timeout: float | None = None) -> list[str]:
        """Drive ``words`` (one per clock); returns every sampled output word as hex text."""
        if len(words) > MAX_ITEMS:
            raise RTLSimulationError(f"latency route: {len(words)} items in one call; the testbench holds "
                                     f"{MAX_ITEMS} (call it in chunks)")
        digits = max(1, (w_in + 3) // 4)
        with tempfile.TemporaryDirectory(prefix="allo-lat-") as wd:
            wd = Path(wd)
            for name in self.memfiles:
                (wd / name).symlink_to(self.directory / name)
            (wd / "in.hex").write_text("".join(f"{w:0{digits}x}\n" for w in words))
            cmd = [self.vvp, "-n", str(self.directory / "sim.vvp"), f"+items={len(words)}", f"+extra={extra}"]
            try:
                r = subprocess.run(cmd, cwd=wd, capture_output=True, text=True, check=False, timeout=timeout)
            except subprocess.TimeoutExpired as e:
                raise RTLSimulationError(f"latency route: the simulation ran longer than {timeout} s") from e
            if r.returncode != 0 or "ALLO_DONE" not in r.stdout or not (wd / "out.hex").is_file():
                tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-10:])
                raise RTLSimulationError(f"latency route: the Icarus simulation did not finish (exit {r.returncode}):"
                                         f"\n{tail}")
            return (wd / "out.hex").read_text().split()
