"""Statements of Allo's language beyond the core: compile-time ``meta_if``/``meta_elif``/
``meta_else``/``meta_for`` blocks, ``ConstExpr`` and ``Stateful`` declarations, nested helper
functions, and array initialisers written as lists.

A mixin of ``FunctionCompiler``. The meta constructs are resolved while compiling: only the taken
branch of a ``meta_if`` chain is emitted, and a ``meta_for`` body is emitted once per value with
the loop variable bound to a constant, as Allo does.
"""
from __future__ import annotations

import __future__
import ast
import copy

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import memref

from . import implicit
from .types import ArrayType, DType
from .values import Buffer, Literal, ScalarVar

META = ("meta_if", "meta_elif", "meta_else", "meta_for")


def meta_kind(stmt) -> str | None:
    if not isinstance(stmt, ast.With) or len(stmt.items) != 1:
        return None
    call = stmt.items[0].context_expr
    if not isinstance(call, ast.Call):
        return None
    f = call.func
    name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
    return name if name in META else None


class AlloStatementsMixin:
    # ------------------------------------------------------------------ compile-time evaluation
    def const_eval(self, node, what: str):
        """Evaluate ``node`` in Python with the kernel's globals and its compile-time locals
        (``meta_for`` variables, ``ConstExpr`` values)."""
        ns = dict(self.globals)
        for scope in self.scopes:
            for k, v in scope.items():
                if isinstance(v, Literal):
                    ns[k] = v.value
                elif k in ns:
                    del ns[k]  # a run-time local shadows a global of the same name
        try:
            return eval(compile(ast.Expression(body=node), self.file, "eval"), ns)  # noqa: S307
        except Exception as e:  # noqa: BLE001
            raise self.err(node, f"{what} '{ast.unparse(node)}' must be computable at compile time: {e}") from None

    # ------------------------------------------------------------------ meta_if / meta_for
    def visit_meta(self, stmt, kind: str, chain):
        """Returns the new chain state: None (no open chain) or whether a branch was taken."""
        call = stmt.items[0].context_expr
        if kind == "meta_for":
            if stmt.items[0].optional_vars is None or not isinstance(stmt.items[0].optional_vars, ast.Name):
                raise self.err(stmt, "meta_for needs a loop variable: 'with allo.meta_for(N) as i:'")
            args = [self.const_eval(a, "meta_for bound") for a in call.args]
            var = stmt.items[0].optional_vars.id
            for v in range(*[int(a) for a in args]):
                self.scopes.append({var: Literal(v)})
                self.visit_body(stmt.body)
                self.scopes.pop()
            return None
        if kind in ("meta_elif", "meta_else") and chain is None:
            raise self.err(stmt, f"{kind} without a preceding meta_if")
        if kind == "meta_else":
            if not chain:
                self.visit_body(stmt.body)
            return None
        if kind == "meta_elif" and chain:
            return True
        cond = self.const_eval(call.args[0], kind + " condition") if call.args else None
        if cond:
            self.visit_body(stmt.body)  # same scope: a 'return' in a taken branch ends the kernel
        return bool(cond)

    def visit_With(self, node):
        raise self.err(node, "'with' is only supported for allo.meta_if/meta_elif/meta_else/meta_for")

    # ------------------------------------------------------------------ declarations
    def ann_assign_special(self, node) -> bool:
        """ConstExpr / Stateful declarations and list initialisers; False if not one of those."""
        ann = node.annotation
        name = node.target.id
        if isinstance(ann, ast.BinOp) and isinstance(ann.op, ast.MatMult):
            marker = self.try_const(ann.right)
            if getattr(marker, "kind", None) == "Stateful":
                self.declare_stateful(node, name, self.try_const(ann.left))
                return True
        t = self.try_const(ann)
        if getattr(t, "kind", None) == "ConstExpr":
            if node.value is None:
                raise self.err(node, f"ConstExpr '{name}' needs a value computable at compile time")
            v = self.const_eval(node.value, "ConstExpr value")
            inner = t.inner
            if isinstance(inner, DType):
                v = float(v) if inner.is_float else int(v)
            self.bind(name, Literal(v))
            return True
        if isinstance(t, ArrayType) and isinstance(node.value, (ast.List, ast.Tuple)):
            vals = np.array(self.const_eval(node.value, "array initialiser"), dtype=t.dtype.numpy)
            if vals.shape != t.shape:
                raise self.err(node, f"initialiser of '{name}' has shape {vals.shape}, the array {t}")
            buf = self.alloc(t, name, node)
            self.copy_buffer(self.mb.constant_buffer(vals, node_name=name), buf)
            self.bind(name, buf)
            return True
        return False

    def declare_stateful(self, node, name: str, t):
        """``x: int32 @ Stateful = 0``: a variable that keeps its value from one call to the next,
        held in a ``memref.global`` (a ``static`` variable in C)."""
        if not isinstance(t, (DType, ArrayType)):
            raise self.err(node, f"Stateful '{name}' needs a type such as int32 or float32[4]")
        at = t if isinstance(t, ArrayType) else t[()]
        init = 0 if node.value is None else self.const_eval(node.value, "Stateful initial value")
        arr = np.broadcast_to(np.array(init, dtype=at.dtype.numpy), at.shape).copy()
        sym = self.mb._unique(f"__stateful_{self.sym_name}_{name}")
        with ir.InsertionPoint.at_block_begin(self.mb.module.body), ir.Location.unknown():
            attr = ir.DenseElementsAttr.get(arr, type=ir.RankedTensorType.get(list(arr.shape), at.dtype.mlir())) \
                if at.dtype.bits not in (1,) else ir.DenseElementsAttr.get_splat(
                    ir.RankedTensorType.get(list(arr.shape), at.dtype.mlir()),
                    ir.IntegerAttr.get(at.dtype.mlir(), int(arr.flat[0]) if arr.size else 0))
            memref.GlobalOp(sym, ir.TypeAttr.get(at.mlir()), sym_visibility="private", initial_value=attr)
        ref = memref.get_global(at.mlir(), sym)
        if isinstance(t, ArrayType):
            self.bind(name, Buffer(ref, t, name))
            self.buffer_names.add(name)
        else:
            self.bind(name, ScalarVar(ref, t, name))

    # ------------------------------------------------------------------ while loops
    def visit_While(self, node):
        """``while cond: body`` (Allo): an ``scf.while`` re-evaluating ``cond`` before each iteration."""
        if not implicit.enabled():
            raise self.err(node, "unsupported construct 'While' "
                                 f"({ast.unparse(node)[:60]!r}); see allo_ext.lang for what kernels may contain")
        if node.orelse:
            raise self.err(node, "'while ... else' is not supported")
        from torch_mlir.dialects import scf

        w = scf.WhileOp([], [])
        before = w.before.blocks.append()
        after = w.after.blocks.append()
        with ir.InsertionPoint(before):
            cond = self.as_bool(node, self.eval(node.test))
            if isinstance(cond, Literal):
                raise self.err(node, "a while loop needs a condition that changes at run time")
            scf.ConditionOp(cond.value, [])
        with ir.InsertionPoint(after):
            self.scopes.append({})
            self.visit_body(node.body)
            self.scopes.pop()
            scf.YieldOp([])

    # ------------------------------------------------------------------ nested functions
    def visit_FunctionDef(self, node):
        """A helper defined inside a kernel: compiled as a kernel of its own when called."""
        if implicit.enabled():  # Allo: a nested function's parameters may not shadow the kernel's names
            clash = [a.arg for a in node.args.args if self.lookup(a.arg) is not None] + \
                ([node.name] if self.lookup(node.name) is not None else [])
            if clash:
                raise self.err(node, f"nested function '{node.name}' redefines {', '.join(map(repr, clash))}, "
                                     "already defined in the enclosing kernel")
        fdef = copy.deepcopy(node)
        ast.increment_lineno(fdef, self.first_line - 1)
        fdef.decorator_list = []
        ns = dict(self.globals)
        code = compile(ast.Module(body=[fdef], type_ignores=[]), self.file, "exec",
                       flags=__future__.annotations.compiler_flag, dont_inherit=True)
        exec(code, ns)  # noqa: S102
        self.bind(node.name, ns[node.name])
