"""Compile an Allo-style Python function (read from its AST) into a ``func.func``.

The emitted IR stays inside the dialects every backend reads: func, affine, scf, memref, arith and
math. Conventions the schedule and the backends rely on:

- ``affine.for`` carries ``loop_name`` (unique within its function, e.g. ``"relu.b"``) and
  ``op_name`` (the band: the ``name=`` of ``grid``, or the variable of a ``range`` loop).
- local buffers are ``memref.alloc`` with ``name``; scalar temporaries are rank-0 ``memref.alloca``.
- the function carries ``allo.arg_names`` (``ArrayAttr`` of strings) and ``allo.kernel`` (unit).
- every op carries a ``loc("file":line:col)`` of the kernel line it came from.
"""
from __future__ import annotations

import ast
import builtins
import inspect
import math as pymath
import textwrap
from typing import Any, Callable

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import affine, arith, func, math, memref, scf

from .errors import KernelSyntaxError, KernelTypeError
from .index_expr import Idx, affine_access
from .types import ArrayType, DType, Float, Int, index as index_t
from .values import TV, Buffer, Literal, LiteralSelect, ScalarVar

_MATH_UNARY = {"exp": math.exp, "log": math.log, "sqrt": math.sqrt, "tanh": math.tanh, "erf": math.erf,
               "floor": math.floor, "ceil": math.ceil, "round": math.roundeven}


def kernel_signature(fn: Callable) -> tuple[list[str], list[Any], list[Any]]:
    """(arg names, arg types, result types) read from the function's annotations."""
    sig = inspect.signature(fn)
    ns = _namespace(fn)
    names, types = [], []
    for p in sig.parameters.values():
        t = _resolve_annotation(p.annotation, ns)
        if not isinstance(t, (ArrayType, DType)):
            hint = (" (the annotation is a string that names something outside the kernel's closure: do not use "
                    "'from __future__ import annotations' in a module that defines kernels)") if isinstance(t, str) else ""
            raise KernelSyntaxError(
                f"argument '{p.name}' needs a type annotation such as float32[4, 8] or int32, got {t!r}{hint}",
                file=inspect.getsourcefile(fn), line=fn.__code__.co_firstlineno, kernel=fn.__name__,
            )
        names.append(p.name)
        types.append(t)
    ret = _resolve_annotation(sig.return_annotation, ns)
    if ret is inspect.Signature.empty or ret is None:
        results = []
    elif isinstance(ret, tuple):
        results = list(ret)
    else:
        results = [ret]
    return names, types, results


def _namespace(fn: Callable) -> dict:
    ns = dict(fn.__globals__)
    if fn.__closure__:
        for n, c in zip(fn.__code__.co_freevars, fn.__closure__):
            try:
                ns[n] = c.cell_contents
            except ValueError:  # cell not yet filled
                pass
    return ns


def _resolve_annotation(a, ns: dict):
    """Annotations may be strings (``from __future__ import annotations``): evaluate them where the
    kernel was defined, closure included, which ``inspect.signature(eval_str=True)`` does not do."""
    if isinstance(a, str):
        try:
            return eval(a, ns)  # noqa: S307
        except Exception:
            return a
    return a


def is_kernel(obj) -> bool:
    if not inspect.isfunction(obj):
        return False
    try:
        ann = inspect.get_annotations(obj)
    except Exception:
        return False
    ns = _namespace(obj)
    params = inspect.signature(obj).parameters
    return bool(params) and all(isinstance(_resolve_annotation(ann.get(p), ns), (ArrayType, DType)) for p in params)


