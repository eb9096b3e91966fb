"""Icarus and Verilator: build a simulator of design + testbench (cached by content), run it.

Builds live under ``$ALLO_EXT_CACHE/rtl`` (default ``~/.cache/allo_ext/rtl``) in a directory named
by the SHA-256 of the SystemVerilog, the testbench, the simulator and its version. A build is made
in a private directory and renamed into place (parallel workers may build the same design), and a
cached build is used only if its ``manifest.json`` matches the sources and the binary's digest.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ...cache import cache_root as shared_cache_root, sha256
from ...lang.errors import AlloError, ToolNotFoundError

SIMULATORS = ("icarus", "verilator")
# tool -> Debian package that provides it
APT = {"iverilog": "iverilog", "vvp": "iverilog", "verilator": "verilator", "yosys": "yosys"}


class RTLSimulationError(AlloError):
    """The simulator failed to build or run the design, or the testbench reported an error."""


def find_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ToolNotFoundError(f"rtl: '{name}' not found on PATH; install it with "
                                f"`sudo apt-get install -y {APT.get(name, name)}` (or run `make apt`)")
    return path


@functools.lru_cache(maxsize=None)
def _version(tool: str) -> str:
    flag = {"iverilog": "-V", "verilator": "--version", "yosys": "-V"}.get(Path(tool).name, "--version")
    r = subprocess.run([tool, flag], capture_output=True, text=True, check=False)
    return (r.stdout or r.stderr).strip().splitlines()[0] if (r.stdout or r.stderr).strip() else "unknown"


def cache_root() -> Path:
    return shared_cache_root("rtl")


def _sim_tools(simulator: str) -> list[str]:
    if simulator not in SIMULATORS:
        raise AlloError(f"rtl: unknown simulator {simulator!r}; choose one of {SIMULATORS}")
    return ["iverilog", "vvp"] if simulator == "icarus" else ["verilator"]


class Simulator:
    """A built simulator of one design; ``run(workdir, items)`` executes it there."""

    BINARY = {"icarus": "sim.vvp", "verilator": "Vtb"}

    def __init__(self, sv: str, tb: str, simulator: str = "icarus", cache_dir=None):
        if not sv.strip():
            raise RTLSimulationError("rtl: the SystemVerilog is empty; refusing to simulate nothing")
        self.simulator = simulator
        tools = [find_tool(t) for t in _sim_tools(simulator)]
        self.tools = tools
        self.key = sha256(json.dumps([sv, tb, simulator, _version(tools[0])]).encode())[:32]
        self.directory = (Path(cache_dir) if cache_dir else cache_root()) / self.key
        self.binary = self.directory / self.BINARY[simulator]
        self.cache_hit = self._valid(sv, tb)
        if not self.cache_hit:
            self._build(sv, tb)

    def _valid(self, sv: str, tb: str) -> bool:
        man = self.directory / "manifest.json"
        try:
            m = json.loads(man.read_text())
            return (m["design"] == sha256(sv.encode()) and m["testbench"] == sha256(tb.encode())
                    and m["binary"] == sha256(self.binary.read_bytes()))
        except (OSError, ValueError, KeyError):
            return False

    def _build(self, sv: str, tb: str):
        root = self.directory.parent
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".build-{self.key[:8]}-", dir=root))
        try:
            (tmp / "design.sv").write_text(sv)
            (tmp / "tb.sv").write_text(tb)
            if self.simulator == "icarus":
                cmd = [self.tools[0], "-g2012", "-o", "sim.vvp", "-s", "tb", "tb.sv", "design.sv"]
            else:
                cmd = [self.tools[0], "--binary", "--timing", "-Wno-fatal", "-Wno-lint", "-Wno-style",
                       "-Wno-INITIALDLY", "--top-module", "tb", "-o", "Vtb", "--Mdir", "obj_dir",
                       "tb.sv", "design.sv"]
            r = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, check=False)
            (tmp / "build.log").write_text(" ".join(cmd) + "\n" + r.stdout + r.stderr)
            if self.simulator == "verilator" and r.returncode == 0 and (tmp / "obj_dir" / "Vtb").is_file():
                os.replace(tmp / "obj_dir" / "Vtb", tmp / "Vtb")
                shutil.rmtree(tmp / "obj_dir", ignore_errors=True)  # objects: ~10x the binary
            binary = tmp / self.BINARY[self.simulator]
            if r.returncode != 0 or not binary.is_file():
                keep = root / f"failed-{self.key[:16]}"
                shutil.rmtree(keep, ignore_errors=True)
                os.replace(tmp, keep)
                tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-15:])
                raise RTLSimulationError(f"rtl: {self.simulator} failed to build the simulation (exit {r.returncode}):\n"
                                         f"{tail}\ncommand: {' '.join(cmd)}; sources and log kept in {keep}")
            (tmp / "manifest.json").write_text(json.dumps({
                "design": sha256(sv.encode()), "testbench": sha256(tb.encode()), "binary": sha256(binary.read_bytes()),
                "simulator": self.simulator, "version": _version(self.tools[0])}))
            if self.directory.exists() and not self._valid(sv, tb):
                # A stale or damaged entry: move it aside (atomically) and replace it.
                stale = Path(tempfile.mkdtemp(prefix=".stale-", dir=root))
                os.replace(self.directory, stale / "entry")
                shutil.rmtree(stale, ignore_errors=True)
            try:
                os.replace(tmp, self.directory)
            except OSError:
                if not self._valid(sv, tb):  # anything but "another worker just put the same build there"
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def command(self, items: int, max_cycles: int) -> list[str]:
        args = [f"+items={items}", f"+max_cycles={max_cycles}"]
        if self.simulator == "icarus":
            return [self.tools[1], "-n", str(self.binary), *args]
        return [str(self.binary), *args]

    def run(self, workdir: Path, items: int, max_cycles: int, timeout: float | None = None) -> list[int]:
        """Run ``items`` calls; returns the cycle count of each."""
        cmd = self.command(items, max_cycles)
        try:
            r = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, check=False, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise RTLSimulationError(f"rtl: the {self.simulator} simulation ran longer than {timeout} s") from e
        out = r.stdout
        errors = [ln for ln in out.splitlines() if ln.startswith("ALLO_ERROR")]
        if errors:
            raise RTLSimulationError(f"rtl: the testbench reported: {errors[0][len('ALLO_ERROR '):]}")
        cycles = [int(ln.split()[2]) for ln in out.splitlines() if ln.startswith("ALLO_ITEM")]
        if r.returncode != 0 or "ALLO_DONE" not in out or len(cycles) != items:
            tail = "\n".join((out + r.stderr).strip().splitlines()[-10:])
            raise RTLSimulationError(f"rtl: the {self.simulator} simulation did not finish (exit {r.returncode}, "
                                     f"{len(cycles)} of {items} calls done):\n{tail}")
        return cycles
