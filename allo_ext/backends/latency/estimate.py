"""The estimate of the latency schedule: an analytical model of the statically scheduled fixed-point
pipeline, computed without da4ml and without any RTL.

``estimate_latency(model, x, precision=...)`` walks the model with the same frontend, lowerings and
kernel bodies as the latency route (``trace.TraceContext`` and ``kernels.py``: which adds, products,
quantisations and table reads the hardware has), but every value is a ``Sig``, this module's own
model of a hardware signal: its value interval and step (hence its width in bits), the time it is
ready (in adder levels) and what made it. Nothing here calls da4ml or reads a simulation.

Hardware model (every constant is a module-level name, pinned in tests/test_latency_estimate.py)
-----------------------------------------------------------------------------------------------
Time is counted in adder levels: one carry-chain adder (or comparator) of the widths here is one
level, ``ADD_LEVELS`` = 1. On UltraScale+ a LUT plus a CARRY8 stage and local routing is about
1 ns and the chain adds about 0.015 ns per bit, so up to ~40 bits the carry term stays inside the
level (``CARRY_NS_PER_BIT`` x width < ``LEVEL_NS`` - ``ADDER_BASE_NS``): widths do not change the count
at 200 MHz. A stage holds ``delay`` levels (5 at 200 MHz, the route's default budget).

- Constant products (weights, the folded BatchNorm scale) are shift-and-add: each constant is written
  in canonical signed digits (CSD); a digit is a shifted copy of the input (wiring), and the digits
  of one output column (all its inputs' digits, for a matrix product) are summed as a balanced tree
  whose pairs are taken by arrival time (the two earliest first). Each adder costs LUTs equal to
  its result width minus the low bits only one operand has (they pass through). Products of one
  input shared across output columns share their partial sums (``CMVM_SHARING``: the fraction of a
  matrix product's adder LUTs that is left after common subexpressions are shared).
- Adding a constant (a bias, a BatchNorm offset, a rounding half) costs ``CONST_ADD_LEVELS`` = 0
  levels (the constant is folded into the LUTs of an adder's chain) and its width in LUTs.
- Activation-activation products (QK^T, AV, the softmax's table products) are DSP48E2 multipliers:
  ``ceil(wide / DSP_A) * ceil(narrow / DSP_B)`` slices, ``dsp_delay`` levels (default 3).
- max/min (the softmax's row maximum, saturation) are a comparator (an adder, 1 level; against a
  constant ``CONST_ADD_LEVELS``) whose sign selects in a mux (``MUX_LEVELS`` = 1 more level,
  ``MUX_LUT_PER_BIT`` LUTs per bit); relu is an AND with the inverted sign, a LUT per bit but the sign.
- Truncation and wrap-around are wiring (no LUT, no level); round-to-nearest adds a constant half.
- A lookup table of a b-bit index and o-bit entries is a distributed ROM: a LUT6 decodes 6 address
  bits, each further bit doubles it behind a mux (``ROM_LUT_BITS`` = 6): ``o * 2**(b - 6)`` LUT6 of raw
  table, of which logic minimisation keeps ``ROM_LOGIC`` (the tables here are smooth functions: exp,
  1/x, log; measured 0.55-0.62 with Yosys/ABC on the softmax kernels), and ``max(b - 6, 1)`` levels,
  not moved to the next stage when they cross a boundary (the route's scheduler lets a table read
  straddle it: its index is registered in front of the table).
- Stage packing: an operation that would cross a stage boundary starts at the next boundary
  (no operation is cut by a register); a value ready at ``t`` levels is in stage ``ceil(t / delay) - 1``.
  The pipeline has ``S`` stages, one more than the stage of the last output; the latency is ``S + 1``
  cycles (the input register, then one register per stage).
- Registers: the input register, then at every stage boundary every value produced before it and
  used after it (the bits read of it, once per boundary it crosses), then the output register. Then
  what synthesis (Yosys ``synth_xilinx``) does with them, each measured on the kernels' Verilog:
  a comparator's register keeps its sign bit (all the mux reads); a table output's register keeps one
  flip-flop per distinct non-constant bit column of the table (constant bits are removed, equal bits
  merged); the register in front of a table's index is moved behind the table (the ROM's read
  register: the table's bits, not the index's); and a run of ``SRL_MIN_LEN`` (3) or more copies of a
  bit that no logic reads between them is a shift register (SRL16E/SRLC32E, ``SRL_MAX_DEPTH`` = 32
  copies each), a LUT, not flip-flops: ``StaticEstimate.srl`` counts them, and ``lut`` includes them
  (they are SLICEM LUTs, as Vivado's "CLB LUTs" count them).

The model is an estimate: the route's matrix-product solver shares partial sums its own way, and
synthesis (Yosys, Vivado) optimises the logic further. tests/test_latency_estimate.py holds it to
15% of the simulated cycles and 30% of Yosys' LUT/FF/DSP (and shift registers) on each kernel it
validates.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

ADD_LEVELS = 1.0
CONST_ADD_LEVELS = 0.0
LEVEL_NS = 1.0
ADDER_BASE_NS = 0.4
CARRY_NS_PER_BIT = 0.015
CMVM_SHARING = 0.6
CMVM_SHARED_DEPTH_FROM = 4  # inputs of one matrix product beyond which sharing deepens its adder graph
MUX_LUT_PER_BIT = 1.0
MUX_LEVELS = 1.0  # a select after a comparator's carry chain: one more LUT level
SRL_MIN_LEN = 3  # Yosys synth_xilinx (xilinx_srl -minlen 3): a chain of >= 3 plain registers is a shift register
SRL_MAX_DEPTH = 32  # one SRLC32E holds 32 of them
ROM_LUT_BITS = 6
ROM_LOGIC = 0.6  # the LUT6s a smooth table (exp, 1/x, log) needs after logic minimisation, per raw LUT6
DSP_A, DSP_B = 27, 18
DEFAULT_DSP_DELAY = 3.0


def bits(lo: float, hi: float, step: float) -> int:
    """Two's complement width of every multiple of ``step`` in [lo, hi] (signed when lo < 0)."""
    if lo == hi == 0:
        return 0
    a, b = round(lo / step), round(hi / step)
    if a >= 0:
        return max(1, math.ceil(math.log2(b + 1)))
    return max(math.ceil(math.log2(-a)), math.ceil(math.log2(b + 1)) if b > 0 else 0) + 1


