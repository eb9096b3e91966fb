"""ASAP scheduling of loop bodies and functions under port limits, pipelining, unrolling and dataflow."""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from torch_mlir import ir

from .costs import EstimateError, LOOP_CONTROL_FF, LOOP_CONTROL_LUT, LOOP_OVERHEAD, MEM_PORTS, RAM_READ_LATENCY, REG_READ_LATENCY, SCALAR_ACCESS_LATENCY, STORE_LATENCY
from .ir_graph import _FuncIR, _Loop, _Node
from .memory import Storage
from .report import LoopEstimate


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
        if full and lp.tree is not None:
            self._tree_loop(n, lp, trip, lb, region, f, calls, stages, mult)
            return
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

    def _tree_loop(self, n, lp: _Loop, trip, lb, region: _Region, f: _FuncIR, calls, stages, mult):
        """A fully unrolled reduction emitted as ``terms[0] = acc``, ``terms[1 + k] = term_k`` and
        ``acc = allo_tree_sum(terms)``: the bodies as usual, then the tree's adds level by level as the
        C++ helper pairs them (``v[i] += v[i + s]``), so the sum is ceil(log2(trip + 1)) adds deep."""
        tree = lp.tree
        st = f.storage[tree.acc]
        key = ("tree", id(n))
        first = key + (0,)
        region.ready[first] = max(region.floor, region.mem_ready.get((st, ()), 0)) + SCALAR_ACCESS_LATENCY
        if region.track:
            region.chain[first] = (region.scalar_chain.get(st) or {}) if st in region.written \
                else {("s", st): SCALAR_ACCESS_LATENCY}
        terms = [first]
        for k in range(trip):
            region.env[lp.iv] = lb + k * lp.step
            self._run(n.body, region, f, calls, stages, mult)
            t = key + (k + 1,)
            region.ready[t] = region.ready.get(tree.term, region.floor)
            if region.track:
                region.chain[t] = region.chain.get(tree.term, {})
            terms.append(t)
        s = 1
        while s < len(terms):
            for i in range(0, len(terms) - s, 2 * s):
                out = key + ("sum", s, i)
                self._run([_Node("op", "tree add", cost=tree.add, ins=(terms[i], terms[i + s]), outs=(out,))],
                          region, f, calls, stages, mult)
                terms[i] = out
            s *= 2
        self._store(_Node("store", "tree sum", ins=(terms[0], tree.acc), mem=tree.acc, index=lambda env: ()), region, f)

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
