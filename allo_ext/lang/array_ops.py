"""Whole-array operations of Allo's language: ``A + B`` on arrays (numpy broadcasting),
``allo.exp(A)`` and the other math functions on arrays, and the array builtins ``matmul``/``bmm``,
``linear``, ``transpose``, ``copy``, ``view``, ``concat``, ``softmax``, ``relu``, ``gelu``,
``layernorm``, ``tril``, ``ones``/``zeros``.

Each becomes a loop nest writing a new buffer, so every backend sees plain affine loops (Allo
lowers them to linalg; the numbers are the same). A mixin of ``FunctionCompiler``.
"""
from __future__ import annotations

import ast
import math as pymath

import numpy as np

from . import implicit
from .index_expr import Idx
from .types import ArrayType, DType, Float
from .values import TV, Buffer, Literal

ARRAY_BUILTINS = {"matmul", "bmm", "linear", "transpose", "copy", "view", "concat", "softmax", "relu", "gelu",
                  "layernorm", "tril", "ones", "zeros", "add", "sub", "mul", "div", "conv2d", "maxpool", "sumpool"}
_BINARY = {"add": ast.Add, "sub": ast.Sub, "mul": ast.Mult, "div": ast.Div}


def _is_array(v) -> bool:
    return isinstance(v, Buffer) or type(v).__name__ == "View"


