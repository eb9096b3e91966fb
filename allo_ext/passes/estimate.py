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

   A global's partitioning is the finest one among the callee arguments it is passed to. A function
   called from several places is one hardware instance, except in a dataflow function, where each call
   site is its own process. Totals multiply each function's resources by its instance count.

The op latencies assume a 200 MHz target. ``clock_mhz`` only converts cycles into time: at another
clock Vitis would pick other core latencies.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field

from torch_mlir import ir

from ..lang.errors import AlloError
from .loop_info import loop_name, trip_count


class EstimateError(AlloError):
    """The estimator met IR it has no cost for, or a loop whose trip count it cannot know."""


# ------------------------------------------------------------------------------------------- constants
@dataclass(frozen=True)
class OpCost:
    latency: int
    dsp: int = 0
    lut: int = 0
    ff: int = 0


FREE = OpCost(0)
MEM_PORTS = 2
RAM_READ_LATENCY = 2
REG_READ_LATENCY = 1
STORE_LATENCY = 1
SCALAR_ACCESS_LATENCY = 0
LOOP_OVERHEAD = 1
LOOP_CONTROL_LUT = 40
LOOP_CONTROL_FF = 30
LUTRAM_MAX_BITS = 1024
BRAM18_SHAPES = ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512))  # (width, depth)

_F_ADD, _F_MUL = OpCost(4, 2, 220, 200), OpCost(3, 3, 130, 150)
_F_DIV, _F_SQRT = OpCost(12, 0, 800, 760), OpCost(12, 0, 480, 400)
_F_CMP, _F_LIB = OpCost(1, 0, 70, 0), OpCost(30, 10, 2500, 2500)
F32_OPS = {
    "arith.addf": _F_ADD, "arith.subf": _F_ADD, "arith.mulf": _F_MUL, "arith.divf": _F_DIV,
    "arith.remf": _F_DIV, "math.sqrt": _F_SQRT, "math.rsqrt": _F_SQRT,
    "math.exp": OpCost(9, 7, 800, 300), "math.log": OpCost(12, 8, 900, 600),
    "math.tanh": _F_LIB, "math.erf": _F_LIB, "math.powf": _F_LIB,
    "arith.cmpf": _F_CMP, "arith.maximumf": _F_CMP, "arith.minimumf": _F_CMP,
    "arith.maxnumf": _F_CMP, "arith.minnumf": _F_CMP,
    "arith.negf": FREE, "math.absf": FREE,
    "arith.sitofp": OpCost(5, 0, 220, 340), "arith.uitofp": OpCost(5, 0, 220, 340),
    "arith.fptosi": OpCost(4, 0, 200, 200), "arith.fptoui": OpCost(4, 0, 200, 200),
    "math.roundeven": OpCost(4, 0, 300, 200), "math.floor": OpCost(4, 0, 300, 200),
    "math.ceil": OpCost(4, 0, 300, 200), "math.round": OpCost(4, 0, 300, 200),
    "arith.extf": OpCost(1, 0, 100, 100), "arith.truncf": OpCost(2, 0, 150, 100),
}
F64_OPS = {
    **{k: OpCost(2 * v.latency, v.dsp * 2, v.lut * 2, v.ff * 2) for k, v in F32_OPS.items()},
    "arith.addf": OpCost(5, 3, 700, 600), "arith.subf": OpCost(5, 3, 700, 600),
    "arith.mulf": OpCost(6, 11, 300, 350), "arith.divf": OpCost(30, 0, 3200, 3000),
    "math.sqrt": OpCost(30, 0, 1800, 1700), "math.exp": OpCost(20, 26, 2000, 1500),
    "math.log": OpCost(20, 30, 2500, 2000),
    "arith.cmpf": _F_CMP, "arith.maximumf": _F_CMP, "arith.minimumf": _F_CMP,
    "arith.negf": FREE, "math.absf": FREE,
}
_INT_ONE_CYCLE = {"arith.addi", "arith.subi", "arith.cmpi", "arith.maxsi", "arith.minsi", "arith.maxui",
                  "arith.minui", "arith.shli", "arith.shrsi", "arith.shrui", "math.absi"}
_WIRES = {"arith.andi", "arith.ori", "arith.xori", "arith.extsi", "arith.extui", "arith.trunci",
          "arith.index_cast", "arith.index_castui", "arith.bitcast", "arith.select"}  # bit logic and muxes
_INT_DIV = {"arith.divsi", "arith.divui", "arith.remsi", "arith.remui", "arith.floordivsi", "arith.ceildivsi"}
_NO_TIME = {"arith.constant", "memref.alloc", "memref.alloca", "memref.get_global", "memref.dealloc",
            "affine.yield", "func.return", "cf.assert"}


def int_mul_cost(width: int) -> OpCost:
    """A DSP48E2 multiplies 27 x 18 bits: one up to 18 bits, three (a 2-stage cascade) up to 32."""
    if width <= 18:
        return OpCost(1, 1, 10, 20)
    if width <= 32:
        return OpCost(2, 3, 30, 60)
    return OpCost(4, 10, 80, 150)