def csd(c: float) -> list[float]:
    """``c`` as canonical signed digits: a list of +-2**e, the fewest nonzero digits."""
    if c == 0:
        return []
    f = 0
    while c * 2 ** f != math.floor(c * 2 ** f) and f < 80:
        f += 1
    n = int(round(c * 2 ** f))
    out, e = [], 0
    while n:
        if n & 1:
            d = 2 - (n & 3)  # +1 if n = 1 (mod 4), -1 if n = 3 (mod 4)
            out.append(d * 2.0 ** (e - f))
            n -= d
        n >>= 1
        e += 1
    return out


@dataclass
class Ledger:
    """What one estimate has counted so far."""

    delay: float
    dsp_delay: float | None
    lut: float = 0.0
    lut_cmvm: float = 0.0
    lut_rom: float = 0.0
    mul_operand_bits: int = 0
    dsp: int = 0
    adders: int = 0
    tables: int = 0
    nodes: list = field(default_factory=list)

    def pack(self, base: float, d: float) -> float:
        """Ready time of an operation of ``d`` levels whose operands are ready at ``base``."""
        end = base + d
        c = self.delay
        if d > 0 and c > 0 and math.ceil(end / c) > math.ceil(base / c):
            end = math.ceil(base / c) * c + d
        return end

    def stage(self, t: float) -> int:
        """A value ready at ``t`` levels is in stage ``ceil(t / delay) - 1``: one ready exactly at a stage's
        end still belongs to that stage (the register takes it at the clock edge)."""
        return max(math.ceil(t / self.delay) - 1, 0) if self.delay > 0 else 0


