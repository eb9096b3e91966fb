"""The scheduled IR as the estimator sees it: affine maps compiled to Python, loop bodies as op nodes."""
from __future__ import annotations

import math

from torch_mlir import ir

from ..loop_info import loop_name, trip_count
from ..reduction_tree import find_reduction
from .costs import EstimateError, FREE, OpCost, RAM_READ_LATENCY, STORE_LATENCY, _NO_TIME, op_cost
from .memory import Storage, _elem_bits, _partition_specs, _spec_for


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
    __slots__ = ("name", "op", "iv", "lb", "ub", "step", "static_trip", "ii", "unroll", "tree")


class _Tree:
    """A fully unrolled reduction the C++ sums as a balanced tree (``allo_ext.passes.reduction_tree``):
    the body computes ``term`` (rounded into the accumulator type) each iteration; the tree's adds cost
    ``add`` each (accumulator-wide operands); the sum is stored into the scalar ``acc``."""
    __slots__ = ("acc", "term", "add")

    def __init__(self, acc, term, add):
        self.acc, self.term, self.add = acc, term, add


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
        self._tree_ops: dict = {}  # op hash -> Reduction, for the ops an adder tree replaces
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
        red = self._tree_ops.get(hash(o))
        if red is not None:
            # the read of acc, the add and the store of the sum move to the tree (see _Estimator._tree_loop);
            # the cast stays in the body, rounding the term alone
            if o == red.cast:
                kind, t = _fixed_cast_kind(o)
                return _Node("op", kind, cost=op_cost(kind, t), ins=[self.vid(red.term)], outs=[self.vid(o.results[0])])
            return None
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
        if name == "allo.fixed_cast":
            name, t = _fixed_cast_kind(o)
        widths = [self._source_width(v) for v in o.operands] if name in ("arith.muli", "allo.fixed_mul") else ()
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
        lp.tree = None
        red = find_reduction(o)
        if red is not None and red.tree:
            for op in (red.load, red.add, red.cast, red.store):
                if op is not None:
                    self._tree_ops[hash(op)] = red
            acc_t = red.acc.type.element_type
            wide = ir.IntegerType.get_signless(_elem_bits(acc_t) + 1)
            add = op_cost("allo.fixed_add", wide) if red.cast is not None else op_cost("arith.addi", acc_t)
            term = red.cast.results[0] if red.cast is not None else red.term
            lp.tree = _Tree(self.vid(red.acc), self.vid(term), add)
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


def _fixed_cast_kind(o):
    """The cost class of an ``allo.fixed_cast``: a float conversion, a rounding/saturating cast, or wires."""
    src, dst = o.operands[0].type, o.results[0].type
    if isinstance(src, ir.FloatType):
        return "arith.fptosi", src
    if isinstance(dst, ir.FloatType):
        return "arith.sitofp", dst
    spec = ir.StringAttr(o.attributes["type"]).value if "type" in o.attributes else ""
    modes = spec.rstrip(">").split(",")[2:]  # sfixed<bits,frac,Q,O>; integers have no modes
    if modes and tuple(modes) != ("TRN", "WRAP"):
        return "allo.fixed_cast_round", dst
    return "allo.fixed_cast", dst
