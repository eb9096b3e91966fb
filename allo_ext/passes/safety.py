"""Memory and arithmetic safety of compiled kernels.

Three checks, all on the scheduled MLIR module:

- :func:`check_recursion`: a kernel that calls itself (directly or through others) is refused on
  every target: hardware has no call stack, and on the CPU unbounded recursion ends in a segfault.
- :func:`check_static_bounds`: an ``affine.load``/``affine.store`` whose index provably leaves its
  buffer is a compile-time error naming the kernel, the source line, the index range and the
  buffer's size. "Provably": the access runs unconditionally inside loops with constant bounds and
  its index is a linear function of their induction variables, so every value of the computed
  range is reached.
- :func:`insert_runtime_checks` (CPU paths): every access that is not proven in bounds, and every
  integer division or remainder whose divisor is not a safe constant, gets a check. A failing check
  calls ``allo_ext_trap(site, a, b)`` and continues with a safe value (index 0, divisor 1), so the
  kernel finishes without touching foreign memory or raising SIGFPE; the backend then raises a
  Python error naming the kernel, the line and the offending values (:func:`trap_message`).
  Accesses proven in bounds (the common case: ``X[i, j]`` over loops that match the shape) cost
  nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch_mlir import ir
from torch_mlir.dialects import affine, arith, func, memref, scf

from ..lang.errors import AlloError
from .loop_info import loop_name

TRAP = "allo_ext_trap"
_DIVS = ("arith.divsi", "arith.divui", "arith.remsi", "arith.remui", "arith.floordivsi", "arith.ceildivsi")
_SIGNED_DIVS = ("arith.divsi", "arith.remsi", "arith.floordivsi", "arith.ceildivsi")


class OutOfBoundsError(AlloError, IndexError):
    """An array access outside its buffer: at compile time when provable, else when the kernel runs."""


class KernelArithmeticError(AlloError, ArithmeticError):
    """Integer division or remainder by zero, or the overflowing INT_MIN / -1, in a compiled kernel."""


class RecursionInKernelError(AlloError):
    """A kernel calls itself; no target supports recursion."""


# ----------------------------------------------------------------------------- helpers
def _funcs(module: ir.Module) -> dict:
    return {ir.StringAttr(op.attributes["sym_name"]).value: op for op in module.body.operations
            if op.operation.name == "func.func"}


def _walk(op, fn):
    def cb(o):
        fn(o)
        return ir.WalkResult.ADVANCE

    op.operation.walk(cb)


def _loc(op) -> str:
    text = str(op.location)
    # loc("file.py":12:5) -> file.py:12
    if text.startswith('loc("'):
        body = text[5:].split('"')
        if len(body) > 1:
            rest = body[1].lstrip(":").split(":")
            return f"{body[0]}:{rest[0]}" if rest and rest[0].isdigit() else body[0]
    return "<unknown location>"


def _kernel_of(op) -> str:
    p = op.operation
    while p is not None and p.name != "func.func":
        p = p.parent
    return ir.StringAttr(p.attributes["sym_name"]).value if p is not None else "?"


def _buffer_name(value) -> str:
    """A memref's name in the kernel source: the argument name or the local's ``name``."""
    try:
        owner = value.owner
    except Exception:  # noqa: BLE001
        return "?"
    if isinstance(owner, ir.Block):
        fop = owner.owner
        fop = fop.operation if hasattr(fop, "operation") else fop
        idx = ir.BlockArgument(value).arg_number
        try:
            names = [ir.StringAttr(a).value for a in ir.ArrayAttr(fop.attributes["allo.arg_names"])]
        except (KeyError, ValueError, TypeError):
            names = []
        return names[idx] if idx < len(names) else f"argument {idx}"
    op = owner.operation if hasattr(owner, "operation") else owner
    if op.name == "memref.get_global":
        return ir.FlatSymbolRefAttr(op.attributes["name"]).value.removeprefix("__stateful_")
    if "name" in op.attributes:
        try:
            return ir.StringAttr(op.attributes["name"]).value
        except ValueError:
            pass
    return "a local buffer"


# ----------------------------------------------------------------------------- recursion
def check_recursion(module: ir.Module) -> None:
    funcs = _funcs(module)
    calls = {}
    for name, f in funcs.items():
        out = []
        _walk(f, lambda o, out=out: out.append(ir.FlatSymbolRefAttr(o.attributes["callee"]).value)
              if o.name == "func.call" else None)
        calls[name] = out
    state: dict[str, int] = {}

    def visit(name, stack):
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = stack[stack.index(name):] + [name]
            raise RecursionInKernelError(
                f"kernel '{name}' calls itself ({' -> '.join(cycle)}, at {_loc(funcs[name])}): recursion is not "
                f"supported on any target (hardware has no call stack); write it as a loop")
        state[name] = 1
        for c in calls.get(name, []):
            if c in funcs:
                visit(c, stack + [name])
        state[name] = 2

    for name in funcs:
        visit(name, [])


# ----------------------------------------------------------------------------- ranges
@dataclass(frozen=True)
class Range:
    lo: int
    hi: int
    exact: bool          # every value in [lo, hi] is reached
    dims: frozenset = frozenset()  # induction variables it depends on (for independence)


def _const_index(value) -> int | None:
    try:
        op = value.owner
    except Exception:  # noqa: BLE001
        return None
    if isinstance(op, ir.Block):
        return None
    op = op.operation if hasattr(op, "operation") else op
    if op.name == "arith.constant" and isinstance(value.type, ir.IndexType):
        return ir.IntegerAttr(op.attributes["value"]).value
    return None


def _single_const(m: ir.AffineMap) -> int | None:
    if m.n_dims or m.n_symbols or len(m.results) != 1:
        return None
    try:
        return ir.AffineConstantExpr(m.results[0]).value
    except (ValueError, TypeError):
        return None


def value_range(value, cache: dict | None = None) -> Range | None:
    """The values an index takes, when they follow from loop bounds and constants."""
    c = _const_index(value)
    if c is not None:
        return Range(c, c, True)
    try:
        owner = value.owner
    except Exception:  # noqa: BLE001
        return None
    if not isinstance(owner, ir.Block):
        op = owner.operation if hasattr(owner, "operation") else owner
        if op.name == "affine.apply":  # e.g. what unrolling leaves in place of the induction variable
            amap = ir.AffineMapAttr(op.attributes["map"]).value
            return _expr_range(amap.results[0], list(op.operands), amap.n_dims) if len(amap.results) == 1 else None
        return None
    loop = owner.owner
    if loop.name != "affine.for" or ir.BlockArgument(value).arg_number != 0:
        return None
    step = ir.IntegerAttr(loop.attributes["step"]).value
    lbm = ir.AffineMapAttr(loop.attributes["lowerBoundMap"]).value
    ubm = ir.AffineMapAttr(loop.attributes["upperBoundMap"]).value
    lb, ub = _single_const(lbm), _single_const(ubm)
    if lb is not None and ub is not None:
        if ub <= lb:
            return None  # never runs
        last = lb + ((ub - 1 - lb) // step) * step
        return Range(lb, last, step == 1, frozenset([id(loop)]))
    # Bounds from outer loops (split, tile): an over-approximation, never exact.
    fop = loop.opview
    lows = [_expr_range(e, list(fop.lowerBoundOperands), lbm.n_dims) for e in lbm.results]
    highs = [_expr_range(e, list(fop.upperBoundOperands), ubm.n_dims) for e in ubm.results]
    if not lows or not highs or any(r is None for r in lows + highs):
        return None
    return Range(max(r.lo for r in lows), min(r.hi for r in highs) - 1, False)


def _expr_range(expr, operands, n_dims: int) -> Range | None:
    """Range of an affine expression over its operands' ranges (dims first, then symbols)."""
    for cls in (ir.AffineConstantExpr,):
        try:
            v = cls(expr).value
            return Range(v, v, True)
        except (ValueError, TypeError):
            pass
    try:
        return value_range(operands[ir.AffineDimExpr(expr).position])
    except (ValueError, TypeError):
        pass
    try:
        return value_range(operands[n_dims + ir.AffineSymbolExpr(expr).position])
    except (ValueError, TypeError):
        pass
    for kind in ("Add", "Mul", "FloorDiv", "CeilDiv", "Mod"):
        try:
            b = getattr(ir, f"Affine{kind}Expr")(expr)
        except (ValueError, TypeError):
            continue
        lhs, rhs = _expr_range(b.lhs, operands, n_dims), _expr_range(b.rhs, operands, n_dims)
        if lhs is None or rhs is None:
            return None
        return _combine(kind, lhs, rhs)
    return None


