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
import contextlib
import inspect
import textwrap
from typing import Callable

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import affine, func, memref, scf

from .allo_stmts import AlloStatementsMixin, meta_kind
from .array_ops import ArrayOpsMixin
from .bits import BitsMixin
from .views import View, ViewsMixin
from . import implicit
from .coercion import CoercionMixin
from .errors import KernelSyntaxError
from .expressions import ExpressionsMixin
from .fixed_ops import FixedMixin
from .index_expr import Idx, affine_access
from .signature import _namespace, is_kernel, kernel_signature  # noqa: F401  (kernel_signature, is_kernel: public here)
from .types import ArrayType, DType
from . import fixed as _fx
from .values import TV, Buffer, Literal, ScalarVar


def _yield(loop):
    if isinstance(loop, scf.ForOp):
        scf.YieldOp([])
    else:
        affine.AffineYieldOp([])


class FunctionCompiler(AlloStatementsMixin, ViewsMixin, ArrayOpsMixin, BitsMixin, ExpressionsMixin, FixedMixin,
                       CoercionMixin, ast.NodeVisitor):
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
        chain = None  # state of an open meta_if/meta_elif/meta_else chain (see allo_stmts)
        for i, s in enumerate(stmts):
            kind = meta_kind(s)
            if self.returned and not (kind in ("meta_elif", "meta_else") and chain is not None):
                raise self.err(s, "statements after 'return' are not allowed")
            if kind is not None:
                self._line = self.first_line + s.lineno - 1
                with self.loc(s):
                    chain = self.visit_meta(s, kind, chain)
                continue
            chain = None
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
        if self.ann_assign_special(node):
            return
        t = self.try_const(node.annotation)
        if isinstance(t, ArrayType):
            buf = self.alloc(t, name, node)
            if node.value is not None:
                init = self.eval(node.value)
                if isinstance(init, View):
                    init = self.materialize_view(init)
                if isinstance(init, Buffer):
                    if not (implicit.enabled() and init.type.shape == t.shape):  # Allo casts element-wise
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
                if isinstance(t, ast.Subscript):
                    self.store_subscript(t, v, node)
                    continue
                if not isinstance(t, ast.Name):
                    raise self.err(node, "tuple assignment targets must be names or array elements")
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
            if isinstance(val, (Buffer, Idx, tuple, View)):
                if isinstance(val, Buffer) and target.id not in self.buffer_names:
                    self.buffer_names.add(target.id)
                    if implicit.enabled():  # Allo addresses a call's result by the name it is bound to
                        self.name_call_result(val, target.id)
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
        none = node.value is None or (isinstance(node.value, ast.Constant) and node.value.value is None)
        vals = [] if none else self.eval(node.value)
        vals = list(vals) if isinstance(vals, tuple) else [vals]
        if len(vals) != len(self.res_types):
            raise self.err(node, f"returns {len(vals)} value(s) but the signature declares {len(self.res_types)}")
        out = []
        for v, t in zip(vals, self.res_types):
            if isinstance(v, View):
                v = self.materialize_view(v)
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
        if fname.endswith("grid") or fname.endswith("reduction"):
            dims, tuple_target = [], False
            for a in it.args:
                v = self.try_const(a.value if isinstance(a, ast.Starred) else a)
                if isinstance(a, ast.Starred) or isinstance(v, (tuple, list)):
                    tuple_target = True
                    dims.extend(v if v is not None else [None])
                else:
                    dims.append(v)
            if any(not isinstance(d, (int, np.integer)) for d in dims):
                if not implicit.enabled() or tuple_target:
                    raise self.err(node, f"grid bounds must be compile-time ints, got {ast.unparse(it)!r}")
                dims = [self.loop_bound(node, a) for a in it.args]
            band = self.try_const(kw["name"]) if "name" in kw else None
            self.emit_grid(node, [(0, d if isinstance(d, Idx) else int(d), 1) for d in dims], band, tuple_target,
                           self.loop_hints(node, kw))
        elif fname == "range":
            args = [self.try_const(a) for a in it.args]
            if any(not isinstance(a, (int, np.integer)) for a in args) and implicit.enabled() and 1 <= len(args) <= 3:
                # Allo: bounds may be run-time values (an scf.for); the step must be a positive constant
                args = [self.loop_bound(node, a) for a in it.args]
                if len(args) == 3 and isinstance(args[2], int) and args[2] <= 0:
                    raise self.err(node, f"range step must be positive, got {ast.unparse(it)!r}")
            elif any(not isinstance(a, (int, np.integer)) for a in args) or not 1 <= len(args) <= 3:
                raise self.err(node, f"range bounds must be compile-time ints, got {ast.unparse(it)!r}")
            lb, ub, step = (0, args[0], 1) if len(args) == 1 else (args[0], args[1], args[2] if len(args) == 3 else 1)
            if isinstance(lb, Idx) or isinstance(ub, Idx) or isinstance(step, Idx):
                band = self.try_const(kw["name"]) if "name" in kw else None
                self.emit_grid(node, [(lb, ub, step if isinstance(step, Idx) else int(step))], band, False,
                               self.loop_hints(node, kw))
                return
            if step <= 0:
                raise self.err(node, f"range step must be positive, got {step}")
            band = self.try_const(kw["name"]) if "name" in kw else None
            self.emit_grid(node, [(int(lb), int(ub), int(step))], band, False, self.loop_hints(node, kw))
        else:
            raise self.err(node, f"cannot loop over '{fname}(...)': use grid(...) or range(...)")

    def loop_hints(self, node, kw) -> dict:
        """``pipeline=``/``unroll=`` of a loop header, as Allo reads them: ``True`` or a number applies
        to the innermost loop (II 1 / full unroll for ``True``), a list gives one value per loop."""
        hints = {}
        for key in ("pipeline", "unroll"):
            if key not in kw:
                continue
            v = self.try_const(kw[key])
            ok = isinstance(v, (bool, int, np.integer)) or (
                isinstance(v, (list, tuple)) and all(isinstance(x, (bool, int, np.integer)) for x in v))
            if not ok:
                raise self.err(node, f"{key}= must be a compile-time bool, int or list of them, got "
                                     f"{ast.unparse(kw[key])!r}")
            hints[key] = v
        unknown = set(kw) - {"name", "pipeline", "unroll"}
        if unknown:
            raise self.err(node, f"unknown loop option(s) {', '.join(sorted(unknown))}; loops take name=, "
                                 "pipeline= and unroll=")
        return hints

    def _apply_hints(self, node, loops, hints):
        for key, v in hints.items():
            per_loop = list(v) if isinstance(v, (list, tuple)) else [False] * (len(loops) - 1) + [v]
            if len(per_loop) > len(loops):
                raise self.err(node, f"{key}= lists {len(per_loop)} values for {len(loops)} loop(s)")
            for loop, x in zip(loops, per_loop):
                if x is False or x is None:
                    continue
                n = int(x) if not isinstance(x, bool) else (1 if key == "pipeline" else 0)
                if key == "pipeline" and n < 1 or key == "unroll" and n < 0:
                    raise self.err(node, f"{key}={x!r} is out of range")
                attr = "hls.pipeline_ii" if key == "pipeline" else "hls.unroll"
                loop.attributes[attr] = ir.IntegerAttr.get(ir.IntegerType.get_signless(32), n)

    def emit_grid(self, node, bounds, band, tuple_target, hints=None):
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
        if implicit.enabled():  # Allo: a loop variable may not redefine a name in scope
            for n in ([bind_as] if bind_as else names):
                if self.lookup(n) is not None:
                    raise self.err(node, f"loop variable '{n}' redefines a name already defined in this scope")
        self.scopes.append({})
        ivs, loops = [], []
        # Insertion points are entered by hand (one per loop of the nest); the ExitStack leaves them
        # in reverse order even when the body raises, so the real error reaches the user instead
        # of MLIR's "Unbalanced Location enter/exit".
        with contextlib.ExitStack() as stack:
            for axis, (lb, ub, step) in zip(names, bounds):
                dynamic = isinstance(lb, Idx) or isinstance(ub, Idx) or isinstance(step, Idx)
                if dynamic:  # run-time bounds (Allo): an scf.for over index values
                    lbv = (lb if isinstance(lb, Idx) else Idx.const(lb)).materialize()
                    ubv = (ub if isinstance(ub, Idx) else Idx.const(ub)).materialize()
                    stv = (step if isinstance(step, Idx) else Idx.const(step)).materialize()
                    loop = scf.ForOp(lbv, ubv, stv)
                else:
                    loop = affine.AffineForOp(lb, ub, step)
                full = band if (len(bounds) == 1 and band == axis) else f"{band}.{axis}"
                full = self.unique_loop_name(full)
                loop.attributes["loop_name"] = ir.StringAttr.get(full)
                loop.attributes["op_name"] = ir.StringAttr.get(band)
                iv = Idx.leaf(loop.induction_variable, affine_ok=not dynamic)
                ivs.append(iv)
                loops.append(loop)
                if bind_as is None:
                    self.bind(axis, iv)
                stack.enter_context(ir.InsertionPoint(loop.body))
            if bind_as is not None:
                self.bind(bind_as, tuple(ivs))
            self._apply_hints(node, loops, hints or {})
            self.visit_body(node.body)
            if loops:
                _yield(loops[-1])
        for loop in loops[:-1]:
            with ir.InsertionPoint(loop.body):
                _yield(loop)
        self.scopes.pop()

    def loop_bound(self, node, a):
        """A loop bound under Allo's rules: a compile-time int, or any scalar value as an index."""
        v = self.eval(a)
        if isinstance(v, Literal) and isinstance(v.value, (int, np.integer)):
            return int(v.value)
        return self.as_index(node, v)

    def name_call_result(self, buf: Buffer, name: str):
        """``temp = k(...)``: the call's result is addressed as ``temp`` by the schedule (Allo's ``s.temp``)."""
        owner = getattr(buf.value, "owner", None)
        op = getattr(owner, "operation", owner)
        if op is None or getattr(op, "name", None) != "func.call":
            return
        results = list(op.results)
        k = next((i for i, r in enumerate(results) if r == buf.value), None)
        if k is None:
            return
        old = [ir.StringAttr(a).value for a in ir.ArrayAttr(op.attributes["allo.result_names"])] \
            if "allo.result_names" in op.attributes else [""] * len(results)
        old[k] = name
        op.attributes["allo.result_names"] = ir.ArrayAttr.get([ir.StringAttr.get(n) for n in old])

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
        tag_elem(op, t.dtype)
        return Buffer(op.result, t, uname)

    def new_scalar(self, t: DType, name: str) -> ScalarVar:
        # Allocas go to the function entry so loops do not grow the stack.
        entry = self.mb_entry_block()
        with ir.InsertionPoint.at_block_begin(entry):
            op = memref.AllocaOp(ir.MemRefType.get([], t.mlir()), [], [])
        op.attributes["name"] = ir.StringAttr.get(name)
        tag_elem(op, t)
        return ScalarVar(op.result, t, name)

    def mb_entry_block(self):
        f = self.mb.lookup_func(self.sym_name)
        return f.regions[0].blocks[0]

    def store_scalar(self, var: ScalarVar, v: TV):
        memref.store(v.value, var.slot, [])

    def elementwise_nest(self, shape, band: str, body):
        """A loop nest ``band.d0, band.d1, ...`` over ``shape`` calling ``body(indices)`` innermost."""
        loops, ivs = [], []
        with contextlib.ExitStack() as stack:  # see emit_grid
            for k, d in enumerate(shape):
                loop = affine.AffineForOp(0, d, 1)
                loop.attributes["loop_name"] = ir.StringAttr.get(self.unique_loop_name(f"{band}.d{k}"))
                loop.attributes["op_name"] = ir.StringAttr.get(band)
                loop.attributes["allo.generated"] = ir.UnitAttr.get()  # not a loop the user wrote
                ivs.append(Idx.leaf(loop.induction_variable))
                loops.append(loop)
                stack.enter_context(ir.InsertionPoint(loop.body))
            body(ivs)
            if loops:
                affine.AffineYieldOp([])
        for loop in loops[:-1]:
            with ir.InsertionPoint(loop.body):
                affine.AffineYieldOp([])

    def fill(self, buf: Buffer, v: TV):
        self.elementwise_nest(buf.type.shape, f"init_{buf.name}", lambda ivs: self.store(buf, ivs, v))

    def copy_buffer(self, src: Buffer, dst: Buffer):
        self.elementwise_nest(src.type.shape, f"copy_{dst.name}",
                              lambda ivs: self.store(dst, ivs, self.coerce(None, self.load(src, ivs), dst.type.dtype)))

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
        r = self.index_or_view(node, buf)
        if isinstance(r, View):
            raise self.err(node, f"'{ast.unparse(node)}' is a sub-array of '{r.name}' (shape {r.shape}), not an "
                                 "element")
        return r

    def store_subscript(self, target: ast.Subscript, val, node):
        if self.store_bits(target, val, node):  # x[lo:hi] = v on an integer scalar or array element
            return
        r = self.index_or_view(target, self.eval(target.value))
        if isinstance(r, View):
            self.write_view(r, val)
            return
        buf, idx = r
        if isinstance(val, (View, Buffer)):
            raise self.err(node, f"cannot store an array ('{ast.unparse(node.value)}', shape {val.type.shape}) into "
                                 f"the element '{ast.unparse(target)}'")
        self.store(buf, idx, self.coerce(node, val, buf.type.dtype))


def tag_elem(op, dtype: DType):
    """Buffers of fixed-point values say so (``allo.elem``): MLIR sees only their raw integers."""
    if dtype.is_fixed:
        op.attributes["allo.elem"] = ir.StringAttr.get(_fx.spec(dtype))