class Sig:
    """A signal: the values it can hold (``low``..``high`` in steps of ``step``), its ready time ``latency``
    (adder levels from the input register) and its operands."""

    def __init__(self, L: Ledger, low, high, step, latency, src=()):
        self.L, self.low, self.high, self.step = L, float(low), float(high), float(step)
        self.latency, self.src = float(latency), tuple(s for s in src if isinstance(s, Sig))
        self.width = bits(self.low, self.high, self.step)
        self.muls = max((p.muls for p in self.src), default=0)  # multipliers on the longest path here
        self.op, self.pass_bits, self.shared, self.shift = "wire", 0, False, 0
        self.entries = None  # a table's contents (integers in steps), for its register
        L.nodes.append(self)

    @property
    def lsb(self) -> int:
        return round(math.log2(self.step))

    @property
    def msb(self) -> int:
        return self.lsb + self.width

    # ------------------------------------------------------------------ helpers
    @property
    def kif(self):
        k = int(self.low < 0)
        f = round(-math.log2(self.step))
        return k, self.width - k - f, f

    def _new(self, low, high, step, latency, src):
        if low == high:
            return float(low)
        return Sig(self.L, low, high, step, latency, src)

    def scaled(self, c: float):
        """times a power of two (wiring) or -1 (folded into the consumer as a subtraction)."""
        lo, hi = sorted((self.low * c, self.high * c))
        r = Sig(self.L, lo, hi, self.step * abs(c), self.latency, (self,))
        r.op, r.shift = "shift", round(math.log2(abs(c)))
        return r

    # ------------------------------------------------------------------ adders
    def _add(self, other, sign: float):
        L = self.L
        if isinstance(other, (int, float, np.floating, np.integer)):
            c = float(other) * sign
            if c == 0:
                return self
            cstep = 2.0 ** -_frac(c)
            step = min(self.step, cstep)
            r = self._new(self.low + c, self.high + c, step, L.pack(self.latency, CONST_ADD_LEVELS), (self,))
            if isinstance(r, Sig):  # bits below the constant's lowest digit pass through
                r.op, r.pass_bits = "add", max(0, round(math.log2(cstep / step)))
            return r
        o = other
        lo = self.low + (o.low if sign > 0 else -o.high)
        hi = self.high + (o.high if sign > 0 else -o.low)
        step = min(self.step, o.step)
        L.adders += 1
        r = self._new(lo, hi, step, L.pack(max(self.latency, o.latency), ADD_LEVELS), (self, o))
        if isinstance(r, Sig):  # the low bits only one operand has pass through
            r.op, r.pass_bits = "add", abs(round(math.log2(self.step / o.step)))
        return r

    def __add__(self, o):
        return self._add(o, 1.0)

    def __radd__(self, o):
        return self._add(o, 1.0)

    def __sub__(self, o):
        return self._add(o, -1.0)

    def __rsub__(self, o):
        return (-self)._add(o, 1.0)

    def __neg__(self):
        return self.scaled(-1.0)

    def __mul__(self, c):
        if isinstance(c, Sig):
            return self.model_mul(c)
        c = float(c)
        if c == 0:
            return 0.0
        m, _ = math.frexp(abs(c))
        if m == 0.5:  # a power of two
            return self.scaled(c)
        return cmvm(np.array([self], dtype=object), np.array([[c]]))[0]

    __rmul__ = __mul__

    def model_mul(self, o: "Sig"):
        """An activation-activation product: a DSP48E2 multiplier."""
        L = self.L
        ends = [self.low * o.low, self.low * o.high, self.high * o.low, self.high * o.high]
        a, b = sorted((self.width, o.width), reverse=True)
        L.dsp += math.ceil(a / DSP_A) * math.ceil(b / DSP_B)
        L.mul_operand_bits += a + b
        d = L.dsp_delay if L.dsp_delay is not None else float(b)  # a LUT array: one level per bit
        r = self._new(min(ends), max(ends), self.step * o.step, L.pack(max(self.latency, o.latency), d), (self, o))
        if isinstance(r, Sig):
            r.muls += 1
        return r

    # ------------------------------------------------------------------ compare and select
    def _cmp_mux(self, other, lo, hi):
        """A comparator (a subtraction whose sign is the select: one adder level) then a mux (``MUX_LEVELS``)."""
        L = self.L
        ostep = other.step if isinstance(other, Sig) else self.step
        step = min(self.step, ostep)
        olo, ohi = (other.low, other.high) if isinstance(other, Sig) else (float(other), float(other))
        t = max(self.latency, other.latency if isinstance(other, Sig) else 0.0)
        L.lut += self.width  # the comparator's chain
        L.adders += 1
        lv = ADD_LEVELS if isinstance(other, Sig) else CONST_ADD_LEVELS  # against a constant: folded into LUTs
        c = Sig(L, self.low - ohi, self.high - olo, step, L.pack(t, lv), (self, other))
        c.op = "cmp"  # only its sign is read
        L.lut += MUX_LUT_PER_BIT * bits(lo, hi, step)
        r = self._new(lo, hi, step, L.pack(c.latency, MUX_LEVELS), (c, self, other))
        if isinstance(r, Sig):
            r.op = "mux"
        return r

    def max_of(self, o):
        olo, ohi = (o.low, o.high) if isinstance(o, Sig) else (float(o), float(o))
        if self.low >= ohi:
            return self
        if self.high <= olo:
            return o
        if olo == ohi == 0:
            return self.relu()
        return self._cmp_mux(o, max(self.low, olo), max(self.high, ohi))

    def min_of(self, o):
        olo, ohi = (o.low, o.high) if isinstance(o, Sig) else (float(o), float(o))
        if self.high <= olo:
            return self
        if self.low >= ohi:
            return o
        return self._cmp_mux(o, min(self.low, olo), min(self.high, ohi))

    def relu(self):
        if self.low >= 0:
            return self
        if self.high <= 0:
            return 0.0
        self.L.lut += self.width - 1  # an AND with the inverted sign per bit; the sign bit becomes 0
        return self._new(0.0, self.high, self.step, self.latency, (self,))

    # ------------------------------------------------------------------ quantisation
    def quantize(self, k, i, f, overflow_mode="WRAP", round_mode="TRN"):
        k, i, f = int(k), int(i), int(f)
        if k + i + f <= 0:
            return 0.0
        step = 2.0 ** -f
        v = self
        if step > v.step and round_mode == "RND":
            v = v + step / 2
            if not isinstance(v, Sig):
                return _const_q(v, k, i, f, overflow_mode)
        lo_t, hi_t = -k * 2.0 ** i, 2.0 ** i - step
        if overflow_mode in ("SAT", "SAT_SYM"):
            if overflow_mode == "SAT_SYM":
                lo_t = -hi_t * k
            if v.low < lo_t:
                v = v.max_of(lo_t)
            if isinstance(v, Sig) and v.high > hi_t:
                v = v.min_of(hi_t)
            if not isinstance(v, Sig):
                return _const_q(v, k, i, f, "WRAP")
        step = max(step, v.step)
        lo, hi = math.floor(v.low / step) * step, math.floor(v.high / step) * step
        if lo < lo_t or hi > hi_t:
            lo, hi = lo_t, hi_t  # wraps: any value of the type
        if (lo, hi, step) == (v.low, v.high, v.step):
            return v
        r = v._new(lo, hi, step, v.latency, (v,))
        if isinstance(r, Sig):
            r.op = "quantize"  # wiring: the source bits above this value's MSB are never read
        return r

    # ------------------------------------------------------------------ tables
    def lookup(self, table):
        L = self.L
        vals = np.asarray(table, dtype=np.float64)
        b_in = self.width
        step = min((2.0 ** -_frac(float(x)) for x in vals), default=1.0)
        b_out = bits(float(vals.min()), float(vals.max()), step)
        rom = ROM_LOGIC * b_out * 2 ** max(b_in - ROM_LUT_BITS, 0)
        L.lut += rom
        L.lut_rom += rom
        L.tables += 1
        # not packed: the route lets a table read straddle a stage boundary (its index is then registered in
        # front of the table, where synthesis moves the register behind it, see _registers)
        r = self._new(float(vals.min()), float(vals.max()), step, self.latency + max(b_in - ROM_LUT_BITS, 1), (self,))
        if isinstance(r, Sig):
            r.op, r.entries = "lookup", np.round(vals / step).astype(np.int64)
        return r

    def register_bits(self, kept: int) -> int:
        """Flip-flops a register of this value's ``kept`` low bits needs after synthesis. A comparator's
        register holds its sign (all the mux reads). A table's output bits are functions of its index that
        Yosys knows whole: a bit equal in every entry is a constant (opt_dff removes its flip-flop) and
        bits equal to each other in every entry are one function (opt_merge keeps one flip-flop), so the
        register has one flip-flop per distinct non-constant bit column of the table."""
        if self.op == "cmp":
            return min(kept, 1)
        if self.op == "lookup" and kept > 0:
            e = self.entries & ((1 << kept) - 1)  # two's complement, the kept low bits
            cols = {tuple(((e >> b) & 1).tolist()) for b in range(kept)}
            return sum(1 for c in cols if 0 in c and 1 in c)
        return kept


