"""Sub-views and slices of arrays: ``A[i]`` of a 2-D array, ``A[3, 2]`` of a 3-D one, ``A[0:2, 1:4]``.

A view is resolved at compile time to index arithmetic on its base array: reading an element of
a view reads the base, writing writes the base, as in Allo (where they are memref subviews). Where
a whole array value is needed (returned, passed to another kernel, used as an initial value) the
view is copied into a buffer of its shape; a view passed to a kernel is copied back after the
call, so the callee's writes land in the base array.

A mixin of ``FunctionCompiler``.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

from .index_expr import Idx
from .types import ArrayType
from .values import Buffer, Literal


@dataclass
class View:
    base: Buffer
    # one entry per base dimension: an Idx (fixed) or a (start, size, step) slice of constants
    dims: list
    name: str

    @property
    def shape(self) -> tuple:
        return tuple(d[1] for d in self.dims if isinstance(d, tuple))

    @property
    def type(self) -> ArrayType:
        return ArrayType(self.base.type.dtype, self.shape)

    def base_index(self, ivs: list[Idx]) -> list[Idx]:
        out, k = [], 0
        for d in self.dims:
            if isinstance(d, tuple):
                start, _, step = d
                out.append(ivs[k].mul_const(step) + Idx.const(start) if step != 1 else ivs[k] + Idx.const(start))
                k += 1
            else:
                out.append(d)
        return out


class ViewsMixin:
    def index_or_view(self, node: ast.Subscript, base):
        """``(buffer, indices)`` for an element access, or a View for a partial index or slice."""
        if isinstance(base, View):
            inner = self.index_or_view(node, Buffer(None, base.type, base.name))
            if isinstance(inner, View):
                dims, k, slots = list(base.dims), 0, []
                for pos, d in enumerate(dims):
                    if isinstance(d, tuple):
                        slots.append(pos)
                for pos, d in zip(slots, inner.dims):
                    start, size, step = dims[pos]
                    if isinstance(d, tuple):
                        dims[pos] = (start + d[0] * step, d[1], step * d[2])
                    else:
                        dims[pos] = d.mul_const(step) + Idx.const(start) if step != 1 else d + Idx.const(start)
                return View(base.base, dims, base.name)
            _, idx = inner
            return base.base, base.base_index(idx)
        if not isinstance(base, Buffer):
            raise self.err(node, f"'{ast.unparse(node.value)}' is not an array and cannot be indexed")
        sl = node.slice
        parts = sl.elts if isinstance(sl, ast.Tuple) else [sl]
        dims = []
        shape = base.type.shape
        for p in parts:
            if isinstance(p, ast.Slice):
                k = len(dims)
                if k >= len(shape):
                    raise self.err(node, f"too many subscripts for '{base.name}' ({base.type})")
                lo, hi, st = (self.const_eval(x, "slice bound") if x is not None else None
                              for x in (p.lower, p.upper, p.step))
                lo, hi, st = slice(lo, hi, st).indices(shape[k])
                if st <= 0:
                    raise self.err(node, "slices with a negative step are not supported")
                dims.append((lo, len(range(lo, hi, st)), st))
                continue
            v = self.eval(p.value if isinstance(p, ast.Starred) else p)
            items = list(v) if isinstance(v, (tuple, list)) else [v]
            for it in items:
                dims.append(self.as_index(node, it))
        if len(dims) > len(shape):
            raise self.err(node, f"'{base.name}' has rank {len(shape)} (type {base.type}) but is indexed "
                                 f"with {len(dims)} subscript(s)")
        for k, (i, d) in enumerate(zip(dims, shape)):
            if isinstance(i, Idx) and i.is_const and not 0 <= i.a < d:
                raise self.err(node, f"index {i.a} is out of bounds for dimension {k} of '{base.name}' (size {d})")
        if len(dims) == len(shape) and all(isinstance(d, Idx) for d in dims):
            return base, dims
        dims += [(0, d, 1) for d in shape[len(dims):]]
        return View(base, dims, base.name)

    def materialize_view(self, view: View, name: str | None = None) -> Buffer:
        buf = self.alloc(view.type, name or f"{view.name}_view", None)
        self.elementwise_nest(view.shape, f"copy_{buf.name}",
                              lambda ivs: self.store(buf, ivs, self.load(view.base, view.base_index(ivs))))
        return buf

    def write_view(self, view: View, src):
        """Store ``src`` (an array of the view's shape, or a scalar) into every element of the view."""
        if isinstance(src, View):
            src = self.materialize_view(src)
        if isinstance(src, Buffer):
            if src.type.shape != view.shape:
                raise self.err(None, f"cannot assign an array of shape {src.type.shape} to a view of shape "
                                     f"{view.shape} of '{view.name}'")
            self.elementwise_nest(view.shape, f"store_{view.name}", lambda ivs: self.store(
                view.base, view.base_index(ivs), self.coerce(None, self.load(src, ivs), view.base.type.dtype)))
            return
        v = self.coerce(None, src, view.base.type.dtype) if not isinstance(src, Literal) else \
            self.coerce(None, src, view.base.type.dtype)
        self.elementwise_nest(view.shape, f"fill_{view.name}",
                              lambda ivs: self.store(view.base, view.base_index(ivs), v))