class ArrayOpsMixin:
    def as_buffer(self, v) -> Buffer:
        return self.materialize_view(v) if type(v).__name__ == "View" else v

    def new_array(self, dtype: DType, shape, name: str) -> Buffer:
        return self.alloc(ArrayType(dtype, tuple(int(d) for d in shape)), name, None)

    # ------------------------------------------------------------------ elementwise
    def _operand_dtype(self, v):
        if _is_array(v):
            return v.type.dtype
        if isinstance(v, TV):
            return v.dtype
        return None

    def array_binop(self, node, op, a, b):
        a = self.as_buffer(a) if _is_array(a) else a
        b = self.as_buffer(b) if _is_array(b) else b
        shapes = [x.type.shape for x in (a, b) if isinstance(x, Buffer)]
        try:
            out_shape = np.broadcast_shapes(*shapes)
        except ValueError:
            raise self.err(node, f"cannot broadcast shapes {' and '.join(map(str, shapes))}") from None
        ta, tb = self._operand_dtype(a), self._operand_dtype(b)
        if ta is not None and tb is not None and ta != tb:
            t = implicit.promote(ta, tb) if implicit.enabled() else None
            if t is None:
                raise self.err(node, f"type mismatch: {ta} and {tb} arrays; convert one explicitly")
        else:
            t = ta or tb
        out = self.new_array(t, out_shape, "binop")

        def elem(x, ivs):
            if not isinstance(x, Buffer):
                return x
            shp = x.type.shape
            lead = len(out_shape) - len(shp)
            idx = [ivs[lead + k] if d != 1 or out_shape[lead + k] == 1 else Idx.const(0) for k, d in enumerate(shp)]
            return self.load(x, idx)

        def body(ivs):
            r = self.binop(node, op, elem(a, ivs), elem(b, ivs))
            self.store(out, ivs, self.coerce(node, r, t))

        self.elementwise_nest(out_shape, "binop", body)
        return out

    def array_unary(self, node, name: str, v):
        v = self.as_buffer(v)
        out = self.new_array(v.type.dtype, v.type.shape, name)
        self.elementwise_nest(v.type.shape, name, lambda ivs: self.store(
            out, ivs, self.unary_math(node, name, self.load(v, ivs))))
        return out

    # ------------------------------------------------------------------ builtins
    def array_call(self, node, name: str, args: list, kwargs: dict):
        args = [self.as_buffer(a) if _is_array(a) else a for a in args]
        if name in _BINARY:
            return self.array_binop(node, _BINARY[name](), args[0], args[1])
        if name == "bmm" and (len(args[0].type.shape) != 3 or len(args[1].type.shape) != 3):
            raise self.err(node, f"bmm takes two 3-D arrays, got {args[0].type} and {args[1].type}")
        if name in ("matmul", "bmm"):
            return self.matmul(node, args[0], args[1])
        if name == "linear":
            x, w = args[0], args[1]
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            wt = self.transpose(node, w, (1, 0))
            y = self.matmul(node, x, wt)
            return y if bias is None else self.array_binop(node, ast.Add(), y, bias)
        if name == "transpose":
            axes = args[1] if len(args) > 1 else kwargs.get("axes")
            axes = tuple(a.value if isinstance(a, Literal) else a for a in axes) if axes is not None else None
            return self.transpose(node, args[0], axes)
        if name == "copy":
            out = self.new_array(args[0].type.dtype, args[0].type.shape, "copy")
            self.copy_buffer(args[0], out)
            return out
        if name == "view":
            shape = args[1] if len(args) > 1 else kwargs.get("shape")
            return self.view(node, args[0], tuple(s.value if isinstance(s, Literal) else s for s in shape))
        if name == "concat":
            axis = kwargs.get("axis", args[2] if len(args) > 2 else Literal(0))
            return self.concat(node, args[0], args[1], axis.value if isinstance(axis, Literal) else int(axis))
        if name == "relu":
            x = args[0]
            out = self.new_array(x.type.dtype, x.type.shape, "relu")
            self.elementwise_nest(x.type.shape, "relu", lambda ivs: self.store(
                out, ivs, self.minmax(node, True, [self.load(x, ivs), Literal(0.0 if x.type.dtype.is_float else 0)])))
            return out
        if name == "tril":
            x = args[0]
            out = self.new_array(x.type.dtype, x.type.shape, "tril")
            zero = self.coerce(node, Literal(0), x.type.dtype)

            def body(ivs):
                from torch_mlir.dialects import arith

                keep = arith.cmpi(3, ivs[-1].materialize(), ivs[-2].materialize())  # sle: j <= i
                self.store(out, ivs, TV(arith.select(keep, self.load(x, ivs).value, zero.value), x.type.dtype))

            self.elementwise_nest(x.type.shape, "tril", body)
            return out
        if name in ("ones", "zeros"):
            shape = args[0]
            shape = tuple(s.value if isinstance(s, Literal) else s for s in (shape if isinstance(shape, tuple)
                                                                               else (shape,)))
            dtype = kwargs.get("dtype") or (args[1] if len(args) > 1 else None)
            dtype = dtype if isinstance(dtype, DType) else Float(32)
            out = self.new_array(dtype, shape, name)
            self.fill(out, self.coerce(node, Literal(1 if name == "ones" else 0), dtype))
            return out
        if name == "softmax":
            return self.softmax(node, args[0])
        if name == "gelu":
            return self.gelu(node, args[0])
        if name == "layernorm":
            return self.layernorm(node, *args[:3])
        raise self.err(node, f"array builtin '{name}' is not supported (conv2d/maxpool/sumpool: write the loops "
                             "or use allo.library.nn's kernels)")

    def matmul(self, node, a: Buffer, b: Buffer) -> Buffer:
        sa, sb = a.type.shape, b.type.shape
        if len(sb) == 2 and len(sa) > 2:  # [..., M, K] x [K, N]: the right operand is shared by the batch
            bb = b
            b = self.new_array(b.type.dtype, sa[:-2] + sb, "matmul_rhs")
            self.elementwise_nest(b.type.shape, "matmul_rhs", lambda ivs: self.store(b, ivs, self.load(bb, ivs[-2:])))
            sb = b.type.shape
        if len(sa) < 2 or len(sb) < 2 or sa[-1] != sb[-2] or sa[:-2] != sb[:-2]:
            raise self.err(node, f"matmul of shapes {sa} and {sb}: need [..., M, K] x [..., K, N] with equal "
                                 "leading dimensions")
        ta, tb = a.type.dtype, b.type.dtype
        t = ta if ta == tb else implicit.promote(ta, tb)
        out = self.new_array(t, sa[:-1] + sb[-1:], "matmul")
        self.fill(out, self.coerce(node, Literal(0), t))

        def body(ivs):
            *bt, m, n, k = ivs
            prod = self.binop(node, ast.Mult(), self.load(a, [*bt, m, k]), self.load(b, [*bt, k, n]))
            acc = self.binop(node, ast.Add(), self.load(out, [*bt, m, n]), prod)
            self.store(out, [*bt, m, n], self.coerce(node, acc, t))

        self.elementwise_nest(sa[:-1] + sb[-1:] + sa[-1:], "matmul", body)
        return out

    def transpose(self, node, x: Buffer, axes) -> Buffer:
        rank = len(x.type.shape)
        axes = tuple(range(rank))[::-1] if axes is None else tuple(int(a) for a in axes)
        if sorted(axes) != list(range(rank)):
            raise self.err(node, f"transpose axes {axes} are not a permutation of {rank} dimensions")
        shape = tuple(x.type.shape[a] for a in axes)
        out = self.new_array(x.type.dtype, shape, "transpose")

        def body(ivs):
            src = [None] * rank
            for k, a in enumerate(axes):
                src[a] = ivs[k]
            self.store(out, ivs, self.load(x, src))

        self.elementwise_nest(shape, "transpose", body)
        return out

    def view(self, node, x: Buffer, shape) -> Buffer:
        shape = tuple(int(s) for s in shape)
        if int(np.prod(shape)) != x.type.size:
            raise self.err(node, f"cannot view {x.type} as shape {shape}")
        out = self.new_array(x.type.dtype, shape, "view")
        src_shape = x.type.shape

        def body(ivs):
            flat = Idx.const(0)
            for iv, d in zip(ivs, shape):
                flat = flat.mul_const(d) + iv
            src, rem = [], flat
            for k in range(len(src_shape) - 1, -1, -1):
                src.append(rem.mod_const(src_shape[k]) if k else rem)
                rem = rem.floordiv_const(src_shape[k])
            self.store(out, ivs, self.load(x, src[::-1]))

        self.elementwise_nest(shape, "view", body)
        return out

    def concat(self, node, a: Buffer, b: Buffer, axis: int) -> Buffer:
        sa, sb = a.type.shape, b.type.shape
        axis = axis % len(sa)
        if len(sa) != len(sb) or any(x != y for k, (x, y) in enumerate(zip(sa, sb)) if k != axis):
            raise self.err(node, f"concat of shapes {sa} and {sb} along axis {axis}")
        shape = tuple(d + (sb[axis] if k == axis else 0) for k, d in enumerate(sa))
        out = self.new_array(a.type.dtype, shape, "concat")
        self.elementwise_nest(sa, "concat_a", lambda ivs: self.store(out, ivs, self.load(a, ivs)))
        self.elementwise_nest(sb, "concat_b", lambda ivs: self.store(
            out, [iv + Idx.const(sa[axis]) if k == axis else iv for k, iv in enumerate(ivs)],
            self.coerce(node, self.load(b, ivs), a.type.dtype)))
        return out

    def _row_reduce(self, node, x: Buffer, name: str, init: float, combine):
        lead = x.type.shape[:-1]
        acc = self.new_array(x.type.dtype, lead or (1,), name)
        self.fill(acc, self.coerce(node, Literal(init), x.type.dtype))

        def body(ivs):
            at = ivs[:-1] or [Idx.const(0)]
            self.store(acc, at, combine(self.load(acc, at), self.load(x, ivs)))

        self.elementwise_nest(x.type.shape, name, body)
        return acc

    def softmax(self, node, x: Buffer) -> Buffer:
        t = x.type.dtype
        mx = self._row_reduce(node, x, "sm_max", -pymath.inf, lambda a, v: self.minmax(node, True, [a, v]))
        e = self.new_array(t, x.type.shape, "sm_exp")
        self.elementwise_nest(x.type.shape, "sm_exp", lambda ivs: self.store(e, ivs, self.unary_math(
            node, "exp", self.binop(node, ast.Sub(), self.load(x, ivs), self.load(mx, ivs[:-1] or [Idx.const(0)])))))
        sm = self._row_reduce(node, e, "sm_sum", 0.0, lambda a, v: self.binop(node, ast.Add(), a, v))
        out = self.new_array(t, x.type.shape, "softmax")
        self.elementwise_nest(x.type.shape, "softmax", lambda ivs: self.store(out, ivs, self.binop(
            node, ast.Div(), self.load(e, ivs), self.load(sm, ivs[:-1] or [Idx.const(0)]))))
        return out

    def gelu(self, node, x: Buffer) -> Buffer:
        """Allo's gelu: the tanh approximation, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
        out = self.new_array(x.type.dtype, x.type.shape, "gelu")

        def body(ivs):
            v = self.load(x, ivs)
            mul, add = ast.Mult(), ast.Add()
            cube = self.binop(node, mul, self.binop(node, mul, v, v), v)
            inner = self.binop(node, mul, Literal(pymath.sqrt(2 / pymath.pi)),
                               self.binop(node, add, v, self.binop(node, mul, Literal(0.044715), cube)))
            r = self.binop(node, mul, self.binop(node, mul, Literal(0.5), v),
                           self.binop(node, add, Literal(1.0), self.unary_math(node, "tanh", inner)))
            self.store(out, ivs, r)

        self.elementwise_nest(x.type.shape, "gelu", body)
        return out

    def layernorm(self, node, x: Buffer, gamma, beta, eps: float = 1e-5) -> Buffer:
        """Allo's layernorm over the last axis (two-pass: mean, then variance)."""
        n = x.type.shape[-1]
        add, sub, mul, div = ast.Add(), ast.Sub(), ast.Mult(), ast.Div()
        s = self._row_reduce(node, x, "ln_sum", 0.0, lambda a, v: self.binop(node, add, a, v))
        lead = lambda ivs: ivs[:-1] or [Idx.const(0)]  # noqa: E731
        mean = lambda ivs: self.binop(node, div, self.load(s, lead(ivs)), Literal(float(n)))  # noqa: E731
        d = self.new_array(x.type.dtype, x.type.shape, "ln_dev")
        self.elementwise_nest(x.type.shape, "ln_dev", lambda ivs: self.store(
            d, ivs, self.binop(node, sub, self.load(x, ivs), mean(ivs))))
        sq = self._row_reduce(node, d, "ln_var", 0.0,
                              lambda a, v: self.binop(node, add, a, self.binop(node, mul, v, v)))
        out = self.new_array(x.type.dtype, x.type.shape, "layernorm")

        def body(ivs):
            var = self.binop(node, div, self.load(sq, lead(ivs)), Literal(float(n)))
            den = self.unary_math(node, "sqrt", self.binop(node, add, var, Literal(eps)))
            g = self.load(gamma, [ivs[-1]]) if isinstance(gamma, Buffer) else gamma
            b = self.load(beta, [ivs[-1]]) if isinstance(beta, Buffer) else beta
            r = self.binop(node, add, self.binop(node, div, self.binop(node, mul, g, self.load(d, ivs)), den), b)
            self.store(out, ivs, r)

        self.elementwise_nest(x.type.shape, "layernorm", body)
        return out