def _frac(c: float) -> int:
    f = 0
    while c * 2 ** f != math.floor(c * 2 ** f) and f < 80:
        f += 1
    return f


def _const_q(c: float, k, i, f, overflow_mode):
    from ...lang import fixed as fx
    from ...lang.types import Fixed, UFixed

    t = (Fixed if k else UFixed)(k + i + f, f, o=overflow_mode)
    return float(fx.dequantize(fx.quantize(np.float64(c), t), t))


def is_model(values) -> bool:
    return any(isinstance(v, Sig) for v in np.asarray(values, dtype=object).ravel())


def _tree(terms: list):
    """Sum of ``terms`` as adders paired by arrival time (the two earliest first)."""
    consts = sum(float(t) for t in terms if not isinstance(t, Sig))
    sigs = sorted((t for t in terms if isinstance(t, Sig)), key=lambda s: s.latency)
    if not sigs:
        return consts
    while len(sigs) > 1:
        a, b = sigs.pop(0), sigs.pop(0)
        s = a + b
        if not isinstance(s, Sig):
            consts += s
            continue
        # keep the list ordered by ready time
        pos = next((n for n, x in enumerate(sigs) if x.latency > s.latency), len(sigs))
        sigs.insert(pos, s)
    return sigs[0] + consts if consts != 0 else sigs[0]