class FunctionCompiler(ast.NodeVisitor):
    """Turns one Python function into one func.func inside ``module_builder``'s module."""

    def __init__(self, module_builder, fn: Callable, sym_name: str):
        self.mb = module_builder
        self.fn = fn
        self.sym_name = sym_name
        self.file = inspect.getsourcefile(fn) or "<unknown>"
        try:
            src_lines, self.first_line = inspect.getsourcelines(fn)
        except OSError as e:
            raise KernelSyntaxError(f"cannot read the source of kernel '{fn.__name__}' ({e}): kernels are compiled "
                                    "from their source, so define them in a .py file (not in 'python -c' or exec)",
                                    file=self.file, line=fn.__code__.co_firstlineno, kernel=fn.__name__) from None
        tree = ast.parse(textwrap.dedent("".join(src_lines)))
        self.fdef = tree.body[0]
        if not isinstance(self.fdef, ast.FunctionDef):
            raise KernelSyntaxError("kernels must be plain 'def' functions", file=self.file, line=self.first_line)
        self.globals = _namespace(fn)
        self.scopes: list[dict] = [{}]
        self.loop_names: set[str] = set()
        self.buffer_names: set[str] = set()
        self.returned = False
        self._line = self.first_line

    # ------------------------------------------------------------------ errors and locations
    def err(self, node, msg: str, cls=KernelSyntaxError):
        line = self.first_line + getattr(node, "lineno", 1) - 1 if node is not None else self._line
        return cls(msg, file=self.file, line=line, kernel=self.fn.__name__)

    def loc(self, node) -> ir.Location:
        line = self.first_line + getattr(node, "lineno", 1) - 1
        return ir.Location.file(self.file, line, getattr(node, "col_offset", 0) + 1)

    # ------------------------------------------------------------------ scopes
    def lookup(self, name: str):
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        return None

    def bind(self, name: str, val):
        self.scopes[-1][name] = val

    def local_names(self) -> set:
        return set().union(*self.scopes)

    def try_const(self, node):
        """Evaluate ``node`` as Python if it only uses globals/closure names (compile-time meta)."""
        names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        if names & self.local_names():
            return None
        try:
            return eval(compile(ast.Expression(body=node), self.file, "eval"), self.globals)  # noqa: S307
        except Exception:
            return None

    # ------------------------------------------------------------------ entry
    def compile(self) -> func.FuncOp:
        names, arg_types, res_types = kernel_signature(self.fn)
        self.res_types = res_types
        ftype = ir.FunctionType.get([t.mlir() for t in arg_types], [t.mlir() for t in res_types])
        with self.loc(self.fdef), ir.InsertionPoint(self.mb.module.body):
            f = func.FuncOp(self.sym_name, ftype)
            f.attributes["allo.arg_names"] = ir.ArrayAttr.get([ir.StringAttr.get(n) for n in names])
            f.attributes["allo.kernel"] = ir.UnitAttr.get()
            entry = f.add_entry_block()
        for n, t, a in zip(names, arg_types, entry.arguments):
            if isinstance(t, ArrayType):
                self.bind(n, Buffer(a, t, n))
                self.buffer_names.add(n)
            elif t.is_index:
                self.bind(n, Idx.leaf(a))
            else:
                self.bind(n, TV(a, t))
        with ir.InsertionPoint(entry):
            self.visit_body(self.fdef.body)
            if not self.returned:
                if res_types:
                    raise self.err(self.fdef, f"declares results {res_types} but has no 'return' at its end")
                with self.loc(self.fdef):
                    func.ReturnOp([])
        return f

    def visit_body(self, stmts):
        for i, s in enumerate(stmts):
            if self.returned:
                raise self.err(s, "statements after 'return' are not allowed")
            if isinstance(s, ast.Return) and len(self.scopes) > 1:
                raise self.err(s, "'return' is only allowed at the end of the kernel, not inside a loop or if")
            if (i == 0 and isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                    and isinstance(s.value.value, str)):
                continue  # docstring
            self._line = self.first_line + s.lineno - 1
            with self.loc(s):
                self.visit(s)

    def generic_visit(self, node):
        raise self.err(node, f"unsupported construct '{type(node).__name__}'"
                             f" ({ast.unparse(node)[:60]!r}); see allo_ext.lang for what kernels may contain")

    # ------------------------------------------------------------------ statements
    def visit_Pass(self, node):
        pass

    def visit_Expr(self, node):
        self.eval(node.value)

    def visit_AnnAssign(self, node):
        if not isinstance(node.target, ast.Name):
            raise self.err(node, "annotated assignment must target a plain name, e.g. 'Z: float32[4] = 0.0'")
        name = node.target.id
        t = self.try_const(node.annotation)
        if isinstance(t, ArrayType):
            buf = self.alloc(t, name, node)
            if node.value is not None:
                init = self.eval(node.value)
                if isinstance(init, Buffer):
                    self.check_same_type(node, init.type, t, "initial value")
                    self.copy_buffer(init, buf)
                else:
                    self.fill(buf, self.coerce(node, init, t.dtype))
            self.bind(name, buf)
        elif isinstance(t, DType):
            var = self.new_scalar(t, name)
            if node.value is not None:
                self.store_scalar(var, self.coerce(node, self.eval(node.value), t))
            self.bind(name, var)
        else:
            raise self.err(node, f"cannot read type annotation {ast.unparse(node.annotation)!r}: expected a type such as "
                                 "float32 or float32[4, 8] built from compile-time constants")

    def visit_Assign(self, node):
        if len(node.targets) != 1:
            raise self.err(node, "chained assignment 'a = b = ...' is not supported")
        target = node.targets[0]
        if isinstance(target, ast.Tuple):
            val = self.eval(node.value)
            if not isinstance(val, tuple) or len(val) != len(target.elts):
                raise self.err(node, f"cannot unpack into {len(target.elts)} names")
            for t, v in zip(target.elts, val):
                if not isinstance(t, ast.Name):
                    raise self.err(node, "tuple assignment targets must be names")
                self.assign_name(t, v, node)
            return
        if isinstance(target, ast.Subscript):
            self.store_subscript(target, self.eval(node.value), node)
            return
        if isinstance(target, ast.Name):
            self.assign_name(target, self.eval(node.value), node)
            return
        raise self.err(node, f"cannot assign to {ast.unparse(target)!r}")

    def assign_name(self, target: ast.Name, val, node):
        cur = self.lookup(target.id)
        if isinstance(cur, ScalarVar):
            self.store_scalar(cur, self.coerce(node, val, cur.dtype))
        elif cur is None:
            if isinstance(val, (Buffer, Idx, tuple)):
                if isinstance(val, Buffer) and target.id not in self.buffer_names:
                    self.buffer_names.add(target.id)
                self.bind(target.id, val)
            elif isinstance(val, TV):
                var = self.new_scalar(val.dtype, target.id)
                self.store_scalar(var, val)
                self.bind(target.id, var)
            elif isinstance(val, Literal):
                raise self.err(node, f"'{target.id} = {val.value!r}' needs a type: write "
                                     f"'{target.id}: float32 = {val.value!r}' (or another type)")
            else:
                raise self.err(node, f"cannot bind '{target.id}' to {val!r}")
        else:
            raise self.err(node, f"'{target.id}' is a {type(cur).__name__.lower()} and cannot be reassigned; "
                                 "only scalar variables declared with a type can")

    def visit_AugAssign(self, node):
        if isinstance(node.target, ast.Subscript):
            cur = self.eval(node.target)
            self.store_subscript(node.target, self.binop(node, node.op, cur, self.eval(node.value)), node)
        elif isinstance(node.target, ast.Name):
            var = self.lookup(node.target.id)
            if not isinstance(var, ScalarVar):
                raise self.err(node, f"'{node.target.id}' is not a scalar variable; declare it as "
                                     f"'{node.target.id}: float32 = 0.0' before updating it")
            cur = TV(memref.load(var.slot, []), var.dtype)
            self.store_scalar(var, self.coerce(node, self.binop(node, node.op, cur, self.eval(node.value)), var.dtype))
        else:
            raise self.err(node, f"cannot update {ast.unparse(node.target)!r}")

    def visit_Return(self, node):
        vals = [] if node.value is None else self.eval(node.value)
        vals = list(vals) if isinstance(vals, tuple) else [vals]
        if len(vals) != len(self.res_types):
            raise self.err(node, f"returns {len(vals)} value(s) but the signature declares {len(self.res_types)}")
        out = []
        for v, t in zip(vals, self.res_types):
            if isinstance(t, ArrayType):
                if not isinstance(v, Buffer):
                    raise self.err(node, f"must return an array of type {t}, got {v!r}")
                self.check_same_type(node, v.type, t, "returned array")
                out.append(v.value)
            else:
                out.append(self.coerce(node, v, t).value)
        func.ReturnOp(out)
        self.returned = True

    def visit_If(self, node):
        cond = self.as_bool(node, self.eval(node.test))
        if isinstance(cond, Literal):  # compile-time condition: emit only the taken branch
            self.scopes.append({})
            self.visit_body(node.body if cond.value else node.orelse)
            self.scopes.pop()
            return
        op = scf.IfOp(cond.value, [], has_else=bool(node.orelse))
        for region_body, stmts in ((op.then_block, node.body), (op.else_block if node.orelse else None, node.orelse)):
            if region_body is None:
                continue
            with ir.InsertionPoint(region_body):
                self.scopes.append({})
                self.visit_body(stmts)
                self.scopes.pop()
                scf.YieldOp([])

    def visit_For(self, node):
        if node.orelse:
            raise self.err(node, "'for ... else' is not supported")
        it = node.iter
        if not isinstance(it, ast.Call):
            raise self.err(node, "loops must iterate over grid(...) or range(...)")
        fname = it.func.id if isinstance(it.func, ast.Name) else ast.unparse(it.func)
        kw = {k.arg: k.value for k in it.keywords}
        if fname.endswith("grid"):
            dims, tuple_target = [], False
            for a in it.args:
                v = self.try_const(a.value if isinstance(a, ast.Starred) else a)
                if isinstance(a, ast.Starred) or isinstance(v, (tuple, list)):
                    tuple_target = True
                    dims.extend(v if v is not None else [None])
                else:
                    dims.append(v)
            if any(not isinstance(d, (int, np.integer)) for d in dims):
                raise self.err(node, f"grid bounds must be compile-time ints, got {ast.unparse(it)!r}")
            band = self.try_const(kw["name"]) if "name" in kw else None
            self.emit_grid(node, [(0, int(d), 1) for d in dims], band, tuple_target)
        elif fname == "range":
            args = [self.try_const(a) for a in it.args]
            if any(not isinstance(a, (int, np.integer)) for a in args) or not 1 <= len(args) <= 3:
                raise self.err(node, f"range bounds must be compile-time ints, got {ast.unparse(it)!r}")
            lb, ub, step = (0, args[0], 1) if len(args) == 1 else (args[0], args[1], args[2] if len(args) == 3 else 1)
            if step <= 0:
                raise self.err(node, f"range step must be positive, got {step}")
            band = self.try_const(kw["name"]) if "name" in kw else None
            self.emit_grid(node, [(int(lb), int(ub), int(step))], band, False)
        else:
            raise self.err(node, f"cannot loop over '{fname}(...)': use grid(...) or range(...)")

    def emit_grid(self, node, bounds, band, tuple_target):
        tgt = node.target
        if tuple_target or len(bounds) != 1:
            if isinstance(tgt, ast.Tuple):
                names = [e.id for e in tgt.elts]
                if len(names) != len(bounds):
                    raise self.err(node, f"grid has {len(bounds)} dimensions but {len(names)} loop variables")
                bind_as = None
            else:
                names = [f"{tgt.id}{k}" for k in range(len(bounds))]
                bind_as = tgt.id
        else:
            if not isinstance(tgt, ast.Name):
                raise self.err(node, "a one-dimensional loop takes one loop variable")
            names, bind_as = [tgt.id], None
        band = band or bind_as or names[0]
        self.scopes.append({})
        ivs, ips = [], []
        for axis, (lb, ub, step) in zip(names, bounds):
            loop = affine.AffineForOp(lb, ub, step)
            full = band if (len(bounds) == 1 and band == axis) else f"{band}.{axis}"
            full = self.unique_loop_name(full)
            loop.attributes["loop_name"] = ir.StringAttr.get(full)
            loop.attributes["op_name"] = ir.StringAttr.get(band)
            iv = Idx.leaf(loop.induction_variable)
            ivs.append(iv)
            if bind_as is None:
                self.bind(axis, iv)
            ip = ir.InsertionPoint(loop.body)
            ip.__enter__()
            ips.append(ip)
        if bind_as is not None:
            self.bind(bind_as, tuple(ivs))
        self.visit_body(node.body)
        for ip in reversed(ips):
            affine.AffineYieldOp([])
            ip.__exit__(None, None, None)
        self.scopes.pop()

    def unique_loop_name(self, name: str) -> str:
        base, k = name, 1
        while name in self.loop_names:
            name = f"{base}_{k}"
            k += 1
        self.loop_names.add(name)
        return name

    # ------------------------------------------------------------------ memory helpers
    def alloc(self, t: ArrayType, name: str, node) -> Buffer:
        op = memref.AllocOp(t.mlir(), [], [])
        uname, k = name, 1
        while uname in self.buffer_names:
            uname = f"{name}_{k}"
            k += 1
        self.buffer_names.add(uname)
        op.attributes["name"] = ir.StringAttr.get(uname)
        return Buffer(op.result, t, uname)

    def new_scalar(self, t: DType, name: str) -> ScalarVar:
        # Allocas go to the function entry so loops do not grow the stack.
        entry = self.mb_entry_block()
        with ir.InsertionPoint.at_block_begin(entry):
            op = memref.AllocaOp(ir.MemRefType.get([], t.mlir()), [], [])
        op.attributes["name"] = ir.StringAttr.get(name)
        return ScalarVar(op.result, t, name)

    def mb_entry_block(self):
        f = self.mb.lookup_func(self.sym_name)
        return f.regions[0].blocks[0]

    def store_scalar(self, var: ScalarVar, v: TV):
        memref.store(v.value, var.slot, [])

    def elementwise_nest(self, shape, band: str, body):
        """A loop nest ``band.d0, band.d1, ...`` over ``shape`` calling ``body(indices)`` innermost."""
        ips, ivs = [], []
        for k, d in enumerate(shape):
            loop = affine.AffineForOp(0, d, 1)
            loop.attributes["loop_name"] = ir.StringAttr.get(self.unique_loop_name(f"{band}.d{k}"))
            loop.attributes["op_name"] = ir.StringAttr.get(band)
            ivs.append(Idx.leaf(loop.induction_variable))
            ip = ir.InsertionPoint(loop.body)
            ip.__enter__()
            ips.append(ip)
        body(ivs)
        for ip in reversed(ips):
            affine.AffineYieldOp([])
            ip.__exit__(None, None, None)

    def fill(self, buf: Buffer, v: TV):
        self.elementwise_nest(buf.type.shape, f"init_{buf.name}", lambda ivs: self.store(buf, ivs, v))

    def copy_buffer(self, src: Buffer, dst: Buffer):
        self.elementwise_nest(src.type.shape, f"copy_{dst.name}",
                              lambda ivs: self.store(dst, ivs, self.load(src, ivs)))

    def load(self, buf: Buffer, idx: list[Idx]) -> TV:
        acc = affine_access(idx)
        if acc is not None:
            amap, operands = acc
            v = affine.AffineLoadOp(buf.type.dtype.mlir(), buf.value, operands, ir.AffineMapAttr.get(amap)).result
        else:
            v = memref.load(buf.value, [i.materialize() for i in idx])
        return TV(v, buf.type.dtype)

    def store(self, buf: Buffer, idx: list[Idx], v: TV):
        acc = affine_access(idx)
        if acc is not None:
            amap, operands = acc
            affine.AffineStoreOp(v.value, buf.value, operands, ir.AffineMapAttr.get(amap))
        else:
            memref.store(v.value, buf.value, [i.materialize() for i in idx])

    def subscript(self, node: ast.Subscript, buf=None) -> tuple[Buffer, list[Idx]]:
        buf = self.eval(node.value) if buf is None else buf
        if not isinstance(buf, Buffer):
            raise self.err(node, f"'{ast.unparse(node.value)}' is not an array and cannot be indexed")
        sl = node.slice
        parts = sl.elts if isinstance(sl, ast.Tuple) else [sl]
        idx: list[Idx] = []
        for p in parts:
            if isinstance(p, ast.Slice):
                raise self.err(node, "slices are not supported inside kernels; loop over the elements instead")
            v = self.eval(p.value if isinstance(p, ast.Starred) else p)
            items = list(v) if isinstance(v, (tuple, list)) else [v]
            for it in items:
                idx.append(self.as_index(node, it))
        if len(idx) != len(buf.type.shape):
            raise self.err(node, f"'{buf.name}' has rank {len(buf.type.shape)} (type {buf.type}) but is indexed "
                                 f"with {len(idx)} subscript(s)")
        for k, (i, d) in enumerate(zip(idx, buf.type.shape)):
            if i.is_const and not 0 <= i.a < d:
                raise self.err(node, f"index {i.a} is out of bounds for dimension {k} of '{buf.name}' (size {d})")
        return buf, idx

    def store_subscript(self, target: ast.Subscript, val, node):
        buf, idx = self.subscript(target)
        self.store(buf, idx, self.coerce(node, val, buf.type.dtype))

    # ------------------------------------------------------------------ expressions
    def eval(self, node):
        m = getattr(self, "expr_" + type(node).__name__, None)
        if m is None:
            raise self.err(node, f"unsupported expression '{type(node).__name__}' ({ast.unparse(node)[:60]!r})")
        return m(node)

    def expr_Constant(self, node):
        if isinstance(node.value, (bool, int, float)):
            return Literal(node.value)
        if isinstance(node.value, str) or node.value is None:
            return node.value  # only meaningful as an argument of a compile-time helper
        raise self.err(node, f"unsupported constant {node.value!r}")

    def expr_Name(self, node):
        v = self.lookup(node.id)
        if v is None:
            if node.id not in self.globals and not hasattr(builtins, node.id):
                raise self.err(node, f"name '{node.id}' is not defined")
            v = self.globals.get(node.id, getattr(builtins, node.id, None))
            return self.from_python(node, v)
        if isinstance(v, ScalarVar):
            return TV(memref.load(v.slot, []), v.dtype)
        return v

    def from_python(self, node, v):
        if isinstance(v, (bool, int, float, np.integer, np.floating)):
            return Literal(v.item() if isinstance(v, np.generic) else v)
        if isinstance(v, tuple):
            return tuple(self.from_python(node, x) if not isinstance(x, Idx) else x for x in v)
        if isinstance(v, np.ndarray):
            return self.mb.constant_buffer(v, node_name=getattr(node, "id", "const"))
        return v  # functions, types: resolved by the caller

    def expr_Tuple(self, node):
        return tuple(self.eval(e) for e in node.elts)

    expr_List = expr_Tuple  # compile-time sequences (of indices or constants) behave like tuples

    def expr_Subscript(self, node):
        base = self.eval(node.value)
        if isinstance(base, tuple):  # compile-time tuple indexing, e.g. i[0] of a grid tuple
            k = self.try_const(node.slice)
            if not isinstance(k, int):
                raise self.err(node, "tuples can only be indexed by compile-time ints")
            return base[k]
        buf, idx = self.subscript(node, base)
        return self.load(buf, idx)

    def expr_Attribute(self, node):
        v = self.try_const(node)
        if v is None:
            raise self.err(node, f"cannot evaluate attribute '{ast.unparse(node)}' at compile time")
        return self.from_python(node, v)

    def expr_UnaryOp(self, node):
        v = self.eval(node.operand)
        if isinstance(node.op, ast.USub):
            if isinstance(v, Literal):
                return Literal(-v.value)
            if isinstance(v, Idx):
                return -v
            if v.dtype.is_float:
                return TV(arith.negf(v.value), v.dtype)
            zero = arith.constant(v.dtype.mlir(), 0)
            return TV(arith.subi(zero, v.value), v.dtype)
        if isinstance(node.op, ast.UAdd):
            return v
        if isinstance(node.op, ast.Not):
            b = self.as_bool(node, v)
            if isinstance(b, Literal):
                return Literal(not b.value)
            one = arith.constant(ir.IntegerType.get_signless(1), 1)
            return TV(arith.xori(b.value, one), Int(1))
        raise self.err(node, f"unsupported unary operator {type(node.op).__name__}")

    def expr_BinOp(self, node):
        return self.binop(node, node.op, self.eval(node.left), self.eval(node.right))

    def binop(self, node, op, a, b):
        if isinstance(a, Literal) and isinstance(b, Literal):
            return Literal(_py_binop(op, a.value, b.value, self.err(node, "bad operator")))
        if isinstance(a, Idx) or isinstance(b, Idx):
            return self.index_binop(node, op, a, b)
        a, b = self.unify(node, a, b)
        t = a.dtype
        x, y = a.value, b.value
        opn = type(op).__name__
        if t.is_fixed:
            raise self.err(node, f"arithmetic on {t} is not supported yet by this build of the language")
        if t.is_float:
            if opn == "Pow":
                return TV(math.powf(x, y), t)
            if opn == "FloorDiv":
                return TV(math.floor(arith.divf(x, y)), t)
            if opn == "Mod":
                return TV(_floored_remf(x, y), t)
            fn = {"Add": arith.addf, "Sub": arith.subf, "Mult": arith.mulf, "Div": arith.divf}.get(opn)
        else:
            s = t.signed
            if opn == "Mod" and s:
                return TV(_floored_remsi(x, y, t), t)
            fn = {"Add": arith.addi, "Sub": arith.subi, "Mult": arith.muli,
                  "Div": arith.divsi if s else arith.divui, "FloorDiv": arith.floordivsi if s else arith.divui,
                  "Mod": arith.remui, "BitAnd": arith.andi, "BitOr": arith.ori,
                  "BitXor": arith.xori, "LShift": arith.shli, "RShift": arith.shrsi if s else arith.shrui}.get(opn)
        if fn is None:
            raise self.err(node, f"operator '{opn}' is not supported on {t}")
        return TV(fn(x, y), t)

    def index_binop(self, node, op, a, b):
        def as_idx(v):
            if isinstance(v, Idx):
                return v
            if isinstance(v, Literal) and isinstance(v.value, (int, bool)):
                return Idx.const(int(v.value))
            raise self.err(node, f"cannot combine an index with {self.describe(v)}: cast it with index(...) "
                                 "or the index to a number type with e.g. float32(i)", KernelTypeError)
        a, b = as_idx(a), as_idx(b)
        opn = type(op).__name__
        if opn == "Add":
            return a + b
        if opn == "Sub":
            return a - b
        if opn == "Mult":
            if b.is_const:
                return a.mul_const(b.a)
            if a.is_const:
                return b.mul_const(a.a)
            return Idx.leaf(arith.muli(a.materialize(), b.materialize()), affine_ok=False)
        if opn in ("FloorDiv", "Mod") and b.is_const and b.a > 0:
            return a.floordiv_const(b.a) if opn == "FloorDiv" else a.mod_const(b.a)
        if opn in ("FloorDiv", "Mod"):
            f = arith.floordivsi if opn == "FloorDiv" else arith.remsi
            return Idx.leaf(f(a.materialize(), b.materialize()), affine_ok=False)
        raise self.err(node, f"operator '{opn}' is not supported on indices")

    def expr_Compare(self, node):
        if len(node.ops) != 1:
            raise self.err(node, "chained comparisons are not supported; combine two comparisons with 'and'")
        a, b = self.eval(node.left), self.eval(node.comparators[0])
        opn = type(node.ops[0]).__name__
        if isinstance(a, Literal) and isinstance(b, Literal):
            return Literal(_py_compare(opn, a.value, b.value))
        if isinstance(a, Idx) or isinstance(b, Idx):
            a = TV(self.as_index(node, a).materialize(), index_t)
            b = TV(self.as_index(node, b).materialize(), index_t)
        a, b = self.unify(node, a, b)
        t = a.dtype
        if t.is_float:
            pred = {"Lt": 4, "LtE": 5, "Gt": 2, "GtE": 3, "Eq": 1, "NotEq": 13}[opn]  # olt ole ogt oge oeq une
            return TV(arith.cmpf(pred, a.value, b.value), Int(1))
        s = t.signed or t.is_index
        pred = {"Eq": 0, "NotEq": 1, "Lt": 2 if s else 6, "LtE": 3 if s else 7, "Gt": 4 if s else 8,
                "GtE": 5 if s else 9}[opn]
        return TV(arith.cmpi(pred, a.value, b.value), Int(1))

    def expr_BoolOp(self, node):
        vals = [self.as_bool(node, self.eval(v)) for v in node.values]
        f = arith.andi if isinstance(node.op, ast.And) else arith.ori
        acc = vals[0]
        for v in vals[1:]:
            if isinstance(acc, Literal) and isinstance(v, Literal):
                acc = Literal(acc.value and v.value if isinstance(node.op, ast.And) else acc.value or v.value)
                continue
            acc = self.coerce(node, acc, Int(1))
            acc = TV(f(acc.value, self.coerce(node, v, Int(1)).value), Int(1))
        return acc

    def expr_IfExp(self, node):
        c = self.as_bool(node, self.eval(node.test))
        a, b = self.eval(node.body), self.eval(node.orelse)
        if isinstance(c, Literal):
            return a if c.value else b
        if isinstance(a, Literal) and isinstance(b, Literal):
            return LiteralSelect(c, a, b)  # typed later, by whatever it meets
        a, b = self.unify(node, a, b)
        return TV(arith.select(c.value, a.value, b.value), a.dtype)

    def expr_Call(self, node):
        callee = self.eval(node.func) if not isinstance(node.func, ast.Name) or self.lookup(node.func.id) \
            else self.globals.get(node.func.id, getattr(builtins, node.func.id, None))
        name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
        if node.keywords:
            raise self.err(node, f"keyword arguments are not supported in calls inside kernels ({name})")
        if callee is None:
            raise self.err(node, f"name '{name}' is not defined")
        if isinstance(callee, DType):
            return self.cast(node, self.eval(node.args[0]), callee)
        if callee in (builtins.max, builtins.min):
            return self.minmax(node, callee is builtins.max, [self.eval(a) for a in node.args])
        if callee is builtins.abs:
            return self.unary_math(node, "abs", self.eval(node.args[0]))
        if callee is builtins.round:  # Python rounds half to even, and so does math.roundeven
            if len(node.args) != 1:
                raise self.err(node, "round() takes exactly one argument inside kernels")
            return self.unary_math(node, "round", self.eval(node.args[0]))
        if callee is builtins.float:
            v = self.try_const(node)
            if v is not None:
                return Literal(float(v))
        lang_name = getattr(callee, "__allo_builtin__", None)
        if lang_name in _MATH_UNARY or lang_name == "abs":
            if len(node.args) != 1:
                raise self.err(node, f"{lang_name}() takes one argument")
            return self.unary_math(node, lang_name, self.eval(node.args[0]))
        if lang_name in ("max", "min"):
            return self.minmax(node, lang_name == "max", [self.eval(a) for a in node.args])
        if is_kernel(callee):
            return self.call_kernel(node, callee, [self.eval(a) for a in node.args])
        if callable(callee):
            # Compile-time helper (e.g. an index permutation): run it on symbolic indices.
            args = [self.eval(a) for a in node.args]
            def unwrap(a):
                if isinstance(a, Literal):
                    return a.value
                if isinstance(a, tuple):
                    return tuple(unwrap(x) for x in a)
                return a

            try:
                return self.from_python(node, callee(*[unwrap(a) for a in args]))
            except Exception as e:  # noqa: BLE001
                raise self.err(node, f"compile-time call '{name}(...)' failed: {e}. Only kernels (functions whose "
                                     "arguments are all annotated with types), the language's math functions and "
                                     "helpers working on indices/tuples can be called") from e
        raise self.err(node, f"'{name}' is not callable in a kernel")

    def call_kernel(self, node, callee, args):
        names, arg_types, res_types = kernel_signature(callee)
        if len(args) != len(arg_types):
            raise self.err(node, f"kernel '{callee.__name__}' takes {len(arg_types)} argument(s), got {len(args)}")
        operands = []
        for n, t, a in zip(names, arg_types, args):
            if isinstance(t, ArrayType):
                if not isinstance(a, Buffer):
                    raise self.err(node, f"argument '{n}' of '{callee.__name__}' must be an array of type {t}")
                self.check_same_type(node, a.type, t, f"argument '{n}' of '{callee.__name__}'")
                operands.append(a.value)
            elif t.is_index:
                operands.append(self.as_index(node, a).materialize())
            else:
                operands.append(self.coerce(node, a, t).value)
        sym = self.mb.compile_function(callee)
        call = func.CallOp([t.mlir() for t in res_types], ir.FlatSymbolRefAttr.get(sym), operands)
        outs = []
        for k, (t, r) in enumerate(zip(res_types, call.results)):
            outs.append(Buffer(r, t, f"{callee.__name__}_out{k}") if isinstance(t, ArrayType) else TV(r, t))
        if not outs:
            return None
        return outs[0] if len(outs) == 1 else tuple(outs)

    def unary_math(self, node, name, v):
        if isinstance(v, Literal):
            f = {"exp": pymath.exp, "log": pymath.log, "sqrt": pymath.sqrt, "tanh": pymath.tanh,
                 "erf": pymath.erf, "abs": builtins.abs, "floor": pymath.floor, "ceil": pymath.ceil,
                 "round": builtins.round}[name]
            return Literal(f(v.value))
        if isinstance(v, Idx):
            raise self.err(node, f"{name}() of an index: cast it first, e.g. {name}(float32(i))", KernelTypeError)
        if name == "abs":
            if v.dtype.is_int and not v.dtype.signed:
                return v  # math.absi reads the bits as signed
            return TV(math.absf(v.value) if v.dtype.is_float else math.absi(v.value), v.dtype)
        if not v.dtype.is_float:
            raise self.err(node, f"{name}() needs a float operand, got {v.dtype}; cast with float32(...)",
                           KernelTypeError)
        return TV(_MATH_UNARY[name](v.value), v.dtype)

    def minmax(self, node, is_max, vals):
        if len(vals) < 2:
            raise self.err(node, "max()/min() take at least two arguments")
        acc = vals[0]
        for v in vals[1:]:
            if isinstance(acc, Literal) and isinstance(v, Literal):
                acc = Literal(max(acc.value, v.value) if is_max else min(acc.value, v.value))
                continue
            a, b = self.unify(node, acc, v)
            t = a.dtype
            if t.is_float:  # maximumf/minimumf propagate NaN, as torch does
                f = arith.maximumf if is_max else arith.minimumf
            elif t.signed:
                f = arith.maxsi if is_max else arith.minsi
            else:
                f = arith.maxui if is_max else arith.minui
            acc = TV(f(a.value, b.value), t)
        return acc

    # ------------------------------------------------------------------ types
    def describe(self, v) -> str:
        if isinstance(v, TV):
            return f"a {v.dtype} value"
        if isinstance(v, Literal):
            return f"the constant {v.value!r}"
        if isinstance(v, Buffer):
            return f"the array '{v.name}' ({v.type})"
        return repr(v)

    def as_index(self, node, v) -> Idx:
        if isinstance(v, Idx):
            return v
        if isinstance(v, Literal) and isinstance(v.value, (int, bool)):
            return Idx.const(int(v.value))
        if isinstance(v, TV) and v.dtype.is_index:
            return Idx.leaf(v.value, affine_ok=False)
        raise self.err(node, f"subscripts must be indices (loop variables and ints), got {self.describe(v)}; "
                             "convert with index(...)", KernelTypeError)

    def as_bool(self, node, v):
        if isinstance(v, Literal):
            return Literal(bool(v.value))
        if isinstance(v, TV) and v.dtype == Int(1):
            return v
        raise self.err(node, f"a condition must be a comparison or bool, got {self.describe(v)}", KernelTypeError)

    def unify(self, node, a, b) -> tuple[TV, TV]:
        if isinstance(a, LiteralSelect) and isinstance(b, TV):
            return self.coerce(node, a, b.dtype), b
        if isinstance(b, LiteralSelect) and isinstance(a, TV):
            return a, self.coerce(node, b, a.dtype)
        if isinstance(a, Literal) and isinstance(b, TV):
            return self.coerce(node, a, b.dtype), b
        if isinstance(b, Literal) and isinstance(a, TV):
            return a, self.coerce(node, b, a.dtype)
        if not (isinstance(a, TV) and isinstance(b, TV)):
            raise self.err(node, f"cannot combine {self.describe(a)} with {self.describe(b)}", KernelTypeError)
        if a.dtype != b.dtype:
            raise self.err(node, f"type mismatch: {a.dtype} and {b.dtype}; convert one explicitly, e.g. "
                                 f"{b.dtype}(x)", KernelTypeError)
        return a, b

    def coerce(self, node, v, t: DType) -> TV:
        """``v`` as type ``t``: literals adopt it; typed values must already have it."""
        if isinstance(v, LiteralSelect):
            a, b = self.coerce(node, v.a, t), self.coerce(node, v.b, t)
            return TV(arith.select(v.cond.value, a.value, b.value), t)
        if isinstance(v, Literal):
            x = v.value
            if t.is_float:
                return TV(arith.constant(t.mlir(), float(x)), t)
            if isinstance(x, float) and not float(x).is_integer():
                raise self.err(node, f"the float constant {x!r} cannot be used as {t}", KernelTypeError)
            if t.is_fixed:
                raise self.err(node, f"constants of type {t} are not supported yet", KernelTypeError)
            return TV(arith.constant(t.mlir(), int(x)), t)
        if isinstance(v, Idx):
            if t.is_index:
                return TV(v.materialize(), t)
            raise self.err(node, f"type mismatch: index and {t}; convert explicitly with {t}(i)", KernelTypeError)
        if not isinstance(v, TV):
            raise self.err(node, f"expected a {t} scalar, got {self.describe(v)}", KernelTypeError)
        if v.dtype != t:
            raise self.err(node, f"type mismatch: {v.dtype} value where {t} is expected; convert explicitly "
                                 f"with {t}(...)", KernelTypeError)
        return v

    def check_same_type(self, node, got: ArrayType, want: ArrayType, what: str):
        if got != want:
            raise self.err(node, f"type mismatch for {what}: expected {want}, got {got}", KernelTypeError)

    def cast(self, node, v, t: DType) -> TV | Literal:
        if isinstance(v, Literal):
            return self.coerce(node, Literal(float(v.value) if t.is_float else int(v.value)), t)
        if isinstance(v, Idx):
            v = TV(v.materialize(), index_t)
        if not isinstance(v, TV):
            raise self.err(node, f"cannot cast {self.describe(v)} to {t}", KernelTypeError)
        s, x = v.dtype, v.value
        if s == t:
            return v
        if t.is_fixed or s.is_fixed:
            raise self.err(node, f"casts between {s} and {t} are not supported yet", KernelTypeError)
        tm = t.mlir()
        if s.is_index or t.is_index:
            if s.is_index and t.is_float:
                return TV(arith.sitofp(tm, arith.index_cast(ir.IntegerType.get_signless(64), x)), t)
            if s.is_float and t.is_index:
                return TV(arith.index_cast(tm, arith.fptosi(ir.IntegerType.get_signless(64), x)), t)
            return TV(arith.index_cast(tm, x), t)
        if s.is_float and t.is_float:
            return TV(arith.extf(tm, x) if t.bits > s.bits else arith.truncf(tm, x), t)
        if s.is_float:
            return TV(arith.fptosi(tm, x) if t.signed else arith.fptoui(tm, x), t)
        if t.is_float:
            return TV(arith.sitofp(tm, x) if s.signed else arith.uitofp(tm, x), t)
        if t.bits > s.bits:
            return TV(arith.extsi(tm, x) if s.signed else arith.extui(tm, x), t)
        if t.bits < s.bits:
            return TV(arith.trunci(tm, x), t)
        return TV(x, t)


