"""LatencyDesign: a traced model pipelined by da4ml, as a numpy callable simulated in RTL.

- ``design(x)`` quantises the float inputs into the input type (its modes, as llvm and csim do),
  streams the items through the Verilog one per clock (Icarus, or Verilator for large designs:
  ``simulator=``) and returns the outputs' values (float64, exact), shaped like the model's.
- ``.cycles``: clocks from an input at the ports to its result at the output ports, measured by the
  testbench in the last simulation (``sim.measure``; before any, the pipeline's register count, which
  the simulation checks); ``.ii`` = 1 (a new item every clock, all of them streamed in one run).
- ``.resources``: da4ml's estimate (LUT, FF) and the DSPs its multipliers need.
- ``.predict(x)``: da4ml's own bit-exact software model of the same trace (fast, for large sets).
- ``.write(dir)``: the Verilog project (sources, table files, Vivado build script, testbench).
"""
from __future__ import annotations

import math
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from ...lang import fixed as fx
from ...lang.errors import AlloError, CallError
from .sim import AUTO_VERILATOR_BYTES, SIMULATORS, PipelineSim, measure

MARKER = ".allo-ext-latency"
VU9P = "xcvu9p-flga2104-2L-e"
DSP_A, DSP_B = 27, 18  # DSP48E2 multiplier port widths (signed)


def _kif(q) -> tuple[int, int, int]:
    from da4ml.types import minimal_kif

    if q.min == 0 and q.max == 0:
        return 0, 0, 0
    k, i, f = minimal_kif(q)
    return int(k), int(i), int(f)


def _dsp_count(comb) -> int:
    """DSP48E2 slices for the multipliers (opcode 7) of one combinational block."""
    n = 0
    for op in comb.ops:
        if op.opcode != 7:
            continue
        w0 = sum(_kif(comb.ops[op.id0].qint))
        w1 = sum(_kif(comb.ops[op.id1].qint))
        a, b = max(w0, w1), min(w0, w1)
        n += math.ceil(a / DSP_A) * math.ceil(b / DSP_B)
    return n


def _for_icarus(text: str) -> str:
    """Icarus 11 rejects a synthesis attribute whose value is a parameter expression (da4ml's ROM style
    choice in lookup_table.v); it means nothing to a simulation, so the simulated copy drops it."""
    return re.sub(r"\(\*\s*rom_style[^*]*\*\)", "", text)