def _combine(kind: str, a: Range, b: Range) -> Range | None:
    indep = not (a.dims & b.dims)
    dims = a.dims | b.dims
    if kind == "Add":
        return Range(a.lo + b.lo, a.hi + b.hi, a.exact and b.exact and indep, dims)
    if kind == "Mul":
        if b.lo != b.hi:
            a, b = b, a
        if b.lo != b.hi:
            cands = [a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi]
            return Range(min(cands), max(cands), False, dims)
        k = b.lo
        lo, hi = sorted((a.lo * k, a.hi * k))
        # a*k reaches every multiple of k in range: exact for |k| <= 1, else the ends are still reached.
        return Range(lo, hi, a.exact, dims)
    if b.lo != b.hi or b.lo <= 0:
        return None
    k = b.lo
    if kind == "FloorDiv":
        return Range(a.lo // k, a.hi // k, a.exact, dims)
    if kind == "CeilDiv":
        return Range(-(-a.lo // k), -(-a.hi // k), a.exact, dims)
    if a.lo // k == a.hi // k:  # Mod within one period is monotone
        return Range(a.lo % k, a.hi % k, a.exact, dims)
    return Range(0, k - 1, False, dims)


def _runs_unconditionally(op) -> bool:
    """Every enclosing op up to the function is a loop with constant, non-empty bounds."""
    p = op.operation.parent
    while p is not None and p.name != "func.func":
        if p.name != "affine.for":
            return False
        lbm = ir.AffineMapAttr(p.attributes["lowerBoundMap"]).value
        ubm = ir.AffineMapAttr(p.attributes["upperBoundMap"]).value
        lb, ub = _single_const(lbm), _single_const(ubm)
        if lb is None or ub is None or ub <= lb:
            return False
        p = p.parent
    return True


@dataclass
class Access:
    op: object
    buffer: object
    shape: tuple
    ranges: list        # per dimension: Range or None
    index_text: list    # per dimension, for messages

    @property
    def proven_safe(self) -> bool:
        return all(r is not None and 0 <= r.lo and r.hi < d for r, d in zip(self.ranges, self.shape))


def _iv_names(operands) -> list[str]:
    out = []
    for v in operands:
        try:
            owner = v.owner
            if isinstance(owner, ir.Block) and owner.owner.name == "affine.for":
                out.append(loop_name(owner.owner).split(".")[-1])
                continue
        except Exception:  # noqa: BLE001
            pass
        c = _const_index(v)
        out.append(str(c) if c is not None else "?")
    return out


def _expr_text(expr, names: list[str], n_dims: int) -> str:
    text = str(expr)
    for k in range(len(names) - 1, -1, -1):
        sym = f"d{k}" if k < n_dims else f"s{k - n_dims}"
        text = text.replace(sym, names[k])
    return text


def accesses(module: ir.Module) -> list[Access]:
    out = []

    def visit(op):
        name = op.name
        if name not in ("affine.load", "affine.store", "memref.load", "memref.store"):
            return
        store = name.endswith("store")
        buf = op.operands[1 if store else 0]
        if not isinstance(buf.type, ir.MemRefType):
            return
        shape = tuple(ir.MemRefType(buf.type).shape)
        idx_ops = list(op.operands)[2 if store else 1:]
        if name.startswith("affine"):
            amap = ir.AffineMapAttr(op.attributes["map"]).value
            ranges = [_expr_range(e, idx_ops, amap.n_dims) for e in amap.results]
            names = _iv_names(idx_ops)
            texts = [_expr_text(e, names, amap.n_dims) for e in amap.results]
        else:
            ranges = [value_range(v) for v in idx_ops]
            texts = [n if n != "?" else "<computed>" for n in _iv_names(idx_ops)]
        out.append(Access(op, buf, shape, ranges, texts))

    _walk(module.operation, visit)
    return out


def check_static_bounds(module: ir.Module) -> None:
    """Raise OutOfBoundsError for the first access that provably leaves its buffer."""
    for a in accesses(module):
        for k, (r, d) in enumerate(zip(a.ranges, a.shape)):
            if r is None or not r.exact or (0 <= r.lo and r.hi < d) or d < 0:
                continue
            if not _runs_unconditionally(a.op):
                continue
            what = "writes" if a.op.name.endswith("store") else "reads"
            sub = ", ".join(a.index_text)
            raise OutOfBoundsError(
                f"{_loc(a.op)}: in kernel '{_kernel_of(a.op)}': {_buffer_name(a.buffer)}[{sub}] {what} index "
                f"{r.lo}..{r.hi} of dimension {k}, which has size {d} (valid 0..{d - 1}); "
                f"fix the index or the loop range")


def check_module(module: ir.Module) -> None:
    """The checks every target runs before building."""
    check_recursion(module)
    check_static_bounds(module)


# ----------------------------------------------------------------------------- runtime checks
@dataclass
class Site:
    kind: str      # "bounds" or "div"
    kernel: str
    loc: str
    detail: str    # buffer and subscript, or the operation
    dims: tuple = ()


def _i64(v):
    t = v.type
    i64 = ir.IntegerType.get_signless(64)
    if isinstance(t, ir.IndexType):
        return arith.IndexCastOp(i64, v).result
    w = ir.IntegerType(t).width
    if w == 64:
        return v
    return arith.ExtSIOp(i64, v).result if w > 1 else arith.ExtUIOp(i64, v).result


def _const(t, v):
    return arith.ConstantOp(t, ir.IntegerAttr.get(t, v) if not isinstance(t, ir.IndexType)
                            else ir.IntegerAttr.get(t, v)).result


def _trap_call(bad, site: int, a, b):
    i64 = ir.IntegerType.get_signless(64)
    if_op = scf.IfOp(bad)
    with ir.InsertionPoint(if_op.then_block):
        func.CallOp([], ir.FlatSymbolRefAttr.get(TRAP), [_const(i64, site), _i64(a), _i64(b)])
        scf.YieldOp([])


def _declare_trap(module: ir.Module) -> None:
    if TRAP in _funcs(module):
        return
    i64 = ir.IntegerType.get_signless(64)
    with ir.InsertionPoint.at_block_begin(module.body), ir.Location.unknown():
        f = func.FuncOp(TRAP, ir.FunctionType.get([i64, i64, i64], []), visibility="private")
        f.attributes["llvm.emit_c_interface"] = ir.UnitAttr.get()


def _guard_index(v, size: int, site: int, k: int):
    """(index in bounds ? index : 0), trapping with (dimension, index) when out of bounds."""
    idx = ir.IndexType.get()
    n = _const(idx, size)
    # Two signed compares rather than one unsigned: the HLS emitter prints index compares as signed.
    ok = arith.AndIOp(arith.CmpIOp(arith.CmpIPredicate.sge, v, _const(idx, 0)).result,
                      arith.CmpIOp(arith.CmpIPredicate.slt, v, n).result).result
    bad = arith.XOrIOp(ok, _const(ir.IntegerType.get_signless(1), 1)).result
    _trap_call(bad, site, _const(idx, k), v)
    return arith.SelectOp(ok, v, _const(idx, 0)).result


def insert_runtime_checks(module: ir.Module) -> list[Site]:
    """Add the checks described in the module docstring; returns the check sites by number."""
    sites: list[Site] = []
    todo_acc = [a for a in accesses(module) if not a.proven_safe and all(d >= 0 for d in a.shape)]
    divs = []
    _walk(module.operation, lambda o: divs.append(o) if o.name in _DIVS and not _safe_divisor(o) else None)
    if not todo_acc and not divs:
        return sites
    _declare_trap(module)
    for a in todo_acc:
        op = a.op
        store = op.name.endswith("store")
        site = len(sites)
        sites.append(Site("bounds", _kernel_of(op), _loc(op), f"{_buffer_name(a.buffer)}[{', '.join(a.index_text)}]",
                          a.shape))
        with op.location, ir.InsertionPoint(op):
            idx_ops = list(op.operands)[2 if store else 1:]
            if op.name.startswith("affine"):
                amap = ir.AffineMapAttr(op.attributes["map"]).value
                values = [affine.AffineApplyOp(ir.AffineMap.get(amap.n_dims, amap.n_symbols, [e]), idx_ops).result
                          for e in amap.results]
            else:
                values = idx_ops
            safe = [v if (r is not None and 0 <= r.lo and r.hi < d) else _guard_index(v, d, site, k)
                    for k, (v, r, d) in enumerate(zip(values, a.ranges, a.shape))]
            if store:
                memref.StoreOp(op.operands[0], a.buffer, safe)
            else:
                new = memref.LoadOp(a.buffer, safe).result
        if not store:
            op.results[0].replace_all_uses_with(new)
        op.erase()
    for op in divs:
        site = len(sites)
        sites.append(Site("div", _kernel_of(op), _loc(op), op.name.split(".")[1]))
        with op.location, ir.InsertionPoint(op):
            a, b = op.operands[0], op.operands[1]
            t = b.type
            zero = arith.CmpIOp(arith.CmpIPredicate.eq, b, _const(t, 0)).result
            bad = zero
            if op.name in _SIGNED_DIVS and isinstance(t, ir.IntegerType) and ir.IntegerType(t).width > 1:
                w = ir.IntegerType(t).width
                is_min = arith.CmpIOp(arith.CmpIPredicate.eq, a, _const(t, -(1 << (w - 1)))).result
                is_m1 = arith.CmpIOp(arith.CmpIPredicate.eq, b, _const(t, -1)).result
                bad = arith.OrIOp(zero, arith.AndIOp(is_min, is_m1).result).result
            _trap_call(bad, site, a, b)
            safe_b = arith.SelectOp(bad, _const(t, 1), b).result
        op.operation.operands[1] = safe_b
    return sites


def _safe_divisor(op) -> bool:
    b = op.operands[1]
    if not (isinstance(b.type, ir.IntegerType) or isinstance(b.type, ir.IndexType)):
        return True
    try:
        owner = b.owner
        owner = owner.operation if hasattr(owner, "operation") else owner
        if isinstance(owner, ir.Block) or owner.name != "arith.constant":
            return False
        v = ir.IntegerAttr(owner.attributes["value"]).value
    except Exception:  # noqa: BLE001
        return False
    return v != 0 and (v != -1 or op.name not in _SIGNED_DIVS)


def trap_message(sites: list[Site], site: int, a: int, b: int) -> AlloError:
    """The Python error for a trap the kernel reported."""
    if not 0 <= site < len(sites):
        return AlloError(f"a compiled kernel reported an unknown check failure (site {site})")
    s = sites[site]
    if s.kind == "bounds":
        dim, size = a, s.dims[a] if 0 <= a < len(s.dims) else "?"
        return OutOfBoundsError(f"{s.loc}: in kernel '{s.kernel}': {s.detail} index {b} is out of bounds for "
                                f"dimension {dim} of size {size} (valid 0..{size - 1 if size != '?' else '?'})")
    sym = _DIV_SYMBOL.get(s.detail, "/")
    what = "division by zero" if b == 0 else "the result does not fit the type (INT_MIN / -1)"
    return KernelArithmeticError(f"{s.loc}: in kernel '{s.kernel}': integer {a} {sym} {b}: {what}")


_DIV_SYMBOL = {"divsi": "/", "divui": "/", "floordivsi": "//", "ceildivsi": "ceildiv", "remsi": "%", "remui": "%"}