def shared_depth(k: int) -> int:
    """Adder levels that sharing partial sums across ``k`` inputs adds to a matrix product's tree: a sum
    shared by several columns is built first and joins each column's tree later, about one level per
    doubling of the inputs past ``CMVM_SHARED_DEPTH_FROM`` (fitted on linears of 3 to 32 inputs)."""
    if k <= CMVM_SHARED_DEPTH_FROM:
        return 0
    return math.ceil(math.log2(k / CMVM_SHARED_DEPTH_FROM))


def cmvm(row, w: np.ndarray) -> np.ndarray:
    """``row @ w`` with constant ``w``: per output column the CSD digits of all its inputs, summed as a
    tree; the adders' LUTs are scaled by ``CMVM_SHARING`` (partial sums shared across columns)."""
    row = np.asarray(row, dtype=object)
    w = np.asarray(w, dtype=np.float64)
    L = next(v.L for v in row if isinstance(v, Sig))
    first = len(L.nodes)
    out = np.empty(w.shape[1], dtype=object)
    extra = shared_depth(sum(isinstance(x, Sig) for x in row))
    if extra:  # one level of pairs shared by several columns comes first: the columns' trees start after it
        row = np.array([Sig(L, x.low, x.high, x.step, L.pack(x.latency, 1), (x,)) if isinstance(x, Sig) else x
                        for x in row], dtype=object)
    for n in range(w.shape[1]):
        terms = []
        for k, x in enumerate(row):
            c = float(w[k, n])
            if c == 0:
                continue
            if not isinstance(x, Sig):
                terms.append(float(x) * c)
                continue
            terms.extend(x.scaled(d) for d in csd(c))
        out[n] = _tree(terms) if terms else 0.0
    if extra > 1:  # and a column's last adders wait for the deeper sums it shares
        for n, v in enumerate(out):
            if isinstance(v, Sig):
                out[n] = Sig(L, v.low, v.high, v.step, L.pack(v.latency, extra - 1), (v,))
    if w.shape[1] > 1 or w.shape[0] > 1:
        for v in L.nodes[first:]:
            v.shared = True
    return out


# ---------------------------------------------------------------------------------------- the report
@dataclass
class StaticEstimate:
    cycles: int
    stages: int
    ii: int
    lut: int
    ff: int
    dsp: int
    adders: int
    tables: int
    delay: float
    clock_ns: float
    depth: float = 0.0  # adder levels from the input register to the last output, stages packed
    reuse_factor: int = 1
    multiplier_chain: int = 0  # multipliers in series on the longest path (each waits R cycles when shared)
    mul_operand_bits: int = 0
    srl: int = 0  # shift-register LUTs (SRL16E/SRLC32E) holding register runs; also counted in ``lut``

    def with_reuse(self, R: int) -> "StaticEstimate":
        """This design (estimated at reuse factor 1) with each DSP multiplier shared by R products; see
        ``estimate_graph``."""
        import dataclasses

        if self.reuse_factor != 1:
            raise ValueError("with_reuse applies to an estimate made at reuse_factor=1")
        if not (isinstance(R, int) and R >= 1):
            raise ValueError(f"reuse_factor must be an integer >= 1, got {R!r}")
        if not self.dsp:
            return dataclasses.replace(self, reuse_factor=R)
        mux = MUX_LUT_PER_BIT * self.mul_operand_bits * (R - 1) / R
        return dataclasses.replace(self, cycles=self.cycles + (R - 1) * self.multiplier_chain, ii=R,
                                   lut=int(round(self.lut + mux)), dsp=int(math.ceil(self.dsp / R)), reuse_factor=R)

    @property
    def latency_ns(self) -> float:
        return self.cycles * self.clock_ns

    def report(self) -> dict:
        return {"cycles": self.cycles, "stages": self.stages, "ii": self.ii, "lut": self.lut, "ff": self.ff,
                "dsp": self.dsp, "srl": self.srl, "adders": self.adders, "tables": self.tables, "delay": self.delay,
                "latency_ns": self.latency_ns, "reuse_factor": self.reuse_factor,
                "multiplier_chain": self.multiplier_chain}