class LatencyDesign:
    def __init__(self, graph, comb, pipe, name: str, delay: float, clock_ns: float, cache_dir=None,
                 trace_s: float = 0.0, pipeline_s: float = 0.0, simulator: str = "auto"):
        if simulator not in SIMULATORS + ("auto",):
            raise AlloError(f"latency route: simulator={simulator!r}; choose 'icarus', 'verilator' or 'auto' "
                            f"(Verilator above {AUTO_VERILATOR_BYTES // 1000} KB of Verilog)")
        self.simulator_choice = simulator
        self.sim_timeout = None  # seconds per simulation run (allo_ext.verify sets it), None: no limit
        self.graph = graph
        self.comb = comb
        self.pipe = pipe
        self.name = name
        self.delay = delay
        self.clock_ns = clock_ns
        self.cache_dir = cache_dir
        self.ii = 1
        self.stages = len(pipe.solutions)
        self.cycles = self.stages + 1  # input register + one register per stage boundary and the output
        self.last_cycles = None
        self.in_shapes = [tuple(b.type.shape[1:]) for b in graph.inputs]
        self.out_shapes = [tuple(b.type.shape[1:]) for b in graph.outputs]
        self.in_types = [b.type.dtype for b in graph.inputs]
        self.in_kifs = [_kif(q) for q in pipe.inp_qint]
        self.out_kifs = [_kif(q) for q in pipe.out_qint]
        self.w_in = sum(sum(k) for k in self.in_kifs)
        self.w_out = sum(sum(k) for k in self.out_kifs)
        self.timings = {"trace_s": trace_s, "pipeline_s": pipeline_s}
        self._sim = None
        dsp = sum(_dsp_count(s) for s in pipe.solutions)
        mul_lut = sum(op.cost for s in pipe.solutions for op in s.ops if op.opcode == 7)
        self.resources = {"lut": int(round(pipe.cost)), "lut_without_multipliers": int(round(pipe.cost - mul_lut)),
                          "ff": int(pipe.reg_bits), "dsp": int(dsp), "multipliers": int(
                              sum(1 for s in pipe.solutions for op in s.ops if op.opcode == 7)),
                          "stages": self.stages, "delay_per_stage": delay}

    # ------------------------------------------------------------------ Verilog
    def _generate(self, path: Path, part: str = VU9P):
        from da4ml.codegen.rtl.rtl_model import VerilogModel

        VerilogModel(self.pipe, self.name, path, clock_period=self.clock_ns, part_name=part,
                     print_latency=False).write()

    def _sources(self):
        with tempfile.TemporaryDirectory(prefix="allo-lat-src-") as d:
            d = Path(d)
            self._generate(d)
            src = {p.name: p.read_text() for p in sorted((d / "src").glob("*.v")) if not p.name.endswith("_wrapper.v")}
            src.update({p.name: _for_icarus(p.read_text()) for p in sorted((d / "src" / "static").glob("*.v"))})
            mem = {p.name: p.read_text() for p in sorted((d / "src" / "memfiles").glob("*"))}
        return src, mem

    def write(self, directory, part: str = VU9P) -> Path:
        """The Verilog project in ``directory`` (created; an existing non-empty directory is written into only
        if an earlier ``write`` made it)."""
        d = Path(directory)
        if d.exists() and any(d.iterdir()) and not (d / MARKER).exists():
            raise AlloError(f"latency route: {d} exists and holds files allo_ext did not write; refusing to "
                            f"overwrite them: choose a new or empty directory")
        d.mkdir(parents=True, exist_ok=True)
        self._generate(d, part)
        from .sim import testbench

        (d / "sim").mkdir(exist_ok=True)
        (d / "sim" / "tb.v").write_text(testbench(self.name, self.w_in, self.w_out))
        (d / MARKER).write_text("written by allo_ext (target='rtl', schedule='latency')\n")
        return d

    def synthesize(self, cache_dir=None, timeout: float = 3600, per_stage: bool = False, jobs: int | None = None):
        """Yosys ``synth_xilinx`` (UltraScale+) of the Verilog: ``{"lut", "ff", "dsp", ...}``. ``per_stage``: each
        pipeline stage in its own run, summed (large designs; an approximation of the flattened run, ``synth.py``)."""
        from .synth import synthesize_sources

        src, mem = self._sources()
        return synthesize_sources(src, mem, self.name, cache_dir=cache_dir or self.cache_dir, timeout=timeout,
                                  per_stage=per_stage, jobs=jobs)

    def digest(self) -> str:
        """A hash of the Verilog and its tables (da4ml's random table names aside): equal digests, equal designs."""
        from .synth import digest

        return digest(*self._sources())

    # ------------------------------------------------------------------ data
    def _check(self, xs):
        if len(xs) != len(self.in_shapes):
            raise CallError(f"the design takes {len(self.in_shapes)} input(s), got {len(xs)}")
        arrs = []
        for k, (x, shape) in enumerate(zip(xs, self.in_shapes)):
            if hasattr(x, "detach"):
                x = x.detach().cpu().numpy()
            x = np.asarray(x)
            if x.shape[1:] != shape:
                raise CallError(f"expected input {k} of shape (B, {', '.join(map(str, shape))}), got {x.shape}")
            arrs.append(x)
        n = arrs[0].shape[0]
        if any(a.shape[0] != n for a in arrs):
            raise CallError(f"all inputs must have the same batch size, got {[a.shape[0] for a in arrs]}")
        return arrs, n

    def _raw_inputs(self, arrs, n) -> np.ndarray:
        """(n, #input elements) raw integers in each port's own LSB position."""
        cols = []
        for a, t in zip(arrs, self.in_types):
            raw = np.asarray(fx.quantize(np.asarray(a, dtype=np.float64), t), dtype=object).reshape(n, -1)
            cols.append(raw)
        raw = np.concatenate(cols, axis=1)
        out = np.zeros(raw.shape, dtype=object)
        for j, (k, i, f) in enumerate(self.in_kifs):
            t_frac = self._frac_of_input(j)
            shift = f - t_frac
            out[:, j] = [int(v) << shift if shift >= 0 else int(v) >> -shift for v in raw[:, j]]
        return out

    def _frac_of_input(self, j: int) -> int:
        for b in self.graph.inputs:
            size = int(np.prod(b.type.shape))
            if j < size:
                return b.type.dtype.frac
            j -= size
        raise AssertionError(j)

    def _pack(self, raw_row) -> int:
        word, pos = 0, 0
        for v, (k, i, f) in zip(raw_row, self.in_kifs):
            w = k + i + f
            if w:
                word |= (int(v) & ((1 << w) - 1)) << pos
                pos += w
        return word

    def _unpack(self, word: int) -> list[float]:
        vals, pos = [], 0
        for k, i, f in self.out_kifs:
            w = k + i + f
            if not w:
                vals.append(0.0)
                continue
            v = (word >> pos) & ((1 << w) - 1)
            if k and v >> (w - 1):
                v -= 1 << w
            vals.append(v * 2.0 ** -f)
            pos += w
        return vals

    def _shape_outputs(self, flat: np.ndarray, n: int):
        outs, pos = [], 0
        for s in self.out_shapes:
            size = int(np.prod(s))
            outs.append(flat[:, pos:pos + size].reshape((n,) + s))
            pos += size
        return outs[0] if len(outs) == 1 else tuple(outs)

    # ------------------------------------------------------------------ run
    def simulator(self) -> PipelineSim:
        """The built simulation (cached by content): Icarus, Verilator, or by size with ``"auto"``."""
        if self._sim is None:
            src, mem = self._sources()
            which = self.simulator_choice
            if which == "auto":
                which = "verilator" if sum(len(v) for v in src.values()) > AUTO_VERILATOR_BYTES else "icarus"
            t0 = time.perf_counter()
            self._sim = PipelineSim(src, mem, self.name, self.w_in, self.w_out, cache_dir=self.cache_dir,
                                    simulator=which)
            self.timings["sim_build_s"] = time.perf_counter() - t0
        return self._sim

    def __call__(self, *xs):
        arrs, n = self._check(xs)
        if n == 0:
            return self._shape_outputs(np.zeros((0, len(self.out_kifs))), 0)
        raw = self._raw_inputs(arrs, n)
        words = [self._pack(raw[r]) for r in range(n)]
        warm = 2 * (self.stages + 1) + 16  # sized from da4ml's count; measure() checks it was long enough
        sim = self.simulator()
        t0 = time.perf_counter()
        samples = sim.run(words, self.w_in, warm=warm, timeout=self.sim_timeout)
        self.timings["sim_run_s"] = time.perf_counter() - t0
        self.last_cycles, got = measure(samples, warm, n, sim.simulator)
        self.cycles = self.last_cycles
        flat = np.array([self._unpack(int(s, 16)) for s in got], dtype=np.float64)
        return self._shape_outputs(flat, n)

    def predict(self, *xs):
        """da4ml's software model of the trace (bit-exact with the Verilog): for large input sets."""
        arrs, n = self._check(xs)
        vals = []
        for a, t in zip(arrs, self.in_types):
            vals.append(np.asarray(t(np.asarray(a, dtype=np.float64)), dtype=np.float64).reshape(n, -1))
        data = np.concatenate(vals, axis=1)
        try:
            flat = self.comb.predict(data)
        except RuntimeError as e:
            if "Unsupported" not in str(e):
                raise
            flat = self._predict_python(data)
        flat = np.asarray(flat, dtype=np.float64).reshape(n, -1)
        return self._shape_outputs(flat, n)

    def _predict_python(self, data: np.ndarray, progress: bool = True) -> np.ndarray:
        """da4ml's Python interpreter of the same ops, one item at a time (about 0.3 s an item for
        JetFormer.tiny). Its C++ interpreter refuses some multiplexer operand alignments, which
        saturating (AP_SAT) conversions of values narrower than their type produce (da4ml 0.6:
        "Unsupported msb_mux shift configuration"); the Verilog and the Python model have them."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        out = np.empty((data.shape[0], self.comb.shape[1]), dtype=np.float64)
        with Progress(TextColumn("[bold]latency route: da4ml Python model"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), disable=not progress or data.shape[0] < 20, transient=True) as bar:
            task = bar.add_task("items", total=data.shape[0])
            for r in range(data.shape[0]):
                out[r] = np.asarray(self.comb(data[r]), dtype=np.float64)
                bar.advance(task)
        return out

    def report(self) -> dict:
        return {"cycles": self.cycles, "ii": self.ii, "clock_ns": self.clock_ns,
                "latency_ns": self.cycles * self.clock_ns, **self.resources}

    def __repr__(self):
        r = self.resources
        return (f"LatencyDesign({self.name}: {self.cycles} cycles, II={self.ii}, ~{r['lut']} LUT, {r['ff']} FF, "
                f"{r['dsp']} DSP)")
