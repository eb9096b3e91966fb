"""target="rtl", schedule="latency": a statically scheduled fixed-point pipeline, traced into da4ml.

The frontend's lowerings run against a tracing sink (``trace.TraceContext``) instead of the MLIR
builder: every library kernel call becomes da4ml values (``kernels.py``; softmax tables in
``softmax.py``), with the kernels' own types and quantisation points. da4ml then schedules the
fully unrolled dataflow into pipeline stages under a delay budget per stage (``to_pipeline``),
optimises constant-matrix products as distributed arithmetic, estimates LUT/FF and writes Verilog;
``design.LatencyDesign`` simulates that Verilog in Icarus (``sim.py``) as a numpy callable.

Knobs that trade resources for cycles:
- ``delay`` (default 5.0): da4ml's delay budget per pipeline stage (its latency cutoff, in its adder
  delay units; 5 is the budget its authors use for 200 MHz). Smaller: more stages, more registers,
  a faster clock.
- ``hard_dc`` (default -1, none): da4ml's adder-depth constraint on constant-matrix products; a
  small value gives shallower (fewer-stage) but larger adder graphs.
- ``dsp_delay`` (default 3.0): delay of an activation-activation product (QK^T, AV, the softmax's
  table products), which the Verilog leaves to the synthesis tool as ``a * b`` and Vivado maps to a
  DSP48E2 (about 3 ns combinational, i.e. 3 adder levels); ``None`` keeps da4ml's own model of a LUT
  array multiplier (one adder level per bit of the narrower operand: 16 for 16-bit operands).
- ``simulator``: "icarus", "verilator" or "auto" (default: Verilator above 1.5 MB of Verilog, where
  Icarus's elaboration time grows quadratically; see ``sim.py``).
- ``reuse_factor`` (hls4ml's name): only 1 (fully parallel, II = 1); da4ml does not time-multiplex.
"""
from __future__ import annotations

import time

from ...lang.errors import AlloError
from .const_step import exact_const_steps
from .design import LatencyDesign
from .errors import StaticLoweringError

__all__ = ["LatencyDesign", "StaticLoweringError", "build_latency", "trace_graph"]


def trace_graph(ep, precision, hard_dc: int = -1, delay: float = 5.0, dsp_delay: float | None = 3.0):
    """The exported program traced into da4ml values: (TracedGraph, seconds)."""
    from da4ml.trace import HWConfig

    from ...frontend.static_import import StaticGraphImporter
    from .kernels_util import DSP_DELAY
    from .trace import TraceContext

    if precision is None:
        raise StaticLoweringError("schedule='latency' on target='rtl' needs a fixed-point precision= "
                                  "(e.g. 'ap_fixed<16,6>'): the static pipeline is fixed point only")
    # adder_size 1, carry_size -1: da4ml's unit of delay is one adder level whatever its width; the
    # cutoff makes every operation start inside one stage (none straddles a register). da4ml's own
    # multiplier model (dsp_delay=None) is longer than a stage, so it needs the cutoff off (-1).
    if dsp_delay is not None and not dsp_delay > 0:
        raise AlloError(f"schedule='latency': dsp_delay must be a positive number (adder levels) or None for "
                        f"da4ml's LUT multiplier model, got {dsp_delay!r}")
    hw = HWConfig(1, -1, float(delay) if dsp_delay is not None else -1.0)

    def sink(p):
        ctx = TraceContext(p, hw)
        ctx.solver_options = {"hard_dc": int(hard_dc)} if hard_dc is not None and hard_dc >= 0 else {}
        return ctx

    t0 = time.perf_counter()
    token = DSP_DELAY.set(dsp_delay)
    try:
        graph = StaticGraphImporter(ep, sink, precision=precision).run()
    finally:
        DSP_DELAY.reset(token)
    return graph, time.perf_counter() - t0


def build_latency(ep, precision, delay: float = 5.0, clock_ns: float = 5.0, hard_dc: int = -1,
                  dsp_delay: float | None = 3.0, reuse_factor: int = 1, name: str = "forward",
                  cache_dir=None, simulator: str = "auto") -> LatencyDesign:
    import numpy as np
    from da4ml.trace import comb_trace, to_pipeline

    if reuse_factor != 1:
        raise AlloError(f"schedule='latency': reuse_factor={reuse_factor!r}; the static route is fully parallel "
                        f"(reuse_factor=1, II=1). Trade resources for cycles with delay= (stage budget) or "
                        f"hard_dc= (adder depth of constant products), or use schedule='default'")
    if not (isinstance(delay, (int, float)) and delay > 0):
        raise AlloError(f"schedule='latency': delay must be a positive number (da4ml's delay budget per stage), "
                        f"got {delay!r}")
    with exact_const_steps():  # da4ml 0.6 mis-sizes some constants of multiplexers: see const_step.py
        graph, t_trace = trace_graph(ep, precision, hard_dc, delay, dsp_delay)
        ins = [v for b in graph.inputs for v in np.asarray(b.value, dtype=object).ravel()]
        outs = [v for b in graph.outputs for v in np.asarray(b.value, dtype=object).ravel()]
        t0 = time.perf_counter()
        comb = comb_trace(ins, outs)
        pipe = to_pipeline(comb, float(delay), verbose=False)
        t_pipe = time.perf_counter() - t0
    return LatencyDesign(graph, comb, pipe, name, float(delay), float(clock_ns), cache_dir=cache_dir,
                         trace_s=t_trace, pipeline_s=t_pipe, simulator=simulator)