def _floored_remsi(x, y, t):
    """Python's ``%`` on signed ints (the result takes the divisor's sign), to match ``//``, which is
    floored too; ``arith.remsi`` alone is C's truncated remainder."""
    r = arith.remsi(x, y)
    zero = arith.constant(t.mlir(), 0)
    fix = arith.andi(arith.cmpi(1, r, zero), arith.cmpi(2, arith.xori(r, y), zero))  # r != 0 and sign(r) != sign(y)
    return arith.select(fix, arith.addi(r, y), r)


def _floored_remf(x, y):
    """Python's ``%`` on floats (``torch.remainder``): ``remf`` is C's fmod, which keeps the dividend's sign."""
    r = arith.remf(x, y)
    zero = arith.constant(x.type, 0.0)
    fix = arith.andi(arith.cmpf(13, r, zero), arith.xori(arith.cmpf(4, r, zero), arith.cmpf(4, y, zero)))
    return arith.select(fix, arith.addf(r, y), r)


def _py_binop(op, a, b, err):
    n = type(op).__name__
    import operator as o
    f = {"Add": o.add, "Sub": o.sub, "Mult": o.mul, "Div": o.truediv, "FloorDiv": o.floordiv, "Mod": o.mod,
         "Pow": o.pow}.get(n)
    if f is None:
        raise err
    return f(a, b)


def _py_compare(n, a, b):
    import operator as o
    return {"Lt": o.lt, "LtE": o.le, "Gt": o.gt, "GtE": o.ge, "Eq": o.eq, "NotEq": o.ne}[n](a, b)