def _trim(L: Ledger, outputs: list) -> dict:
    """The bits of each value that something reads (synthesis removes the rest): an adder's or a shift's
    low result bits depend only on its operands' low bits, and a wrap-around keeps only its own; every
    other consumer reads its operand whole. Returns id -> bits kept, and adds the adders' LUTs."""
    need: dict[int, int] = {id(o): o.msb for o in outputs}
    kept: dict[int, int] = {}
    for v in reversed(L.nodes):
        top = min(v.msb, need.get(id(v), v.lsb))
        kept[id(v)] = max(top - v.lsb, 0)
        for p in v.src:
            if v.op == "add":
                want = top
            elif v.op == "shift":
                want = top - v.shift
            elif v.op == "quantize":
                want = min(top, v.msb)
            else:
                want = p.msb
            need[id(p)] = max(need.get(id(p), p.lsb), min(want, p.msb))
        if v.op == "add" and kept[id(v)] > 0:
            lut = max(kept[id(v)] - v.pass_bits, 1) * (CMVM_SHARING if v.shared else 1.0)
            L.lut += lut
            if v.shared:
                L.lut_cmvm += lut
    return kept


def register_chain(first: int, last: int, read_at, width: int) -> tuple[int, int]:
    """(flip-flops, shift-register LUTs) of a ``width``-bit value held at the stage boundaries
    ``first..last`` and read by logic at the boundaries in ``read_at``: a copy read by logic (or the last)
    ends a run; a run of ``SRL_MIN_LEN`` copies or more is one SRL per bit and ``SRL_MAX_DEPTH`` copies."""
    ff = srl = run = 0
    for b in range(first, last + 1):
        run += 1
        if b in read_at or b == last:
            if run >= SRL_MIN_LEN:
                srl += width * math.ceil(run / SRL_MAX_DEPTH)
            else:
                ff += width * run
            run = 0
    return ff, srl


def _registers(L: Ledger, inputs: list, outputs: list, stages: int, kept: dict) -> tuple[int, int]:
    """(flip-flops, shift-register LUTs) of the pipeline registers after synthesis.

    A value ready in stage ``s`` and read in stages ``r1 < ... < u`` is held by one register per stage
    boundary ``s + 1 .. u`` (an input from boundary 0, the input register; an output up to boundary
    ``stages``, the output register); a reader in stage ``k`` reads the copy at boundary ``k``. Each register
    holds the bits read of the value (``_trim``, ``Sig.register_bits``). A shifted copy (a CSD digit, a
    power-of-two scale) is wiring off its source's register. What synthesis then does with them:
    - a run of ``SRL_MIN_LEN`` or more copies that nothing reads but the next copy is one shift register
      per bit (``SRL_MAX_DEPTH`` deep), a LUT, not flip-flops (Yosys' xilinx_srl; ``StaticEstimate.srl``);
    - the register in front of a table's index is moved behind the table (Yosys' memory_dff makes it the
      ROM's read register): it holds the table's output bits, and the index's copy goes where the table was
      its only reader."""
    reads: dict[int, set] = {}
    readers: dict[int, list] = {}
    for s in L.nodes:
        st = L.stage(s.latency)
        for p in s.src:
            reads.setdefault(id(p), set()).add(st)
            readers.setdefault(id(p), []).append(s)
    for o in outputs:
        reads.setdefault(id(o), set()).add(stages)
    for s in reversed(L.nodes):  # a shifted copy is read where its readers are
        if s.op == "shift" and id(s) in reads:
            for p in s.src:
                reads.setdefault(id(p), set()).update(reads[id(s)])
    first: dict[int, int] = {id(s): 0 for s in inputs}  # the first boundary of each value's register chain
    dropped: dict[int, int] = {}  # index value -> the boundary whose copy moved behind its tables
    for s in L.nodes:
        if s.op != "lookup":
            continue
        idx, k = s.src[0], L.stage(s.latency)
        b0 = first.get(id(idx), L.stage(idx.latency) + 1)
        if b0 <= k and id(s) in reads:
            first[id(s)] = k  # the ROM's read register
            others = [n for n in readers[id(idx)] if L.stage(n.latency) >= k and n.op != "lookup"]
            if not others and max(reads.get(id(idx), {k})) == k:
                dropped[id(idx)] = k
    ff = srl = 0
    for s in L.nodes:  # the inputs among them
        r = reads.get(id(s))
        if not r or s.op == "shift":
            continue
        b0 = first.get(id(s), L.stage(s.latency) + 1)
        u = max(r) if id(s) not in dropped else dropped[id(s)] - 1
        if u < b0:
            continue
        f, r_ = register_chain(b0, u, r, s.register_bits(kept.get(id(s), s.width)))
        ff, srl = ff + f, srl + r_
    return ff, srl


