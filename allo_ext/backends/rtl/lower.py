"""Stage A of the RTL route, in torch-mlir's context: our module -> cf-level integer MLIR text.

CIRCT's handshake flow (stage B, ``circt_stage.py``) accepts only integer ``func``/``cf``/``arith``/
``memref`` code with 1-D memrefs and no ``memref.get_global``; the circt wheel has neither affine
nor scf-to-cf, so everything up to cf happens here (shared/notes/rtl-recipes.md, "Verified on
allo_ext's own IR"). The rewrites written by hand below have no upstream pass that fits:
- ``flatten-memref`` emits ``memref.reinterpret_cast``, which lower-cf-to-handshake rejects;
- ``maxsi``/``minsi`` are not legal for handshake, and canonicalize folds expanded forms back;
- CIRCT lowers ``divsi``/``remsi`` to unsigned operators: wrong for negative operands;
- 64-bit ``index`` datapaths cost 2.4x the LUTs and 3.6x the FFs of narrow counters.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
from torch_mlir import ir, passmanager
from torch_mlir.dialects import arith, memref

from ...lang.errors import AlloError
from ...lang.types import ArrayType, DType
from ..llvm import _apply_unroll

try:  # the fixed-point lowering shared with target="llvm" (helper `fixed`, landing in parallel)
    from ...passes.fixed_to_int import fixed_to_int
except ImportError:  # pragma: no cover - until it lands, fixed kernels are refused by _check_types
    fixed_to_int = None

PREPARE = ("builtin.module(inline,symbol-dce,buffer-results-to-out-params{modify-public-functions=1 "
           "hoist-static-allocs=1},canonicalize)")
TO_CF = ("builtin.module(lower-affine,convert-scf-to-cf,func.func(mem2reg),arith-expand,canonicalize,cse,"
         "symbol-dce)")


@dataclass
class Port:
    """One memory of the top function, as the testbench sees it."""

    name: str
    dtype: DType
    shape: tuple
    role: str  # "in", "out" or "rom"
    data: np.ndarray | None = None  # contents of a ROM (a constant global turned into a port)
    hw_index: int | None = None  # the design's memory port group in<k>; None if the design never accesses it
    width: int | None = None  # element bits when they differ from dtype's (ROMs of odd widths)

    @property
    def is_array(self) -> bool:
        return True

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def bits(self) -> int:
        return self.width or self.dtype.storage_bits


@dataclass
class Lowered:
    top: str
    text: str  # cf-level MLIR, ready for CIRCT's parser
    ports: list[Port] = field(default_factory=list)
    index_bits: int = 64


def _run(module, pipeline: str, what: str, top: str):
    try:
        passmanager.PassManager.parse(pipeline).run(module.operation)
    except ir.MLIRError as e:
        raise AlloError(f"rtl: stage A ({what}) failed on kernel '{top}': {e}") from e


def _is(cls, t) -> bool:
    return isinstance(t, cls) or t.typeid == cls.static_typeid


def _walk(op, names=None) -> list:
    out = []

    def cb(o):
        if names is None or o.name in names:
            out.append(o)
        return ir.WalkResult.ADVANCE

    op.walk(cb)
    return out


def _funcs(module) -> list:
    return [op.operation for op in module.body.operations if op.operation.name == "func.func"]


def _top_func(module, top: str):
    for f in _funcs(module):
        if ir.StringAttr(f.attributes["sym_name"]).value == top:
            return f
    raise AlloError(f"rtl: top function '{top}' not found after lowering")


def _check_types(schedule):
    """Refuse float kernels up front: CIRCT segfaults or rejects them much later."""
    names, arg_types, res_types = schedule.mb.signatures[schedule.top]
    for n, t in list(zip(names, arg_types)) + [(f"result {k}", t) for k, t in enumerate(res_types)]:
        dt = t.dtype if isinstance(t, ArrayType) else t
        if dt.is_float:
            raise AlloError(
                f"rtl: kernel '{schedule.top}' has a floating-point {('argument ' + repr(n)) if not n.startswith('result') else n} "
                f"({t}); target='rtl' builds integer and fixed-point hardware only. Write the kernel with int or "
                f"Fixed types, or compile a torch model with precision= (e.g. from_pytorch(..., target='rtl', "
                f"precision='ap_fixed<16,6>')).")
        if dt.is_fixed and fixed_to_int is None:
            raise AlloError(f"rtl: kernel '{schedule.top}' uses fixed point ({t}), but this installation has no "
                            "fixed-point lowering (allo_ext.passes.fixed_to_int)")
        if not isinstance(t, ArrayType):
            raise AlloError(f"rtl: kernel '{schedule.top}': scalar {n} ({t}) is not supported yet; "
                            "pass it as a one-element array")


def _check_body(func, top: str):
    """No float value may reach CIRCT (it segfaults on arith.mulf): name the first op that makes one."""
    for op in _walk(func):
        for v in list(op.results) + list(op.operands):
            t = v.type
            if isinstance(t, ir.MemRefType) or _is(ir.MemRefType, t):
                t = ir.MemRefType(t).element_type
            if isinstance(t, ir.FloatType) or str(t) in ("f16", "bf16", "f32", "f64"):
                raise AlloError(
                    f"rtl: kernel '{top}' computes in floating point ({op.name} on {t}); target='rtl' builds "
                    "integer and fixed-point hardware only: use int or Fixed types in the kernel, or compile a "
                    "torch model with precision= (e.g. precision='ap_fixed<16,6>').")


# ---------------------------------------------------------------------- memref.copy -> loops
def _copies_to_loops(func):
    from torch_mlir.dialects import affine

    for op in _walk(func, {"memref.copy"}):
        src, dst = op.operands[0], op.operands[1]
        shape = ir.MemRefType(src.type).shape
        with op.location, ir.InsertionPoint(op):
            ivs = []
            ip = ir.InsertionPoint(op)
            for d in shape:
                with ip:
                    lp = affine.AffineForOp(0, d, 1)
                    with ir.InsertionPoint(lp.body):
                        affine.AffineYieldOp([])
                ip = ir.InsertionPoint(list(lp.body.operations)[-1])
                ivs.append(lp.induction_variable)
            with ip:
                v = memref.load(src, ivs)
                memref.store(v, dst, ivs)
        op.erase()


# ---------------------------------------------------------------------- constant globals -> ROM ports
def _globals_to_ports(module, func) -> list[tuple[str, np.ndarray, int]]:
    """Every ``memref.get_global`` becomes a new memref argument (get_global crashes lower-cf-to-handshake)."""
    globals_ = {}
    for op in module.body.operations:
        if op.operation.name == "memref.global":
            globals_[ir.StringAttr(op.attributes["sym_name"]).value] = op.operation
    block = func.regions[0].blocks[0]
    roms, by_sym = [], {}
    for op in _walk(func, {"memref.get_global"}):
        sym = ir.FlatSymbolRefAttr(op.attributes["name"]).value
        if sym not in by_sym:
            g = globals_[sym]
            if "initial_value" not in g.attributes or "constant" not in g.attributes:
                raise AlloError(f"rtl: global '{sym}' is not a constant with an initial value; only constant "
                                "tables can become ROM ports")
            mt = ir.MemRefType(op.results[0].type)
            data = _global_values(g.attributes["initial_value"], tuple(mt.shape), mt.element_type, sym)
            by_sym[sym] = block.add_argument(op.results[0].type, op.location)
            roms.append((sym, data, ir.IntegerType(mt.element_type).width))
        op.results[0].replace_all_uses_with(by_sym[sym])
        op.erase()
    if roms:
        ft = ir.FunctionType(ir.TypeAttr(func.attributes["function_type"]).value)
        new = ir.FunctionType.get(list(ft.inputs) + [a.type for a in list(block.arguments)[len(ft.inputs):]],
                                  list(ft.results))
        func.attributes["function_type"] = ir.TypeAttr.get(new)
    return roms


def _global_values(attr, shape: tuple, elem, sym: str) -> np.ndarray:
    """The integers of a constant global as int64. The Python bindings' buffer view only knows the
    widths 8/16/32/64 (fixed-point tables are i13, i15, ...), so odd widths are read from the
    attribute's text: a hex blob of little-endian elements of ceil(bits/8) bytes, an element list,
    or a splat."""
    if not isinstance(elem, ir.IntegerType) and "IntegerType" not in type(elem).__name__:
        elem = ir.IntegerType(elem)
    bits = elem.width
    if bits in (8, 16, 32, 64):
        data = np.array(ir.DenseElementsAttr(attr)).astype(np.int64)
        return np.broadcast_to(data, shape).copy() if data.shape != shape else data
    text = str(attr)
    n = int(np.prod(shape, dtype=np.int64)) if shape else 1
    m = re.match(r'dense<"0x([0-9A-Fa-f]*)">', text)
    if m:
        raw = bytes.fromhex(m.group(1))
        width = (bits + 7) // 8
        vals = [int.from_bytes(raw[i:i + width], "little") for i in range(0, len(raw), width)]
    else:
        m = re.match(r"dense<(.*)>\s*:", text, re.S)
        if not m:
            raise AlloError(f"rtl: cannot read the initial value of global '{sym}': {text[:200]}")
        body = m.group(1).replace("true", "1").replace("false", "0")
        vals = [int(v) for v in re.findall(r"-?\d+", body)]
    if len(vals) == 1 and n > 1:
        vals = vals * n
    if len(vals) != n:
        raise AlloError(f"rtl: global '{sym}' holds {len(vals)} values for shape {shape}")
    mask = (1 << bits) - 1
    vals = [v & mask for v in vals]
    vals = [v - (1 << bits) if bits > 1 and v >> (bits - 1) else v for v in vals]  # as signed, for clarity
    return np.array(vals, dtype=np.int64).reshape(shape)


# ---------------------------------------------------------------------- N-D memrefs -> 1-D
def _strides(shape) -> list[int]:
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= d
    return list(reversed(out))


def _flatten_memrefs(func):
    """Every memref of rank >= 2 becomes 1-D; affine maps are linearised, memref.load/store indices
    combined with index arithmetic. Types are changed in place, so every user sees the new type."""
    values = [a for a in func.regions[0].blocks[0].arguments]
    for op in _walk(func, {"memref.alloc", "memref.alloca"}):
        values.append(op.results[0])
    for v in values:
        t = v.type
        if not _is(ir.MemRefType, t):
            continue
        mt = ir.MemRefType(t)
        if mt.rank < 2:
            continue
        shape = list(mt.shape)
        strides = _strides(shape)
        for use in list(v.uses):
            user = use.owner
            name = user.name
            if name in ("affine.load", "affine.store"):
                m = ir.AffineMapAttr(user.attributes["map"]).value
                expr = None
                for e, s in zip(m.results, strides):
                    term = e * s if s != 1 else e
                    expr = term if expr is None else expr + term
                user.attributes["map"] = ir.AffineMapAttr.get(ir.AffineMap.get(m.n_dims, m.n_symbols, [expr]))
            elif name in ("memref.load", "memref.store"):
                ops = list(user.operands)
                first = 1 if name == "memref.load" else 2
                idx = ops[first:]
                with user.location, ir.InsertionPoint(user):
                    lin = None
                    for i, s in zip(idx, strides):
                        term = i if s == 1 else arith.muli(i, arith.constant(ir.IndexType.get(), s))
                        lin = term if lin is None else arith.addi(lin, term)
                    if name == "memref.load":
                        new = memref.load(v, [lin])
                        user.results[0].replace_all_uses_with(new)
                    else:
                        memref.store(ops[0], v, [lin])
                user.erase()
            elif name in ("func.return", "memref.dealloc"):
                pass
            else:
                raise AlloError(f"rtl: cannot flatten memref {mt} used by '{name}' (supported: affine/memref "
                                "load and store)")
        v.set_type(ir.MemRefType.get([int(np.prod(shape))], mt.element_type))
    ft = ir.FunctionType(ir.TypeAttr(func.attributes["function_type"]).value)
    block = func.regions[0].blocks[0]
    func.attributes["function_type"] = ir.TypeAttr.get(
        ir.FunctionType.get([a.type for a in block.arguments], list(ft.results)))


# ---------------------------------------------------------------------- one port per memory argument
_ACCESS = ("affine.load", "affine.store", "memref.load", "memref.store")


def _one_port_per_argument(func, roles: list[str]):
    """A memref argument accessed by more than one load/store, placed before another memref
    argument, makes handshake-lower-extmem-to-hw build a broken function (null types, or "block
    argument is not used by an extmemory"; llvm/circt#9807). Such an argument gets a local copy:
    inputs are copied in by one loop, outputs copied out by one loop at the end, so the argument
    itself has exactly one port; the local buffer (an on-chip memory) takes the many ports.
    The last memref argument is exempt: the bug needs a later one."""
    from torch_mlir.dialects import affine

    block = func.regions[0].blocks[0]
    args = [a for a in block.arguments if _is(ir.MemRefType, a.type)]
    ret = list(block.operations)[-1]
    for k, a in enumerate(args[:-1]):
        users = [u.owner for u in a.uses]
        if sum(u.name in _ACCESS for u in users) <= 1:
            continue
        mt = ir.MemRefType(a.type)
        first = list(block.operations)[0]
        with ir.Location.unknown():
            with ir.InsertionPoint(first):
                buf = memref.alloc(mt, [], [])
            a.replace_all_uses_with(buf)
            n = mt.shape[0]
            if roles[k] == "out":
                ip = ir.InsertionPoint(ret)
                src, dst = buf, a
            else:
                ip = ir.InsertionPoint(first)
                src, dst = a, buf
            with ip:
                lp = affine.AffineForOp(0, n, 1)
                with ir.InsertionPoint(lp.body):
                    v = memref.load(src, [lp.induction_variable])
                    memref.store(v, dst, [lp.induction_variable])
                    affine.AffineYieldOp([])
            if roles[k] != "out":
                # the alloc must dominate the copy loop
                buf.owner.move_before(lp.operation)


# ---------------------------------------------------------------------- after cf: expansions
def _expand_minmax_div(func):
    preds = {"arith.maxsi": 4, "arith.minsi": 2, "arith.maxui": 8, "arith.minui": 6}  # sgt, slt, ugt, ult
    for op in _walk(func, set(preds) | {"arith.divsi", "arith.remsi", "math.absi"}):
        with op.location, ir.InsertionPoint(op):
            a = op.operands[0]
            t = a.type
            if op.name in preds:
                b = op.operands[1]
                c = arith.cmpi(ir.IntegerAttr.get(ir.IntegerType.get_signless(64), preds[op.name]), a, b)
                r = arith.select(c, a, b)
            else:
                zero = arith.constant(t, 0)
                a_neg = arith.cmpi(ir.IntegerAttr.get(ir.IntegerType.get_signless(64), 2), a, zero)  # slt
                a_mag = arith.select(a_neg, arith.subi(zero, a), a)
                if op.name == "math.absi":
                    r = a_mag
                else:
                    b = op.operands[1]
                    b_neg = arith.cmpi(ir.IntegerAttr.get(ir.IntegerType.get_signless(64), 2), b, zero)
                    b_mag = arith.select(b_neg, arith.subi(zero, b), b)
                    if op.name == "arith.divsi":
                        q = arith.divui(a_mag, b_mag)
                        neg = arith.xori(a_neg, b_neg)
                    else:  # the remainder takes the dividend's sign
                        q = arith.remui(a_mag, b_mag)
                        neg = a_neg
                    r = arith.select(neg, arith.subi(zero, q), q)
            op.results[0].replace_all_uses_with(r)
        op.erase()


def _index_bits(func) -> int:
    """Bits for every index value: signed, with 4x headroom over the largest memref size or
    index constant (affine code adds and scales indices below those bounds)."""
    biggest = 1
    for v in list(func.regions[0].blocks[0].arguments) + [o.results[0] for o in _walk(func, {"memref.alloc",
                                                                                               "memref.alloca"})]:
        if _is(ir.MemRefType, v.type):
            biggest = max(biggest, int(np.prod(ir.MemRefType(v.type).shape or [1])))
    for op in _walk(func, {"arith.constant"}):
        if _is(ir.IndexType, op.results[0].type):
            biggest = max(biggest, abs(ir.IntegerAttr(op.attributes["value"]).value))
    return max(8, (4 * biggest).bit_length() + 1)


def _narrow_index(func, bits: int):
    """Every index value becomes i<bits>; memory accesses get an index_cast at the use."""
    it = ir.IntegerType.get_signless(bits)
    idx = ir.IndexType.get()
    for block in _blocks(func):
        for a in block.arguments:
            if _is(ir.IndexType, a.type):
                a.set_type(it)
    for op in _walk(func):
        name = op.name
        if name == "arith.constant" and _is(ir.IndexType, op.results[0].type):
            with op.location, ir.InsertionPoint(op):
                c = arith.constant(it, ir.IntegerAttr(op.attributes["value"]).value)
            op.results[0].replace_all_uses_with(c)
            op.erase()
        elif name in ("arith.index_cast", "arith.index_castui"):
            src, dst = op.operands[0], op.results[0]
            signed = name == "arith.index_cast"
            if _is(ir.IndexType, dst.type):  # int -> index: int -> i<bits>
                to = it
            else:  # index -> int: i<bits> -> int
                to = dst.type
            w_from = ir.IntegerType(src.type).width if not _is(ir.IndexType, src.type) else bits
            w_to = ir.IntegerType(to).width
            with op.location, ir.InsertionPoint(op):
                if w_from == w_to:
                    r = src
                elif w_from > w_to:
                    r = arith.trunci(to, src)
                else:
                    r = arith.extsi(to, src) if signed else arith.extui(to, src)
            dst.replace_all_uses_with(r)
            op.erase()
        elif name in ("memref.load", "memref.store"):
            first = 1 if name == "memref.load" else 2
            for k in range(first, len(op.operands)):
                v = op.operands[k]
                if not _is(ir.IndexType, v.type):
                    with op.location, ir.InsertionPoint(op):
                        op.operands[k] = arith.index_cast(idx, v)
        else:
            for r in op.results:
                if _is(ir.IndexType, r.type):
                    r.set_type(it)


def _blocks(func) -> list:
    out = []

    def rec(op):
        for region in op.regions:
            for b in region.blocks:
                out.append(b)
                for o in b.operations:
                    rec(o.operation)

    rec(func)
    return out


def _sink_constants(func) -> int:
    """Give every block its own copy of each constant it uses. canonicalize hoists all constants into
    the entry block; lower-cf-to-handshake then threads each one through every block between its
    definition and its uses (a merge, a branch and a fork per block), and a model of a few thousand
    blocks grows from ~60 constants to a 90 MB design (JetFormer-tiny: 91 MB of SV, 5 minutes of
    CIRCT). A handshake constant is triggered by its own block's control token instead, so a local
    copy costs one constant unit. Must run after the last canonicalize of stage A (it would hoist them
    back). Returns the number of copies made."""
    copies = 0
    for op in _walk(func, {"arith.constant"}):
        op = op.operation
        home = op.block
        clones = {}
        for use in list(op.results[0].uses):
            owner = use.owner.operation if hasattr(use.owner, "operation") else use.owner
            blk = owner.block
            if blk == home:
                continue
            key = hash(blk)
            if key not in clones:
                first = blk.operations[0] if len(blk.operations) else None
                ip = ir.InsertionPoint(first) if first is not None else ir.InsertionPoint(blk)
                clones[key] = op.clone(ip=ip)
                copies += 1
            owner.operands[use.operand_number] = clones[key].results[0]
        if not list(op.results[0].uses):
            op.erase()
    return copies


def _drop_unused_arguments(func) -> list:
    """Remove memref arguments nothing reads or writes (lower-cf-to-handshake segfaults on a memory
    without ports, e.g. an input whose every use canonicalize folded away). Returns, per original
    argument, its index among the remaining ones, or None."""
    block = func.regions[0].blocks[0]
    args = list(block.arguments)
    keep = [bool(list(a.uses)) for a in args]
    for i in reversed(range(len(args))):
        if not keep[i]:
            block.erase_argument(i)
    ft = ir.FunctionType(ir.TypeAttr(func.attributes["function_type"]).value)
    func.attributes["function_type"] = ir.TypeAttr.get(
        ir.FunctionType.get([a.type for a in block.arguments], list(ft.results)))
    out, n = [], 0
    for k in keep:
        out.append(n if k else None)
        n += k
    return out


# ---------------------------------------------------------------------- entry point
def lower(schedule, narrow_index: bool = True) -> Lowered:
    _check_types(schedule)
    top = schedule.top
    names, arg_types, res_types = schedule.mb.signatures[top]
    with schedule.context, ir.Location.unknown():
        module = ir.Module.parse(str(schedule.module))
        for f in _funcs(module):
            if ir.StringAttr(f.attributes["sym_name"]).value != top:
                f.attributes["sym_visibility"] = ir.StringAttr.get("private")
        _apply_unroll(module)
        if fixed_to_int is not None:
            fixed_to_int(module)
        _run(module, PREPARE, "inline and results to out-parameters", top)
        func = _top_func(module, top)
        _check_body(func, top)
        _copies_to_loops(func)
        roms = _globals_to_ports(module, func)
        _flatten_memrefs(func)
        roles = ["in"] * len(arg_types) + ["out"] * len(res_types) + ["rom"] * len(roms)
        _one_port_per_argument(func, roles)
        _run(module, TO_CF, "affine and scf to cf", top)
        func = _top_func(module, top)
        _expand_minmax_div(func)
        bits = _index_bits(func) if narrow_index else 64
        if narrow_index:
            _narrow_index(func, bits)
        _run(module, "builtin.module(canonicalize,cse)", "cleanup", top)
        func = _top_func(module, top)
        leftover = sorted({o.name for o in _walk(func, {"arith.maxsi", "arith.minsi", "arith.divsi", "arith.remsi",
                                                        "memref.get_global", "memref.copy"})})
        if leftover:  # canonicalize folded an expansion back: expand once more
            _expand_minmax_div(func)
            leftover = sorted({o.name for o in _walk(func, {"arith.maxsi", "arith.minsi", "arith.divsi",
                                                            "arith.remsi", "memref.get_global", "memref.copy"})})
            if leftover:
                raise AlloError(f"rtl: ops left after stage A in '{top}' that CIRCT cannot take: {leftover}")
        used = _drop_unused_arguments(func)
        _sink_constants(func)
        func.operation.verify()
        text = str(module)
    # circt 1.62's parser does not know the overflow flags.
    text = re.sub(r" overflow<[a-z, ]+>", "", text)
    ports = [Port(n, t.dtype, t.shape, "in") for n, t in zip(names, arg_types)]
    ports += [Port(f"out{k}" if len(res_types) > 1 else "out", t.dtype, t.shape, "out") for k, t in enumerate(res_types)]
    from ...lang.types import int64

    ports += [Port(sym.lstrip("_"), int64, d.shape, "rom", d, width=w) for sym, d, w in roms]
    for k, hw in enumerate(used):
        ports[k].hw_index = hw
    return Lowered(top, text, ports, bits)
