"""RTLModule: the generated SystemVerilog as a numpy callable (simulated), with resources and a project.

Calling convention as the C simulation's (``hls/csim.py``): every array has the kernel's shape, or
an extra leading batch dimension B, in which case the testbench runs the kernel B times in one
simulation. ``.cycles`` holds the cycle count (start token accepted -> done token) of the last
call's last item and ``.cycles_per_item`` all of them. Outputs are poisoned before the run (the
testbench loads the poisoned buffers into the output memories), so an element the design never
stores raises instead of coming back as stale data.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from ...lang.errors import AlloError, CallError
from ..hls.csim import BatchPlan
from ..poison import run_poisoned
from . import testbench as tbgen
from .lower import Lowered, Port
from .simulate import SIMULATORS, Simulator
from .sv import top_ports
from .yosys import Resources, script as yosys_script, synthesize

MARKER = ".allo-ext-rtl"


def _raw(p: Port, arr) -> np.ndarray:
    """Element values -> the integers the hardware stores. Fixed point: real numbers quantised with
    the type's modes (as target="llvm" and csim do), then the raw two's complement integers."""
    if p.dtype.is_fixed and p.role != "rom":
        from ...lang import fixed as fx

        return fx.quantize(np.asarray(arr, dtype=np.float64), p.dtype)
    return np.asarray(arr)


def _to_words(p: Port, arr) -> np.ndarray:
    """Stored integers -> unsigned ``bits``-wide words (two's complement)."""
    a = np.asarray(arr).ravel()
    u = a if a.dtype == np.uint64 else a.astype(np.int64).view(np.uint64)
    return u if p.bits >= 64 else u & np.uint64((1 << p.bits) - 1)


def _from_words(p: Port, words: np.ndarray) -> np.ndarray:
    """Words -> values in the port's storage dtype (sign-extended when signed)."""
    w = words.astype(np.uint64)
    if p.bits < 64:
        w = w & np.uint64((1 << p.bits) - 1)
    v = w.view(np.int64) if p.bits == 64 else w.astype(np.int64)
    if p.dtype.signed and p.bits < 64:
        v = np.where(v >= (1 << (p.bits - 1)), v - (1 << p.bits), v)
    return v.astype(_storage_dtype(p))


def _storage_dtype(p: Port) -> np.dtype:
    return np.dtype(p.dtype.storage_numpy) if p.dtype.is_fixed else np.dtype(p.dtype.numpy)


def _write_hex(path: Path, words: np.ndarray, bits: int):
    digits = max(1, (bits + 3) // 4)
    path.write_text("".join(f"{int(x):0{digits}x}\n" for x in words))


def _read_hex(path: Path, count: int, what: str) -> np.ndarray:
    if not path.is_file():
        raise AlloError(f"rtl: the testbench did not write {path.name} ({what})")
    lines = path.read_text().split()
    if len(lines) != count:
        raise AlloError(f"rtl: {path.name} ({what}) holds {len(lines)} words, expected {count}")
    if any("x" in ln.lower() or "z" in ln.lower() for ln in lines):
        raise AlloError(f"rtl: {what} holds undefined (x/z) bits after the simulation")
    return np.array([int(ln, 16) for ln in lines], dtype=np.uint64)


def _dequantize(p: Port, o: np.ndarray) -> np.ndarray:
    if not p.dtype.is_fixed:
        return o
    from ...lang import fixed as fx

    return fx.dequantize(fx.from_storage(o, p.dtype), p.dtype)


class RTLModule:
    def __init__(self, lowered: Lowered, sv: str, schedule=None, simulator: str = "icarus",
                 max_cycles: int = 5_000_000, cache_dir=None):
        if simulator not in SIMULATORS:
            raise AlloError(f"rtl: unknown simulator {simulator!r}; choose one of {SIMULATORS}")
        if not sv.strip():
            raise AlloError("rtl: the SystemVerilog is empty")
        self.lowered = lowered
        self.name = self.top = lowered.top
        self.ports = lowered.ports
        self.inputs = [p for p in self.ports if p.role == "in"]
        self.outputs = [p for p in self.ports if p.role == "out"]
        self.sv = sv
        self.mlir = lowered.text
        self.schedule = schedule
        self.simulator = simulator
        self.max_cycles = int(max_cycles)
        self.sim_timeout: float | None = None  # seconds one call's simulation may take (None: no limit)
        self.cache_dir = cache_dir
        self.testbench = tbgen.generate(self.top, self.ports, top_ports(sv, self.top))
        self._sim: Simulator | None = None
        self.cycles: int | None = None
        self.cycles_per_item: list[int] = []
        self.resources: Resources | None = None
        self._last_inputs = None

    # -- simulation
    def simulation(self) -> Simulator:
        if self._sim is None:
            self._sim = Simulator(self.sv, self.testbench, self.simulator, self.cache_dir)
        return self._sim

    def _signature(self) -> str:
        return ", ".join(f"{p.name}: {p.dtype}{list(p.shape)}" for p in self.inputs)

    def __call__(self, *args):
        if len(args) != len(self.inputs):
            raise CallError(f"kernel '{self.name}' takes {len(self.inputs)} argument(s) ({self._signature()}), "
                            f"got {len(args)}")
        # fixed-point arrays come as real numbers (any float or int dtype), like target="llvm" takes them
        args = [np.asarray(a, dtype=np.float64) if p.dtype.is_fixed and np.asarray(a).dtype.kind in "fiu" else a
                for p, a in zip(self.inputs, args)]
        plan = BatchPlan(self.name, self.inputs, args)
        n = plan.batch if plan.batch is not None else 1
        sim = self.simulation()
        specs = [(plan.output_shape(p), _storage_dtype(p)) for p in self.outputs]
        self._last_inputs = [plan.item_args(args, 0)]

        def invoke(outs):
            with tempfile.TemporaryDirectory(prefix="allo-rtl-run-") as d:
                d = Path(d)
                self._write_inputs(d, plan, args, outs, n)
                t0 = time.perf_counter()
                cycles = sim.run(d, n, self.max_cycles, timeout=self.sim_timeout)
                self.sim_seconds = time.perf_counter() - t0
                self._read_outputs(d, outs, n)
            self.cycles_per_item = cycles
            self.cycles = cycles[-1]

        outs = run_poisoned(self.name, specs, invoke)
        outs = [_dequantize(p, o) for p, o in zip(self.outputs, outs)]
        if not outs:
            return None
        return outs[0] if len(outs) == 1 else tuple(outs)

    def _write_inputs(self, d: Path, plan, args, outs, n: int):
        ins = iter(range(len(self.inputs)))
        outs_it = iter(outs)
        for k, p in enumerate(self.ports):
            if p.role == "rom":
                _write_hex(d / f"rom{k}.hex", _to_words(p, p.data), p.bits)
                continue
            if p.role == "in":
                i = next(ins)
                arr = np.asarray(args[i])
                items = [arr[b] if plan.style == "extra" else arr[b:b + 1] for b in range(n)] if plan.batched[i] \
                    else [arr] * n
            else:
                o = next(outs_it)
                items = [o[b] if plan.style == "extra" else o[b:b + 1] for b in range(n)] if plan.batch is not None \
                    else [o]
            words = np.concatenate([_to_words(p, _raw(p, x)) for x in items])
            _write_hex(d / f"mem{k}.in", words, p.bits)

    def _read_outputs(self, d: Path, outs, n: int):
        for o, (k, p) in zip(outs, [(k, p) for k, p in enumerate(self.ports) if p.role == "out"]):
            words = _read_hex(d / f"mem{k}.out", n * p.size, f"output '{p.name}'")
            o[...] = _from_words(p, words).reshape(o.shape)

    # -- synthesis
    def synth(self) -> Resources:
        """Yosys synth_xilinx: {"lut", "ff", "dsp", "bram", ...} (cached by the SystemVerilog's hash)."""
        if self.resources is None:
            self.resources = synthesize(self.sv, self.top, self.cache_dir)
        return self.resources

    def estimate(self, **kw):
        """The static estimate of the schedule this design was built from (to compare with ``.cycles``)."""
        if self.schedule is None:
            raise AlloError("this RTLModule was not built from a Schedule")
        kw.setdefault("interface", "ip")  # the RTL's memories are ports used in place, as an ap_memory IP's
        return self.schedule.estimate(**kw)

    # -- project
    def write(self, directory) -> dict[str, Path]:
        """SV, testbench, memory images, Makefile (Icarus/Verilator/Yosys), Yosys script and a README."""
        d = Path(directory)
        if d.exists() and any(d.iterdir()) and not (d / MARKER).exists():
            raise AlloError(f"rtl: refusing to write into {d}: it is not empty and was not written by allo-ext "
                            "(choose an empty or new directory)")
        d.mkdir(parents=True, exist_ok=True)
        files = {"design.sv": self.sv, "tb.sv": self.testbench, "synth.ys": yosys_script(self.top),
                 "Makefile": self._makefile(), "README.md": self._readme(), "kernel.mlir": self.mlir, MARKER: ""}
        out = {}
        for name, text in files.items():
            (d / name).write_text(text)
            out[name] = d / name
        example = self._last_inputs[0] if self._last_inputs else [np.zeros(p.shape, _storage_dtype(p)) for p in self.inputs]
        ins = iter(example)
        for k, p in enumerate(self.ports):
            if p.role == "rom":
                _write_hex(d / f"rom{k}.hex", _to_words(p, p.data), p.bits)
                out[f"rom{k}.hex"] = d / f"rom{k}.hex"
            else:
                a = next(ins) if p.role == "in" else np.zeros(p.shape, _storage_dtype(p))
                _write_hex(d / f"mem{k}.in", _to_words(p, _raw(p, a) if p.role == "in" else a), p.bits)
                out[f"mem{k}.in"] = d / f"mem{k}.in"
        return out

    def _makefile(self) -> str:
        return "\n".join([
            f"# Simulate or synthesise kernel '{self.top}' (generated by allo-ext, target=\"rtl\").",
            "ITEMS ?= 1", "MAX_CYCLES ?= 5000000", "",
            ".PHONY: sim verilator synth clean", "",
            "sim: sim.vvp", "\tvvp -n sim.vvp +items=$(ITEMS) +max_cycles=$(MAX_CYCLES)", "",
            "sim.vvp: tb.sv design.sv", "\tiverilog -g2012 -s tb -o $@ tb.sv design.sv", "",
            "verilator: obj_dir/Vtb", "\t./obj_dir/Vtb +items=$(ITEMS) +max_cycles=$(MAX_CYCLES)", "",
            "obj_dir/Vtb: tb.sv design.sv",
            "\tverilator --binary --timing -Wno-fatal -Wno-lint -Wno-style -Wno-INITIALDLY --top-module tb -o Vtb "
            "tb.sv design.sv", "",
            "synth: design.sv synth.ys", "\tyosys -q -s synth.ys && cat stat.txt", "",
            "clean:", "\trm -rf sim.vvp obj_dir stat.txt mem*.out", ""])

    def _readme(self) -> str:
        rows = "\n".join(f"| mem{k} | {p.name} | {p.role} | {p.dtype} | {list(p.shape)} | {p.bits} |"
                         for k, p in enumerate(self.ports))
        return f"""# RTL of kernel `{self.top}` (allo-ext, target="rtl")

Generated from the kernel's MLIR (`kernel.mlir`, cf-level integer MLIR) by CIRCT's handshake flow:
a dynamically scheduled circuit with valid/ready handshakes. Memories are ports of the module;
`tb.sv` models them (one-cycle loads, stores acknowledged a cycle later).

| command | what it does | needs |
|---|---|---|
| `make sim` | Icarus: runs `ITEMS` calls, prints `ALLO_ITEM <i> <cycles>` | `apt-get install iverilog` |
| `make verilator` | the same with Verilator | `apt-get install verilator` |
| `make synth` | Yosys `synth_xilinx`, cell counts in `stat.txt` | `apt-get install yosys` |

Memories (one hex word per line, two's complement in the element's width; `memK.in` holds
`ITEMS` consecutive images, outputs come back in `memK.out`, ROMs are read from `romK.hex`):

| file | name | role | type | shape | bits |
|---|---|---|---|---|---|
{rows}

Cycles are counted from the clock edge that accepts the start token to the edge that sees the
done token. Index arithmetic is {self.lowered.index_bits} bits wide.
"""