def estimate_graph(ep, precision, delay: float = 5.0, dsp_delay: float | None = DEFAULT_DSP_DELAY,
                   clock_ns: float = 5.0, reuse_factor: int = 1) -> StaticEstimate:
    """The model of the route's pipeline for the exported program ``ep``; see the module doc.

    ``reuse_factor`` R (hls4ml's name) is modelled here only, since the route (da4ml) does not time-share:
    each DSP multiplier serves R products in turn, so DSPs are ``ceil(dsp / R)``, a new item enters
    every R clocks (II = R), every multiplier in series on the longest path waits R - 1 more cycles, and
    each shared multiplier's operands come through R:1 muxes (``MUX_LUT_PER_BIT`` per operand bit and
    extra input). Constant products (distributed arithmetic, LUTs) stay fully parallel."""
    from ...frontend.static_import import StaticGraphImporter
    from ...lang.values import Buffer
    from . import fixed as F
    from .errors import StaticLoweringError
    from .trace import TraceContext

    if precision is None:
        raise StaticLoweringError("estimate(schedule='latency') needs a fixed-point precision= (e.g. "
                                  "'ap_fixed<16,6>'): the static pipeline is fixed point only")
    if not (isinstance(reuse_factor, int) and reuse_factor >= 1):
        raise StaticLoweringError(f"estimate(schedule='latency'): reuse_factor must be an integer >= 1, got "
                                  f"{reuse_factor!r}")
    if not (isinstance(delay, (int, float)) and delay > 0):
        raise StaticLoweringError(f"estimate(schedule='latency'): delay must be a positive number of adder levels "
                                  f"per stage, got {delay!r}")
    L = Ledger(float(delay), dsp_delay)

    class ModelContext(TraceContext):
        def input(self, name, t):
            F.check_type(t.dtype, f"input '{name}'")
            k, i, f = F.kif(t.dtype)
            lo, hi = -k * 2.0 ** i, 2.0 ** i - 2.0 ** -f
            vals = np.empty(tuple(t.shape), dtype=object)
            for idx in np.ndindex(vals.shape):
                vals[idx] = Sig(L, lo, hi, 2.0 ** -f, 0.0)
            return Buffer(vals, t, name)

    graph = StaticGraphImporter(ep, lambda p: ModelContext(p, None), precision=precision).run()
    ins = [v for b in graph.inputs for v in np.asarray(b.value, dtype=object).ravel() if isinstance(v, Sig)]
    outs = [v for b in graph.outputs for v in np.asarray(b.value, dtype=object).ravel() if isinstance(v, Sig)]
    t_end = max((o.latency for o in outs), default=0.0)
    stages = L.stage(t_end) + 1
    kept = _trim(L, outs)
    ff, srl = _registers(L, ins, outs, stages, kept)
    chain = max((o.muls for o in outs), default=0)
    base = StaticEstimate(cycles=stages + 1, stages=stages, ii=1, lut=int(round(L.lut)) + srl, ff=int(ff), dsp=int(L.dsp),
                          adders=L.adders, tables=L.tables, delay=float(delay), clock_ns=float(clock_ns),
                          depth=t_end, multiplier_chain=chain, mul_operand_bits=L.mul_operand_bits, srl=int(srl))
    return base.with_reuse(reuse_factor) if reuse_factor != 1 else base
