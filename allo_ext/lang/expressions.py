"""Expressions of the kernel language: every ``expr_*`` visitor, operators, calls and math.

A mixin of ``FunctionCompiler``: it relies on the compiler's scopes (``lookup``), errors
(``err``), memory helpers (``load``, ``subscript``) and the typing rules of ``CoercionMixin``.
"""
from __future__ import annotations

import ast
import builtins
import math as pymath

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import arith, func, math, memref

from . import implicit
from .errors import KernelTypeError
from .array_ops import ARRAY_BUILTINS, _is_array
from .fixed_ops import is_fixed_operand
from .index_expr import Idx
from .signature import is_kernel, kernel_signature
from .types import ArrayType, DType, Int, index as index_t
from .values import TV, Buffer, Literal, LiteralSelect, ScalarVar, Table

_MATH_UNARY = {"exp": math.exp, "log": math.log, "sqrt": math.sqrt, "tanh": math.tanh, "erf": math.erf,
               "floor": math.floor, "ceil": math.ceil, "round": math.roundeven, "sin": math.sin, "cos": math.cos,
               "tan": math.tan, "log2": math.log2, "log10": math.log10, "atan": math.atan}


class ExpressionsMixin:
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
        if isinstance(v, Table):
            return self.mb.constant_buffer(np.asarray(v.values), node_name=getattr(node, "id", "table"), dtype=v.dtype)
        if isinstance(v, np.ndarray):
            return self.mb.constant_buffer(v, node_name=getattr(node, "id", "const"))
        return v  # functions, types: resolved by the caller

    def expr_Tuple(self, node):
        return tuple(self.eval(e) for e in node.elts)

    expr_List = expr_Tuple  # compile-time sequences (of indices or constants) behave like tuples

    def expr_Subscript(self, node):
        base = self.eval(node.value)
        if callable(base) and not isinstance(base, (DType, Buffer)):  # k[T, M]: instantiate a generic kernel
            from .generic import instantiate

            args = self.try_const(node.slice)
            if args is None:
                raise self.err(node, f"the type arguments of '{ast.unparse(node)}' must be compile-time values")
            try:
                return instantiate(base, args)
            except KernelTypeError:
                raise
            except Exception as e:  # noqa: BLE001
                raise self.err(node, str(e)) from e
        if isinstance(base, tuple):  # compile-time tuple indexing, e.g. i[0] of a grid tuple
            k = self.try_const(node.slice)
            if not isinstance(k, int):
                raise self.err(node, "tuples can only be indexed by compile-time ints")
            return base[k]
        if isinstance(base, (TV, Idx)):  # bit access on an integer: x[i], x[lo:hi]
            return self.bit_get(node, base, node.slice)
        r = self.index_or_view(node, base)
        if not isinstance(r, tuple):
            return r  # a sub-view (A[i] of a 2-D array) or a slice
        return self.load(*r)

    def expr_Attribute(self, node):
        if node.attr == "T" and not isinstance(node.value, ast.Name) or (
                node.attr == "T" and isinstance(node.value, ast.Name) and self.lookup(node.value.id) is not None):
            base = self.eval(node.value)
            if _is_array(base):
                return self.transpose(node, self.as_buffer(base), None)
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
            if v.dtype.is_fixed:
                return self.fixed_neg(v)
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
        if _is_array(a) or _is_array(b):  # whole arrays (Allo): elementwise with broadcasting
            return self.array_binop(node, op, a, b)
        if isinstance(a, Literal) and isinstance(b, Literal):
            return Literal(_py_binop(op, a.value, b.value, self.err(node, "bad operator")))
        if is_fixed_operand(a) or is_fixed_operand(b):
            return self.fixed_binop(node, op, a, b)
        if isinstance(a, Idx) or isinstance(b, Idx):
            return self.index_binop(node, op, a, b)
        opn = type(op).__name__
        if implicit.enabled() and opn in ("Add", "Sub", "Mult"):
            a, b = implicit.widen_operands(self, node, opn, a, b)
        a, b = self.unify(node, a, b)
        t = a.dtype
        x, y = a.value, b.value
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
        if implicit.enabled():  # Allo: an index meeting a typed number takes the number's type
            for x, y in ((a, b), (b, a)):
                if isinstance(x, Idx) and isinstance(y, TV) and not y.dtype.is_index and not y.dtype.is_fixed:
                    cx = self.cast(node, x, y.dtype)
                    return self.binop(node, op, cx, y) if x is a else self.binop(node, op, y, cx)

        def as_idx(v):
            if isinstance(v, Idx):
                return v
            if isinstance(v, TV) and v.dtype.is_index:
                return Idx.leaf(v.value, affine_ok=False)
            if isinstance(v, Literal) and isinstance(v.value, (int, bool)):
                return Idx.const(int(v.value))
            raise self.err(node, f"cannot combine an index with {self.describe(v)}: cast it with index(...) "
                                 "or the index to a number type with e.g. float32(i)", KernelTypeError)
        a, b = as_idx(a), as_idx(b)
        opn = type(op).__name__
        bit = {"LShift": arith.shli, "RShift": arith.shrsi, "BitAnd": arith.andi, "BitOr": arith.ori,
               "BitXor": arith.xori}.get(opn)
        if bit is not None:
            return TV(bit(a.materialize(), b.materialize()), index_t)
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
        if is_fixed_operand(a) or is_fixed_operand(b):
            return self.fixed_compare(node, opn, a, b)
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
        if (isinstance(node.func, ast.Attribute) and node.func.attr in ("reverse", "bitcast") and not node.args
                and not (isinstance(node.func.value, ast.Name) and self.lookup(node.func.value.id) is None)):
            return self.bit_method(node, self.eval(node.func.value), node.func.attr)
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("reverse", "bitcast") and not node.args \
                and isinstance(node.func.value, (ast.Subscript, ast.Call, ast.BinOp)):
            return self.bit_method(node, self.eval(node.func.value), node.func.attr)
        callee = self.eval(node.func) if not isinstance(node.func, ast.Name) or self.lookup(node.func.id) \
            else self.globals.get(node.func.id, getattr(builtins, node.func.id, None))
        name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
        lang_name = getattr(callee, "__allo_builtin__", None)
        unary = lang_name in _MATH_UNARY or lang_name == "abs"
        if lang_name in ARRAY_BUILTINS or (unary and node.args and not node.keywords
                                           and _is_array(arg0 := self.eval(node.args[0]))):
            if unary:
                return self.array_unary(node, lang_name, arg0)
            kwargs = {k.arg: self.try_const(k.value) if self.try_const(k.value) is not None else self.eval(k.value)
                      for k in node.keywords if k.arg != "name"}
            return self.array_call(node, lang_name, [self.eval(a) for a in node.args], kwargs)
        if unary and node.args and not node.keywords:
            if len(node.args) != 1:
                raise self.err(node, f"{lang_name}() takes one argument")
            return self.unary_math(node, lang_name, arg0)
        if node.keywords and not (lang_name and all(k.arg == "name" for k in node.keywords)):
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
        if callee in (builtins.float, builtins.int):
            v = self.try_const(node)
            if v is not None:
                return Literal(callee(v))
            if len(node.args) == 1 and implicit.enabled():  # Allo: float(x) is a float32 cast, int(x) int32
                from .types import float32, int32

                return self.cast(node, self.eval(node.args[0]), float32 if callee is builtins.float else int32)
        lang_name = getattr(callee, "__allo_builtin__", None)
        if lang_name == "power":
            if len(node.args) != 2:
                raise self.err(node, "power() takes two arguments")
            return self.binop(node, ast.Pow(), self.eval(node.args[0]), self.eval(node.args[1]))
        if lang_name in _MATH_UNARY or lang_name == "abs":
            if len(node.args) != 1:
                raise self.err(node, f"{lang_name}() takes one argument")
            return self.unary_math(node, lang_name, self.eval(node.args[0]))
        if lang_name == "atan2":
            if len(node.args) != 2:
                raise self.err(node, "atan2() takes two arguments (y, x)")
            y, x = self.unify(node, self.eval(node.args[0]), self.eval(node.args[1]))
            if not y.dtype.is_float:
                raise self.err(node, f"atan2() needs float operands, got {y.dtype}", KernelTypeError)
            return TV(math.atan2(y.value, x.value), y.dtype)
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
        operands, copy_back = [], []
        for n, t, a in zip(names, arg_types, args):
            if isinstance(t, ArrayType) and type(a).__name__ == "View":  # passed by copy-in/copy-out
                tmp = self.materialize_view(a, f"{a.name}_arg")
                copy_back.append((a, tmp))
                a = tmp
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
        for view, tmp in copy_back:
            self.write_view(view, tmp)
        outs = []
        for k, (t, r) in enumerate(zip(res_types, call.results)):
            outs.append(Buffer(r, t, f"{callee.__name__}_out{k}") if isinstance(t, ArrayType) else TV(r, t))
        if not outs:
            return None
        return outs[0] if len(outs) == 1 else tuple(outs)

    def unary_math(self, node, name, v):
        if isinstance(v, Literal):
            f = {"exp": pymath.exp, "log": pymath.log, "sqrt": pymath.sqrt, "tanh": pymath.tanh, "sin": pymath.sin,
                 "cos": pymath.cos, "tan": pymath.tan, "log2": pymath.log2, "log10": pymath.log10,
                 "erf": pymath.erf, "abs": builtins.abs, "floor": pymath.floor, "ceil": pymath.ceil,
                 "atan": pymath.atan,
                 "round": builtins.round}[name]
            return Literal(f(v.value))
        if isinstance(v, Idx):
            raise self.err(node, f"{name}() of an index: cast it first, e.g. {name}(float32(i))", KernelTypeError)
        if name == "abs" and v.dtype.is_fixed:
            return self.fixed_abs(node, v)
        if v.dtype.is_fixed:
            raise self.err(node, f"{name}() of a fixed-point value: cast it to float32 first, or use a lookup "
                                 "table (see allo_ext.kernels.nn for exp and reciprocal tables)", KernelTypeError)
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
            if is_fixed_operand(acc) or is_fixed_operand(v):
                acc = self.fixed_minmax(node, is_max, acc, v)
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
