"""Static latency and resource estimate of a scheduled module (``Schedule.estimate()``).

An analytical model in the manner of ScaleHLS's QoR estimator: it reads the scheduled IR (trip
counts, ``hls.pipeline_ii``, ``hls.unroll``, ``hls.partition``, ``hls.dataflow``) and schedules each
loop body as-soon-as-possible under memory-port limits. It never runs a tool; its numbers are for
comparing schedules, not a promise of what Vitis HLS reports.

Cost model (cycles of a 200 MHz clock on Xilinx UltraScale+; every constant is a module-level name)
---------------------------------------------------------------------------------------------------
1. Operations. Each op has a latency in cycles and a DSP/LUT/FF cost, approximating the cores
   Vitis HLS binds by default at that clock (a core named ``fadd_32ns_32ns_32_5_full_dsp`` has 5 stages,
   i.e. a latency of 4). They are rounded from typical Vitis reports, not measured on this design; the
   LUT/FF figures are orders of magnitude. For float32 (``F32_OPS``):

   - fadd/fsub: 4 cycles, 2 DSP;
   - fmul: 3 cycles, 3 DSP;
   - fdiv: 12 cycles, no DSP;
   - sqrt: 12 cycles;
   - exp: 9 cycles, 7 DSP;
   - log: 12 cycles;
   - tanh/erf/pow: 30 cycles (library functions built from several cores);
   - compare, max and min: 1 cycle;
   - int-to-float conversion: 5 cycles; float-to-int: 4; round/floor/ceil: 4;
   - negation, abs and select: 0 cycles (a sign bit or a mux).

   float64 (``F64_OPS``) has its own table: add 5 cycles, mul 6, div 30, for example.
   Integer ops:

   - add, sub, compare, min/max and shifts: 1 cycle;
   - and/or/xor, extensions, truncations and casts: 0 cycles;
   - mul: 1 DSP and 1 cycle up to 18 bits, 3 DSP and 2 cycles up to 32 bits, 10 DSP and 4 cycles
     above that (an operand that comes from an extension counts with its source width);
   - div/rem: ``width + 4`` cycles, no DSP.

   ``index`` arithmetic (addresses, ``affine.apply``) and constants cost nothing: they fold into the
   address logic. A ``memref.copy`` is a pipelined copy loop: ``numel - 1`` cycles plus a read and a
   write.
2. Memories. Every memref is one of:

   - a *scalar*: rank 0, i.e. a scalar temporary or a rank-0 argument. It is a register: an access
     takes 0 cycles and the number of accesses per cycle is unlimited.
   - *registers*: an array whose every dimension is partitioned down to banks of one element. A read
     takes 1 cycle (the mux) and a write 1 cycle; accesses per cycle are unlimited.
   - a *RAM/ROM*: anything else. Each dimension ``d`` of size ``N`` is cut into banks by its
     ``hls.partition``: ``complete`` gives N banks, ``cyclic``/``block`` with factor f give ``min(f, N)``,
     and no partition gives 1. ``dim=0`` partitions every dimension. Each bank has ``MEM_PORTS`` = 2
     ports (true dual-port BRAM, dual-port ROM). A read takes 2 cycles and a write 1 cycle, and each
     takes a port for one cycle.

   The bank of an access is computed from its concrete index. Loops inside the analysed body are
   enumerated, so unrolled indices are constants; enclosing hardware loops are taken at their first
   iteration. An index that is not known at compile time (a run-time value) takes a port on every
   bank along that dimension.

   Within one body, a load of an address already loaded or stored, with no store to that address in
   between, is forwarded and costs nothing. Vitis does this too, through LLVM's load elimination.
   Ordering through memory is read-after-write only: a load of an address waits for the last store to
   it, and for any store of an unknown address to the same memref.
3. A body (a function, or one iteration of a loop) is list-scheduled as soon as possible:

   - an op starts when its operands are ready and, for a memory access, when a port of its bank is
     free;
   - scalar temporaries carry values through their loads and stores, so an unrolled
     ``acc += x`` is a chain of fadds: 4 cycles per term, in program order, since Vitis does not
     reassociate float adds by default;
   - the body's latency is the cycle at which its last op finishes (its depth).

   A hardware loop (one not unrolled into its parent) or a call starts after everything before it in
   its block has finished, and everything after it waits for it. This is the "sequence of top-level
   ops, summed" of a Vitis FSM. The only exception is the body of a function marked
   ``hls.dataflow``: there a call starts as soon as the memrefs it reads have been produced, so the
   function's latency is the longest path through its process graph (for a chain, the sum of the
   chain), and its dataflow II is ``max`` over its stages of the stage's interval (the callee's
   dataflow II if it has one, otherwise its latency; a loop there is a stage of its own latency).
4. Loops. Let ``T`` be the trip count and ``u`` the unroll factor (``hls.unroll``: 0 or ``u >= T``
   means full unroll, and no attribute means ``u = 1``):

   - *full unroll*: the body is instantiated T times inline in the parent body, with no loop and no
     overhead; its ops schedule as soon as possible among the parent's. A loop nested in a pipelined
     loop is always fully unrolled, as Vitis does.
   - *adder tree*: a fully unrolled (``hls.unroll``) reduction ``acc = ACC(acc + term)`` that the HLS C++
     sums as a balanced tree (integers, WRAP fixed point with TRN/RND: ``allo_ext.passes.reduction_tree``
     decides for both) is counted as that C++ is written: each body computes its term rounded into ACC,
     then the initial value and the T terms are added pairwise level by level (``v[i] += v[i + s]``),
     ``ceil(log2(T + 1))`` adds deep, T adders of ACC's width plus one bit. A saturating or float
     accumulator stays the chain of T adds.
   - otherwise the loop runs ``T' = ceil(T / u)`` iterations of a body made of u copies (resources
     times u; a reduction into a scalar gets u times longer);
   - *not pipelined*: ``latency = T' * (depth + LOOP_OVERHEAD)``, with ``LOOP_OVERHEAD`` = 1 cycle per
     iteration for the exit test;
   - *pipelined*: ``latency = (T' - 1) * II + depth``, with ``II = max(requested II, memory II,
     recurrence II)``;
   - the memory II is the largest ``ceil(accesses to one bank per iteration / MEM_PORTS)``;
   - the recurrence II is the longest loop-carried dependence cycle. For a scalar that is read before
     it is written in the iteration (an accumulator), it is the longest path of op latencies from that
     read to its last write; for ``acc += x`` that is the fadd latency, 4. Slack spent waiting for other
     operands does not count. An array element written in one iteration and read in the next
     (distance 1, found by replaying the second iteration) gives the path from its read, including the
     read and write latencies, to the write;
   - *flattening*: a loop that is not pipelined or unrolled, and whose body is exactly one pipelined
     loop, is flattened into it, as Vitis does with perfect nests by default. The result is one
     pipeline of ``T_outer * T'_inner`` iterations.
5. Resources. A body needs one instance of each op it contains, with unrolled copies replicated, plus
   what its hardware loops need:

   - a pipelined loop with ``II > 1`` shares units: it needs ``ceil(instances of an op kind / II)`` of
     them;
   - nothing else is shared: a hardware loop reuses its body's units across iterations, but two loops
     or two ops of one non-pipelined body each keep their own;
   - each hardware loop adds ``LOOP_CONTROL_LUT``/``LOOP_CONTROL_FF`` for its counter and FSM.

   Buffers are counted in the function that allocates them (``memref.alloc``/``alloca``; a scalar is
   ``bits`` FFs), and constant globals once per symbol. Argument buffers belong to the caller:

   - a bank of more than ``LUTRAM_MAX_BITS`` bits is block RAM, as the fewest 18Kb blocks over the
     aspect ratios 16K x 1 ... 512 x 36;
   - a smaller bank is distributed RAM, at 2 LUTs per 64 x 1 bits;
   - registers are FFs (bits);
   - a completely partitioned constant is folded into logic and costs nothing.

   A global's partitioning is the finest one among the callee arguments it is passed to. Every call
   site is its own hardware, as the emitted code instantiates it: the HLS emitter inlines every kernel
   except a dataflow region, and the processes of a dataflow region are separate by construction. The
   one shared case is a dataflow-region function called from several places of a non-dataflow caller:
   it stays a function, and one instance serves its call sites. Totals multiply each function's
   resources by its instance count.

The op latencies assume a 200 MHz target. ``clock_mhz`` only converts cycles into time: at another
clock Vitis would pick other core latencies.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from torch_mlir import ir

from ..interface import MAXI_LATENCY, local_port_copies
from .costs import (LOOP_CONTROL_FF, LOOP_CONTROL_LUT, F32_OPS, LOOP_OVERHEAD, MEM_PORTS, RAM_READ_LATENCY, REG_READ_LATENCY,  # noqa: F401
                    SCALAR_ACCESS_LATENCY, STORE_LATENCY, EstimateError, OpCost, op_cost)
from .memory import Storage
from .report import Estimate, KernelEstimate, LoopEstimate  # noqa: F401
from .scheduler import _Estimator, _Res


# ------------------------------------------------------------------------------------------- entry point
def estimate(schedule, top: str | None = None, clock_mhz: float = 200, interface: str = "vitis") -> Estimate:
    """Latency (cycles of one call of ``top``) and resources of a scheduled module; see the module doc.

    ``schedule`` is a Schedule (``allo_ext.customize`` / ``frontend.trace``) or an ``ir.Module`` (then
    ``top`` is required). ``interface`` is the HLS emitter's ("vitis": m_axi ports, copied locally when
    the module partitions anything; "ip": ap_memory ports, used in place).
    """
    if clock_mhz <= 0:
        raise EstimateError(f"clock_mhz must be positive, got {clock_mhz}")
    if interface not in ("vitis", "ip"):
        raise EstimateError(f"unknown interface {interface!r}; choose 'vitis' (m_axi ports) or 'ip' (ap_memory ports)")
    if isinstance(schedule, ir.Module):
        module = schedule
        if top is None:
            raise EstimateError("estimate(module) needs top=<function name> when given an ir.Module")
        context = module.context
    else:
        module, context = schedule.module, schedule.context
        top = top or schedule.top
    with context:
        est = _Estimator(module)
        if top not in est.funcs:
            raise EstimateError(f"no function '{top}' in the module; functions: {', '.join(est.funcs)}")
        top_res = est.function(top)
        order, calls, instances = _call_graph(est, top)
        global_bram, global_lut = _global_memories(est, order)
        port = _port_copies(est, module, top, interface)
    kernels, total = [], _Res()
    bram_total = 0
    for name in order:
        r = est.results[name]
        g_bram, g_lut = global_bram.get(name, 0), global_lut.get(name, 0)
        extra = port if name == top else _PortCopies()
        k = KernelEstimate(name, calls[name], instances[name], r.cycles + extra.cycles, r.ii, r.res.dsp,
                           r.bram + g_bram + extra.bram, r.res.lut + g_lut + extra.lut, r.res.ff + extra.ff,
                           r.dataflow)
        kernels.append(k)
        total.dsp += k.dsp * k.instances
        total.lut += k.lut * k.instances
        total.ff += k.ff * k.instances
        bram_total += k.bram * k.instances
    loops = [lp for (fn, _), lp in est.loops.items() if fn in calls]
    cycles = top_res.cycles + port.cycles
    # A dataflow top overlaps calls except for its port copies, which run before and after its region.
    ii = top_res.ii + port.cycles if top_res.ii is not None else cycles
    return Estimate(top, clock_mhz, cycles, ii, total.dsp, bram_total, total.lut, total.ff, kernels, loops,
                    interface_cycles=port.cycles)


@dataclass
class _PortCopies:
    cycles: int = 0
    bram: int = 0
    lut: int = 0
    ff: int = 0


def _port_copies(est: _Estimator, module, top: str, interface: str) -> _PortCopies:
    """The local copies of the top's m_axi array ports that the HLS emitter writes (``passes.interface``):
    a pipelined burst loop per port, ``MAXI_LATENCY`` to the first beat and then one element per cycle,
    before the body for inputs and after it for outputs; an input copy is a buffer of the top, partitioned
    as the finest callee argument it feeds."""
    out = _PortCopies()
    if not local_port_copies(module, interface):
        return out
    f = est.irs[top]
    callee_specs = {}
    for callee, ins in f.call_args:
        cf = est.irs.get(callee)
        if cf is None:
            continue
        for vid, arg_st in zip(ins, cf.arg_storage):
            if arg_st is not None:
                callee_specs.setdefault(vid, []).append(arg_st)
    for a, st in zip(f.op.regions[0].blocks[0].arguments, f.arg_storage):
        if st is None or not st.shape:
            continue
        best = st
        for cand in callee_specs.get(f.vid(a), []):
            if cand.shape == st.shape and math.prod(cand.nbanks) > math.prod(best.nbanks):
                best = cand
        b, lu, ff = Storage(st.name, st.shape, st.bits, best.spec).resources()
        out.bram += b
        out.lut += lu + LOOP_CONTROL_LUT
        out.ff += ff + LOOP_CONTROL_FF
        out.cycles += (st.numel - 1) + MAXI_LATENCY + STORE_LATENCY
    for t in ir.FunctionType(ir.TypeAttr(f.op.attributes["function_type"]).value).results:
        if isinstance(t, ir.MemRefType) and ir.MemRefType(t).shape:
            out.lut += LOOP_CONTROL_LUT
            out.ff += LOOP_CONTROL_FF
            out.cycles += (math.prod(ir.MemRefType(t).shape) - 1) + RAM_READ_LATENCY + MAXI_LATENCY
    return out


def _call_graph(est: _Estimator, top: str):
    """Functions reachable from ``top`` (first-call order), invocations per top call, hardware instances."""
    order, seen = [], set()

    def visit(name):
        if name in seen:
            return
        seen.add(name)
        order.append(name)
        for callee, _ in est.results[name].calls:
            visit(callee)

    visit(top)
    # Topological accumulation from the top: callers before callees (call graphs here are DAGs).
    calls = Counter({top: 1})
    instances = Counter({top: 1})
    indeg = Counter()
    for name in order:
        for callee in {c for c, _ in est.results[name].calls}:
            indeg[callee] += 1
    queue = [top]
    while queue:
        name = queue.pop()
        r = est.results[name]
        per_callee = Counter()
        for callee, mult in r.calls:
            calls[callee] += calls[name] * mult
            per_callee[callee] += 1
        for callee, sites in per_callee.items():
            # The HLS emitter inlines every callee except a dataflow region: inlined, each call site is
            # its own copy of the hardware; a dataflow region stays a function, shared by its call sites
            # (unless they are processes of a dataflow caller, which are separate by construction).
            shared = est.results[callee].dataflow and not r.dataflow
            instances[callee] += instances[name] * (1 if shared else sites)
            indeg[callee] -= 1
            if indeg[callee] == 0:
                queue.append(callee)
    return order, calls, instances


def _global_memories(est: _Estimator, order) -> tuple[dict, dict]:
    """BRAM/LUT of constant globals, once per symbol, partitioned as the finest callee argument they feed."""
    best: dict[str, Storage] = {}
    owner: dict[str, str] = {}
    for name in order:
        f = est.irs[name]
        for sym, st in f.globals.items():
            owner.setdefault(sym, name)
            best.setdefault(sym, st)
        by_vid = {v: s for v, s in f.storage.items() if s.const}
        for callee, ins in f.call_args:
            cf = est.irs.get(callee)
            if cf is None:
                continue
            for vid, arg_st in zip(ins, cf.arg_storage):
                st = by_vid.get(vid)
                if st is None or arg_st is None:
                    continue
                cand = Storage(st.name, st.shape, st.bits, arg_st.spec, const=True)
                if math.prod(cand.nbanks) > math.prod(best[st.name].nbanks):
                    best[st.name] = cand
    bram, lut = Counter(), Counter()
    for sym, st in best.items():
        b, lu, _ = st.resources()
        bram[owner[sym]] += b
        lut[owner[sym]] += lu
    return bram, lut