def op_cost(name: str, type_: ir.Type, operand_widths=()) -> OpCost:
    """Latency/resources of op ``name`` on values of ``type_`` (its result, or its operand for compares)."""
    if name in _NO_TIME or name in _WIRES or isinstance(type_, ir.IndexType):  # index: address arithmetic
        return FREE
    if isinstance(type_, ir.FloatType):
        table = F64_OPS if ir.FloatType(type_).width > 32 else F32_OPS
        if name in table:
            return table[name]
    elif isinstance(type_, ir.IntegerType):
        w = ir.IntegerType(type_).width
        if name in _INT_ONE_CYCLE:
            return OpCost(1, 0, w, w)
        if name == "arith.muli":
            return int_mul_cost(max(operand_widths) if operand_widths else w)
        if name in _INT_DIV:
            return OpCost(w + 4, 0, w * w // 2, w * 3)
    if name in F32_OPS:  # e.g. a float op whose type we did not recognise: cost it as float32
        return F32_OPS[name]
    raise EstimateError(f"no cost for op '{name}' on {type_}; add it to the tables in allo_ext/passes/estimate.py")


# ------------------------------------------------------------------------------------------- results
@dataclass
class LoopEstimate:
    kernel: str
    loop: str
    trip: int
    unroll: int | None
    pipelined: bool
    ii: int | None
    ii_limit: str | None  # "requested", "memory <buffer>" or "recurrence <variable>"
    depth: int
    latency: int
    flattened: tuple = ()  # names of the outer loops flattened into this pipeline


@dataclass
class KernelEstimate:
    name: str
    calls: int  # invocations per call of the top function
    instances: int  # hardware copies
    cycles: int  # latency of one call
    ii: int | None  # dataflow II (only for functions marked hls.dataflow)
    dsp: int
    bram: int  # 18Kb blocks
    lut: int
    ff: int
    dataflow: bool = False


@dataclass
class Estimate:
    top: str
    clock_mhz: float
    cycles: int
    ii: int  # interval between two calls: the dataflow II, or the latency
    dsp: int
    bram: int
    lut: int
    ff: int
    kernels: list[KernelEstimate] = field(default_factory=list)
    loops: list[LoopEstimate] = field(default_factory=list)

    @property
    def latency_us(self) -> float:
        return self.cycles / self.clock_mhz

    def kernel(self, name: str) -> KernelEstimate:
        for k in self.kernels:
            if k.name == name:
                return k
        raise KeyError(f"no kernel '{name}' in this estimate; kernels: {', '.join(k.name for k in self.kernels)}")

    def loop(self, kernel: str, name: str) -> LoopEstimate:
        for lp in self.loops:
            if lp.kernel == kernel and lp.loop == name:
                return lp
        have = ", ".join(lp.loop for lp in self.loops if lp.kernel == kernel) or "(none)"
        raise KeyError(f"no hardware loop '{name}' in kernel '{kernel}' (fully unrolled loops have no entry); "
                       f"its loops: {have}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["latency_us"] = self.latency_us
        return d

    def table(self) -> str:
        """Markdown: one row per kernel (latency of one call, its calls per top call), then the total."""
        head = "| kernel | calls | cycles/call | cycles total | II | DSP | BRAM18K | LUT | FF |"
        rows = [head, "|" + "---|" * 9]
        for k in self.kernels:
            ii = "-" if k.ii is None else str(k.ii)
            rows.append(f"| {k.name}{' (dataflow)' if k.dataflow else ''} | {k.calls} | {k.cycles} | "
                        f"{k.calls * k.cycles} | {ii} | {k.dsp} | {k.bram} | {k.lut} | {k.ff} |")
        rows.append(f"| **total ({self.top})** | 1 | {self.cycles} | {self.cycles} | {self.ii} | {self.dsp} | "
                    f"{self.bram} | {self.lut} | {self.ff} |")
        rows.append("")
        rows.append(f"{self.cycles} cycles = {self.latency_us:.3f} us at {self.clock_mhz:g} MHz; one call every "
                    f"{self.ii} cycles. Resources: per-kernel columns are one instance; totals count instances.")
        return "\n".join(rows)


# ------------------------------------------------------------------------------------------- memories
class Storage:
    """One memref as hardware: its kind (scalar, registers, ram), banks and ports."""

    def __init__(self, name: str, shape: tuple, bits: int, spec: list, const: bool = False):
        self.name, self.shape, self.bits, self.const = name, tuple(shape), bits, const
        self.spec = spec  # per dim: (kind, factor)
        self.nbanks = [_banks(n, k, f) for n, (k, f) in zip(self.shape, spec)]
        if not self.shape:
            self.kind = "scalar"
        elif all(b == n for b, n in zip(self.nbanks, self.shape)):
            self.kind = "regs"
        else:
            self.kind = "ram"

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    def banks(self, addr) -> list:
        """Every bank an access to ``addr`` (a tuple, None for an unknown index) may touch."""
        per_dim = []
        for x, n, (k, f), nb in zip(addr, self.shape, self.spec, self.nbanks):
            if nb == 1:
                per_dim.append((0,))
            elif x is None:
                per_dim.append(tuple(range(nb)))
            elif k == "block":
                per_dim.append((x // -(-n // nb),))
            else:  # cyclic, complete
                per_dim.append((x % nb,))
        out = [()]
        for opts in per_dim:
            out = [b + (o,) for b in out for o in opts]
        return out

    def resources(self) -> tuple[int, int, int]:
        """(BRAM18K, LUT, FF) of this buffer."""
        if self.kind == "scalar":
            return 0, 0, 0 if self.const else self.bits
        if self.kind == "regs":
            return (0, 0, 0) if self.const else (0, 0, self.numel * self.bits)
        banks = math.prod(self.nbanks)
        words = -(-self.numel // banks)
        if words * self.bits <= LUTRAM_MAX_BITS:
            return 0, banks * 2 * -(-words // 64) * self.bits, 0
        per_bank = min(-(-self.bits // w) * -(-words // d) for w, d in BRAM18_SHAPES)
        return banks * per_bank, 0, 0


def _banks(n: int, kind: str, factor: int) -> int:
    if kind == "complete":
        return n
    if kind in ("cyclic", "block"):
        return max(1, min(int(factor), n))
    return 1


def _partition_specs(func_op) -> dict[str, dict[int, tuple]]:
    """buffer name -> {dim (1-based, 0 = all): (kind, factor)} from the function's ``hls.partition``."""
    out: dict = defaultdict(dict)
    if "hls.partition" not in func_op.attributes:
        return out
    for entry in ir.ArrayAttr(func_op.attributes["hls.partition"]):
        d = ir.DictAttr(entry)
        name = ir.StringAttr(d["name"]).value
        out[name][ir.IntegerAttr(d["dim"]).value] = (ir.StringAttr(d["kind"]).value, ir.IntegerAttr(d["factor"]).value)
    return out


def _spec_for(rank: int, entries: dict) -> list:
    spec = [("none", 1)] * rank
    for dim, kf in entries.items():  # insertion order: later entries override earlier ones
        for d in (range(rank) if dim == 0 else [dim - 1]):
            spec[d] = kf
    return spec


def _elem_bits(t) -> int:
    if isinstance(t, ir.FloatType):
        return ir.FloatType(t).width
    if isinstance(t, ir.IntegerType):
        return ir.IntegerType(t).width
    return 64  # index


# ------------------------------------------------------------------------------------------- affine maps
def _compile_expr(e):
    """An affine expression as a Python function of (dims, symbols); None propagates (unknown value)."""
    if isinstance(e, ir.AffineConstantExpr):
        v = e.value
        return lambda d, s: v
    if isinstance(e, ir.AffineDimExpr):
        p = e.position
        return lambda d, s: d[p]
    if isinstance(e, ir.AffineSymbolExpr):
        p = e.position
        return lambda d, s: s[p]
    lhs, rhs = _compile_expr(e.lhs), _compile_expr(e.rhs)
    if isinstance(e, ir.AffineAddExpr):
        fn = lambda a, b: a + b  # noqa: E731
    elif isinstance(e, ir.AffineMulExpr):
        fn = lambda a, b: a * b  # noqa: E731
    elif isinstance(e, ir.AffineModExpr):
        fn = lambda a, b: a % b  # noqa: E731  (Python's % is MLIR's non-negative mod for b > 0)
    elif isinstance(e, ir.AffineFloorDivExpr):
        fn = lambda a, b: a // b  # noqa: E731
    elif isinstance(e, ir.AffineCeilDivExpr):
        fn = lambda a, b: -(-a // b)  # noqa: E731
    else:
        raise EstimateError(f"unknown affine expression {e}")

    def ev(d, s):
        a, b = lhs(d, s), rhs(d, s)
        return None if a is None or b is None else fn(a, b)

    return ev


def _compile_map(amap, operand_ids):
    """A map and its operand ids as a function of the environment -> tuple of results."""
    nd = amap.n_dims
    exprs = [_compile_expr(r) for r in amap.results]
    ids = list(operand_ids)

    def ev(env):
        vals = [env.get(i) for i in ids]
        d, s = vals[:nd], vals[nd:]
        return tuple(x(d, s) for x in exprs)

    return ev


def _identity_indices(operand_ids):
    ids = list(operand_ids)
    return lambda env: tuple(env.get(i) for i in ids)


# ------------------------------------------------------------------------------------------- IR to nodes
class _Node:
    __slots__ = ("kind", "name", "cost", "ins", "outs", "mem", "index", "body", "extra")

    def __init__(self, kind, name="", cost=FREE, ins=(), outs=(), mem=None, index=None, body=None, extra=None):
        self.kind, self.name, self.cost, self.ins, self.outs = kind, name, cost, tuple(ins), tuple(outs)
        self.mem, self.index, self.body, self.extra = mem, index, body, extra


class _Loop:
    __slots__ = ("name", "op", "iv", "lb", "ub", "step", "static_trip", "ii", "unroll")


class _FuncIR:
    """A func.func turned into plain Python nodes once, so that unrolled bodies are cheap to replay."""

    def __init__(self, func_op):
        self.op = func_op
        self.name = ir.StringAttr(func_op.attributes["sym_name"]).value
        self.dataflow = "hls.dataflow" in func_op.attributes
        self._ids: dict = {}
        self.storage: dict[int, Storage] = {}
        self.owned: list[Storage] = []  # buffers this function allocates
        self.globals: dict[str, Storage] = {}  # symbol -> storage of constants it references
        self.const_env: dict[int, int] = {}
        self.call_args: list[tuple[str, list]] = []  # (callee, operand ids) for partition lookup of globals
        self.specs = _partition_specs(func_op)
        block = func_op.regions[0].blocks[0]
        names = [ir.StringAttr(a).value for a in ir.ArrayAttr(func_op.attributes["allo.arg_names"])] \
            if "allo.arg_names" in func_op.attributes else [f"arg{i}" for i in range(len(block.arguments))]
        self.arg_names = names
        self.arg_storage: list[Storage | None] = []
        for n, a in zip(names, block.arguments):
            st = self._storage_of(n, a.type) if isinstance(a.type, ir.MemRefType) else None
            if st is not None:
                self.storage[self.vid(a)] = st
            self.arg_storage.append(st)
        self.body = self._block(block)

    def vid(self, v) -> int:
        i = self._ids.get(v)
        if i is None:
            i = self._ids[v] = len(self._ids)
        return i

    def _storage_of(self, name, mtype, const=False, spec_entries=None):
        mt = ir.MemRefType(mtype)
        entries = self.specs.get(name, {}) if spec_entries is None else spec_entries
        return Storage(name, tuple(mt.shape), _elem_bits(mt.element_type), _spec_for(mt.rank, entries), const)

    def _block(self, block) -> list:
        nodes = []
        for op in block.operations:
            n = self._op(op.operation)
            if n is not None:
                nodes.append(n)
        return nodes

    def _op(self, o):
        name = o.name
        ins = [self.vid(v) for v in o.operands]
        outs = [self.vid(v) for v in o.results]
        if name == "affine.for":
            return self._for(o)
        if name in ("affine.load", "affine.store"):
            is_store = name == "affine.store"
            mem = ins[1] if is_store else ins[0]
            idx = ins[2:] if is_store else ins[1:]
            fn = _compile_map(ir.AffineMapAttr(o.attributes["map"]).value, idx)
            return _Node("store" if is_store else "load", name, ins=ins, outs=outs, mem=mem, index=fn)
        if name in ("memref.load", "memref.store"):
            is_store = name == "memref.store"
            mem = ins[1] if is_store else ins[0]
            idx = ins[2:] if is_store else ins[1:]
            return _Node("store" if is_store else "load", name, ins=ins, outs=outs, mem=mem,
                         index=_identity_indices(idx))
        if name in ("memref.alloc", "memref.alloca"):
            nm = ir.StringAttr(o.attributes["name"]).value if "name" in o.attributes else f"buf{outs[0]}"
            st = self._storage_of(nm, o.results[0].type)
            self.storage[outs[0]] = st
            self.owned.append(st)
            return None
        if name == "memref.get_global":
            sym = ir.FlatSymbolRefAttr(o.attributes["name"]).value
            st = self.globals.get(sym)
            if st is None:
                st = self._storage_of(sym, o.results[0].type, const=True, spec_entries={})
                self.globals[sym] = st
            self.storage[outs[0]] = st
            return None
        if name == "func.call":
            callee = ir.FlatSymbolRefAttr(o.attributes["callee"]).value
            self.call_args.append((callee, ins))
            for r, v in zip(outs, o.results):
                if isinstance(v.type, ir.MemRefType):
                    self.storage[r] = self._storage_of(f"{callee}.result", v.type, spec_entries={})
            return _Node("call", callee, ins=ins, outs=outs)
        if name == "memref.copy":  # a pipelined copy loop: one element per cycle
            n = math.prod(ir.MemRefType(o.operands[0].type).shape)
            return _Node("op", name, cost=OpCost(max(n - 1, 0) + RAM_READ_LATENCY + STORE_LATENCY), ins=ins, outs=outs)
        if name == "scf.if":
            then_b = self._block(o.regions[0].blocks[0])
            else_b = self._block(o.regions[1].blocks[0]) if len(o.regions[1].blocks) else []
            return _Node("if", name, ins=ins, outs=outs, body=(then_b, else_b))
        if name == "scf.yield":
            return _Node("yield", name, ins=ins)
        if name == "arith.constant":
            t = o.results[0].type
            if isinstance(t, (ir.IndexType, ir.IntegerType)):
                self.const_env[outs[0]] = ir.IntegerAttr(o.attributes["value"]).value
            return None
        if name == "affine.apply":
            fn = _compile_map(ir.AffineMapAttr(o.attributes["map"]).value, ins)
            return _Node("index", name, ins=ins, outs=outs, extra=lambda env, fn=fn: fn(env)[0])
        if name in _NO_TIME:
            return None
        t = o.operands[0].type if name in ("arith.cmpf", "arith.cmpi") or not len(o.results) else o.results[0].type
        if isinstance(t, ir.IndexType) or (name in ("arith.index_cast", "arith.index_castui")):
            return _Node("index", name, ins=ins, outs=outs, extra=_index_fn(name, ins))
        widths = [self._source_width(v) for v in o.operands] if name == "arith.muli" else ()
        return _Node("op", name, cost=op_cost(name, t, widths), ins=ins, outs=outs)

    def _source_width(self, v) -> int:
        """Width of an integer operand, looking through sign/zero extensions (Vitis narrows them)."""
        owner = getattr(v.owner, "operation", v.owner)  # an Operation, or a Block for a block argument
        if isinstance(owner, ir.Operation) and owner.name in ("arith.extsi", "arith.extui"):
            return _elem_bits(owner.operands[0].type)
        return _elem_bits(v.type)

    def _for(self, o) -> _Node:
        lp = _Loop()
        lp.op = o
        lp.name = loop_name(o)
        fop = o.opview
        lp.iv = self.vid(fop.induction_variable)
        lp.lb = _compile_map(ir.AffineMapAttr(o.attributes["lowerBoundMap"]).value,
                             [self.vid(v) for v in fop.lowerBoundOperands])
        lp.ub = _compile_map(ir.AffineMapAttr(o.attributes["upperBoundMap"]).value,
                             [self.vid(v) for v in fop.upperBoundOperands])
        lp.step = ir.IntegerAttr(o.attributes["step"]).value
        lp.static_trip = trip_count(o)
        lp.ii = ir.IntegerAttr(o.attributes["hls.pipeline_ii"]).value if "hls.pipeline_ii" in o.attributes else None
        lp.unroll = ir.IntegerAttr(o.attributes["hls.unroll"]).value if "hls.unroll" in o.attributes else None
        return _Node("for", lp.name, body=self._block(fop.body), extra=lp)


def _index_fn(name, ins):
    ops = {"arith.addi": lambda a, b: a + b, "arith.subi": lambda a, b: a - b, "arith.muli": lambda a, b: a * b,
           "arith.floordivsi": lambda a, b: a // b, "arith.divsi": lambda a, b: int(a / b),
           "arith.remsi": lambda a, b: int(math.fmod(a, b)), "arith.divui": lambda a, b: a // b,
           "arith.remui": lambda a, b: a % b, "arith.maxsi": max, "arith.minsi": min}
    if name in ("arith.index_cast", "arith.index_castui"):
        return lambda env: env.get(ins[0])
    fn = ops.get(name)
    if fn is None or len(ins) != 2:
        return lambda env: None

    def ev(env):
        a, b = env.get(ins[0]), env.get(ins[1])
        try:
            return None if a is None or b is None else fn(a, b)
        except ZeroDivisionError:
            return None

    return ev


# ------------------------------------------------------------------------------------------- scheduling
@dataclass
class _Res:
    dsp: int = 0
    lut: int = 0
    ff: int = 0

    def add(self, o: "_Res", times: int = 1):
        self.dsp += o.dsp * times
        self.lut += o.lut * times
        self.ff += o.ff * times


class _Region:
    """One list-scheduling context: a function body or one iteration of a hardware loop."""

    def __init__(self, env: dict, expand: bool):
        self.env = dict(env)
        self.expand = expand  # inside a pipelined body: every nested loop is fully unrolled
        self.ready: dict[int, int] = {}
        self.floor = 0
        self.end = 0
        self.ports: dict = defaultdict(Counter)
        self.accesses: Counter = Counter()
        self.mem_ready: dict = {}
        self.unknown_store: dict = {}
        self.avail: dict = {}  # (storage, addr) -> cycle its value is available without a memory read
        self.array_stores: list = []  # (storage, addr) of every array store, in order
        self.ops: Counter = Counter()
        self.nested = _Res()
        # Recurrences (pipelined bodies only): ``chain[v]`` maps a source to the length of the longest
        # dependence path from it to value v. A source is ("s", scalar) for a scalar read before this
        # iteration writes it (the value the previous iteration left), or ("a", storage, addr) for an
        # array read. Path lengths, unlike ASAP start times, carry no slack waiting for other operands.
        self.track = False
        self.chain: dict = {}
        self.scalar_chain: dict = {}  # scalar -> chain of the value last written to it in this region
        self.avail_chain: dict = {}  # (storage, addr) -> chain of a forwarded value
        self.written: set = set()  # scalars written so far in this region
        self.scalar_rec: dict = {}  # scalar -> length of its loop-carried cycle
        self.array_chains: list = []  # (storage, load addr, store addr, length)

    def at(self, ids) -> int:
        t = self.floor
        for i in ids:
            r = self.ready.get(i)
            if r is not None and r > t:
                t = r
        return t

    def finish(self, t: int):
        if t > self.end:
            self.end = t

    def op_resources(self, ii: int = 1) -> _Res:
        r = _Res()
        for cost, n in self.ops.items():
            units = -(-n // ii)
            r.dsp += cost.dsp * units
            r.lut += cost.lut * units
            r.ff += cost.ff * units
        r.add(self.nested)
        return r


@dataclass
class _LoopResult:
    latency: int
    res: _Res
    pipelined: bool
    trips: int = 0
    ii: int = 0
    depth: int = 0
    record: LoopEstimate | None = None


@dataclass
class _FuncResult:
    name: str
    cycles: int
    ii: int | None
    dataflow: bool
    res: _Res
    bram: int
    calls: list  # (callee, multiplicity per call of this function)
    stage_intervals: list


class _Estimator:
    MAX_EXPANSION = 2_000_000  # op instances replayed per function before giving up

    def __init__(self, module: ir.Module):
        self.funcs = {}
        for op in module.body.operations:
            if op.operation.name == "func.func" and len(op.regions[0].blocks):
                self.funcs[ir.StringAttr(op.attributes["sym_name"]).value] = op
        self.irs: dict[str, _FuncIR] = {}
        self.results: dict[str, _FuncResult] = {}
        self.loops: dict = {}
        self._work = 0

    def func_ir(self, name: str) -> _FuncIR:
        if name not in self.irs:
            if name not in self.funcs:
                raise EstimateError(f"call to '{name}', which has no body in this module (an external function); "
                                    f"the estimator needs every callee's IR")
            self.irs[name] = _FuncIR(self.funcs[name])
        return self.irs[name]

    # ------------------------------------------------------------------ functions
    def function(self, name: str) -> _FuncResult:
        if name in self.results:
            return self.results[name]
        f = self.func_ir(name)
        self._func, self._work = f, 0
        region = _Region(f.const_env, expand=False)
        calls: list = []
        stages: list = []
        self._run(f.body, region, f, calls, stages, mult=1, top_level=True)
        bram, lut, ff = 0, 0, 0
        for st in f.owned:
            b, lu, fl = st.resources()
            bram, lut, ff = bram + b, lut + lu, ff + fl
        res = region.op_resources()
        res.lut += lut
        res.ff += ff
        ii = max(stages) if f.dataflow and stages else None
        out = _FuncResult(name, region.end, ii, f.dataflow, res, bram, calls, stages)
        self.results[name] = out
        return out

    def _callee(self, name: str) -> _FuncResult:
        saved = self._func, self._work
        try:
            return self.function(name)
        finally:
            self._func, self._work = saved

    # ------------------------------------------------------------------ bodies
    def _run(self, nodes, region: _Region, f: _FuncIR, calls, stages, mult: int, top_level: bool = False):
        self._work += len(nodes)
        if self._work > self.MAX_EXPANSION:
            raise EstimateError(f"kernel '{f.name}': unrolled bodies expand to more than {self.MAX_EXPANSION} op "
                                f"instances; the estimator replays unrolled loops one by one, so unroll less "
                                f"(or pipeline an inner loop instead of an outer one)")
        env, ready = region.env, region.ready
        for n in nodes:
            k = n.kind
            if k == "op":
                t = region.at(n.ins)
                done = t + n.cost.latency
                for o in n.outs:
                    ready[o] = done
                region.ops[n.cost] += 1
                region.finish(done)
                if region.track:
                    _propagate(region, n.ins, n.outs, n.cost.latency)
            elif k == "load":
                self._load(n, region, f)
            elif k == "store":
                self._store(n, region, f)
            elif k == "index":
                env[n.outs[0]] = n.extra(env)
                ready[n.outs[0]] = region.at(n.ins)
            elif k == "for":
                self._loop(n, region, f, calls, stages, mult, top_level)
            elif k == "call":
                self._call(n, region, f, calls, stages, mult, top_level)
            elif k == "if":
                saved = region.floor
                region.floor = region.at(n.ins)
                self._run(n.body[0], region, f, calls, stages, mult)
                then_y = self._yielded(n.body[0], region)
                self._run(n.body[1], region, f, calls, stages, mult)
                else_y = self._yielded(n.body[1], region)
                region.floor = saved
                for i, o in enumerate(n.outs):
                    ready[o] = max(then_y[i] if i < len(then_y) else 0, else_y[i] if i < len(else_y) else 0)
            elif k == "yield":
                pass
            else:  # pragma: no cover - _FuncIR only makes the kinds above
                raise EstimateError(f"internal: unknown node kind {k}")

    @staticmethod
    def _yielded(nodes, region) -> list:
        for n in reversed(nodes):
            if n.kind == "yield":
                return [region.ready.get(i, region.floor) for i in n.ins]
        return []

    def _load(self, n, region: _Region, f: _FuncIR):
        st = f.storage.get(n.mem)
        if st is None:
            raise EstimateError(f"kernel '{f.name}': a load reads a memref that is not an argument, a local buffer, "
                                f"a global or a call result; the estimator cannot tell its storage")
        addr = n.index(region.env)
        out = n.outs[0]
        t = region.at(n.ins[1:])
        if st.kind == "scalar":
            t = max(t, region.mem_ready.get((st, ()), 0))
            region.ready[out] = t + SCALAR_ACCESS_LATENCY
            region.finish(region.ready[out])
            if region.track:
                if st in region.written:
                    region.chain[out] = region.scalar_chain.get(st) or {}
                else:
                    region.chain[out] = {("s", st): SCALAR_ACCESS_LATENCY}
            return
        known = None not in addr
        key = (st, addr)
        if known and key in region.avail:
            region.ready[out] = max(t, region.avail[key])
            if region.track:
                region.chain[out] = region.avail_chain.get(key, {})
            return
        t = max(t, region.mem_ready.get(key, 0) if known else max(
            [c for (s, _), c in region.mem_ready.items() if s is st], default=0), region.unknown_store.get(st, 0))
        if st.kind == "ram":
            t = self._port(region, st, addr, t)
            lat = RAM_READ_LATENCY
        else:
            lat = REG_READ_LATENCY
        region.ready[out] = t + lat
        region.finish(t + lat)
        if known:
            region.avail[key] = t + lat
        if region.track:
            region.chain[out] = {("a", st, addr): lat}
            if known:
                region.avail_chain[key] = region.chain[out]

    def _store(self, n, region: _Region, f: _FuncIR):
        st = f.storage.get(n.mem)
        if st is None:
            raise EstimateError(f"kernel '{f.name}': a store writes a memref whose storage the estimator cannot tell")
        addr = n.index(region.env)
        value = n.ins[0]
        t = region.at((value,) + n.ins[2:])
        chain = region.chain.get(value, {}) if region.track else {}
        if st.kind == "scalar":
            region.mem_ready[(st, ())] = t
            region.finish(t)
            region.written.add(st)
            if region.track:
                region.scalar_chain[st] = chain
                length = chain.get(("s", st))
                if length is not None:
                    region.scalar_rec[st] = max(region.scalar_rec.get(st, 0), length + SCALAR_ACCESS_LATENCY)
            return
        if st.kind == "ram":
            t = self._port(region, st, addr, t)
        done = t + STORE_LATENCY
        region.finish(done)
        region.array_stores.append((st, addr))
        for src, length in chain.items():
            if src[0] == "a" and src[1] is st:
                region.array_chains.append((st, src[2], addr, length + STORE_LATENCY))
        if None in addr:
            region.unknown_store[st] = max(region.unknown_store.get(st, 0), done)
            for k in [k for k in region.avail if k[0] is st]:
                del region.avail[k]
        else:
            region.mem_ready[(st, addr)] = done
            # The stored value is forwarded to later loads of the same address (store-to-load forwarding).
            region.avail[(st, addr)] = region.ready.get(value, t)
            if region.track:
                region.avail_chain[(st, addr)] = chain

    @staticmethod
    def _port(region: _Region, st: Storage, addr, t: int) -> int:
        banks = st.banks(addr)
        while any(region.ports[(st, b)][t] >= MEM_PORTS for b in banks):
            t += 1
        for b in banks:
            region.ports[(st, b)][t] += 1
            region.accesses[(st, b)] += 1
        return t

    # ------------------------------------------------------------------ calls
    def _call(self, n, region: _Region, f: _FuncIR, calls, stages, mult, top_level):
        callee = self._callee(n.name)
        calls.append((n.name, mult))
        if f.dataflow and top_level:
            t = region.at(n.ins)
            stages.append(callee.ii if callee.ii is not None else callee.cycles)
        else:
            t = max(region.end, region.at(n.ins))
        done = t + callee.cycles
        for o in n.outs:
            region.ready[o] = done
        region.finish(done)
        if not (f.dataflow and top_level):
            region.floor = done

    # ------------------------------------------------------------------ loops
    def _trip_and_lb(self, lp: _Loop, env, f: _FuncIR) -> tuple[int, int]:
        lb = lp.lb(env)
        lbv = max(x for x in lb) if None not in lb else None
        trip = lp.static_trip
        if trip is None:
            ub = lp.ub(env)
            if lbv is None or None in ub:
                raise EstimateError(f"loop '{lp.name}' in kernel '{f.name}' has bounds that depend on run-time "
                                    f"values; the estimator needs compile-time trip counts")
            trip = max(0, -(-(min(ub) - lbv) // lp.step))
        if lbv is None:
            lbv = 0
        return trip, lbv

    def _loop(self, n, region: _Region, f: _FuncIR, calls, stages, mult, top_level):
        lp: _Loop = n.extra
        trip, lb = self._trip_and_lb(lp, region.env, f)
        if trip == 0:
            return
        full = region.expand or (lp.unroll is not None and (lp.unroll == 0 or lp.unroll >= trip))
        if full:  # the body is instantiated trip times inline
            for k in range(trip):
                region.env[lp.iv] = lb + k * lp.step
                self._run(n.body, region, f, calls, stages, mult)
            return
        result = self._hardware_loop(n, lp, trip, lb, region.env, f, calls, stages, mult)
        self.loops.setdefault((f.name, result.record.loop), result.record)
        t = max(region.end, region.floor)
        region.finish(t + result.latency)
        region.floor = region.end
        region.nested.add(result.res)
        if f.dataflow and top_level:
            stages.append(result.latency)

    def _hardware_loop(self, n, lp: _Loop, trip, lb, env, f, calls, stages, mult) -> _LoopResult:
        u = lp.unroll if lp.unroll else 1
        trips = -(-trip // u)
        pipelined = lp.ii is not None
        flat = self._flattened(n, lp, trip, trips, u, pipelined, lb, env, f, calls, stages, mult)
        if flat is not None:
            return flat
        body = _Region(env, expand=pipelined)
        body.track = pipelined
        for k in range(u):
            body.env[lp.iv] = lb + k * lp.step
            self._run(n.body, body, f, calls, stages, mult * trips)
        depth = body.end
        limit = None
        if pipelined:
            ii, limit = max(1, lp.ii), "requested"
            for (st, _), cnt in body.accesses.items():
                need = -(-cnt // MEM_PORTS)
                if need > ii:
                    ii, limit = need, f"memory {st.name}"
            for st, rec in body.scalar_rec.items():
                if rec > ii:
                    ii, limit = rec, f"recurrence {st.name}"
            rec, name = self._array_recurrence(n, lp, lb, u, env, f, body, trips)
            if rec > ii:
                ii, limit = rec, f"recurrence {name}"
            latency = (trips - 1) * ii + depth
            res = body.op_resources(ii)
        else:
            ii = None
            latency = trips * (depth + LOOP_OVERHEAD)
            res = body.op_resources()
        res.lut += LOOP_CONTROL_LUT
        res.ff += LOOP_CONTROL_FF
        record = LoopEstimate(f.name, lp.name, trip, lp.unroll, pipelined, ii, limit, depth, latency)
        return _LoopResult(latency, res, pipelined, trips, ii or 0, depth, record)

    def _flattened(self, n, lp, trip, trips, u, pipelined, lb, env, f, calls, stages, mult):
        """A perfect nest around a pipelined loop is one pipeline (Vitis flattens it by default)."""
        if pipelined or u != 1 or len(n.body) != 1 or n.body[0].kind != "for":
            return None
        inner = n.body[0].extra
        inner_env = dict(env)
        inner_env[lp.iv] = lb
        itrip, ilb = self._trip_and_lb(inner, inner_env, f)
        if itrip == 0 or not _pipeline_nest(n.body[0], itrip):
            return None
        sub = self._hardware_loop(n.body[0], inner, itrip, ilb, inner_env, f, calls, stages, mult * trips)
        total = trips * sub.trips
        latency = (total - 1) * sub.ii + sub.depth
        rec = sub.record
        record = LoopEstimate(f.name, rec.loop, rec.trip * trip, rec.unroll, True, rec.ii, rec.ii_limit, rec.depth,
                              latency, (lp.name,) + rec.flattened)
        res = _Res()
        res.add(sub.res)
        res.lut += LOOP_CONTROL_LUT
        res.ff += LOOP_CONTROL_FF
        return _LoopResult(latency, res, True, total, sub.ii, sub.depth, record)

    def _array_recurrence(self, n, lp, lb, u, env, f, body: _Region, trips) -> tuple[int, str]:
        """Longest read-to-write path of an array element that one iteration writes and the next reads."""
        if trips < 2 or not body.array_chains:  # no array value flows from a read to a write of its array
            return 0, ""
        nxt = _Region(env, expand=True)
        nxt.track = True
        for k in range(u):
            nxt.env[lp.iv] = lb + (u + k) * lp.step
            self._run(n.body, nxt, f, [], [], 0)
        worst, name = 0, ""
        for st, load_addr, _, length in nxt.array_chains:
            for st0, addr0 in body.array_stores:
                if st0 is st and (addr0 == load_addr or None in addr0 or None in load_addr) and length > worst:
                    worst, name = length, st.name
        return worst, name


def _propagate(region: _Region, ins, outs, latency: int):
    merged: dict = {}
    for i in ins:
        c = region.chain.get(i)
        if c:
            for src, length in c.items():
                if length + latency > merged.get(src, -1):
                    merged[src] = length + latency
    if merged:
        for o in outs:
            region.chain[o] = merged


def _pipeline_nest(n, trip) -> bool:
    """Is loop node ``n`` a pipelined hardware loop, or a perfect nest around one (so it flattens)?"""
    lp = n.extra
    if lp.unroll is not None and (lp.unroll == 0 or (trip is not None and lp.unroll >= trip)):
        return False
    if lp.ii is not None:
        return True
    return lp.unroll in (None, 1) and len(n.body) == 1 and n.body[0].kind == "for" \
        and _pipeline_nest(n.body[0], n.body[0].extra.static_trip)


# ------------------------------------------------------------------------------------------- entry point
def estimate(schedule, top: str | None = None, clock_mhz: float = 200) -> Estimate:
    """Latency (cycles of one call of ``top``) and resources of a scheduled module; see the module doc.

    ``schedule`` is a Schedule (``allo_ext.customize`` / ``frontend.trace``) or an ``ir.Module`` (then
    ``top`` is required).
    """
    if clock_mhz <= 0:
        raise EstimateError(f"clock_mhz must be positive, got {clock_mhz}")
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
    kernels, total = [], _Res()
    bram_total = 0
    for name in order:
        r = est.results[name]
        g_bram, g_lut = global_bram.get(name, 0), global_lut.get(name, 0)
        k = KernelEstimate(name, calls[name], instances[name], r.cycles, r.ii, r.res.dsp, r.bram + g_bram,
                           r.res.lut + g_lut, r.res.ff, r.dataflow)
        kernels.append(k)
        total.dsp += k.dsp * k.instances
        total.lut += k.lut * k.instances
        total.ff += k.ff * k.instances
        bram_total += k.bram * k.instances
    loops = [lp for (fn, _), lp in est.loops.items() if fn in calls]
    return Estimate(top, clock_mhz, top_res.cycles, top_res.ii if top_res.ii is not None else top_res.cycles,
                    total.dsp, bram_total, total.lut, total.ff, kernels, loops)


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
            instances[callee] += instances[name] * (sites if r.dataflow else 1)
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
