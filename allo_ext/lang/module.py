"""One MLIR module holding a top kernel and everything it calls."""
from __future__ import annotations

import hashlib
import types
from typing import Callable

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import memref

from .types import from_numpy


def _kernel_key(fn: Callable, depth: int = 0):
    """Two instances of a kernel factory with the same code and equal closure values compile to
    one function; different shapes, types or constants compile to different ones. Closure values
    are compared by content (functions by their own key, arrays by their bytes), not identity,
    so a factory that captures a helper kernel or a constant array still deduplicates."""
    cells = tuple(_freeze(c.cell_contents, depth) for c in (fn.__closure__ or ()))
    bindings = _freeze(getattr(fn, "__allo_bindings__", None), depth)  # instances of one generic kernel
    # Annotations are evaluated when the def runs, so a shape used only in them (``X: T[shape]``) is
    # not a closure cell: without them, slices of a (4, 4, n) and a (4, 3, n) array would share one function.
    notes = tuple(sorted((k, repr(v)) for k, v in getattr(fn, "__annotations__", {}).items()))
    return (fn.__code__, cells, bindings, notes)


def _freeze(v, depth: int):
    if depth > 8:  # deeply nested closures: fall back to identity rather than recurse forever
        return ("id", id(v))
    if isinstance(v, types.FunctionType):
        return ("fn", _kernel_key(v, depth + 1))
    if isinstance(v, np.ndarray):
        return ("nd", v.shape, v.dtype.str, hashlib.sha1(np.ascontiguousarray(v).tobytes()).hexdigest())
    if isinstance(v, (list, tuple)):
        return (type(v).__name__, tuple(_freeze(x, depth) for x in v))
    if isinstance(v, dict):
        return ("dict", tuple(sorted((repr(k), _freeze(x, depth)) for k, x in v.items())))
    try:
        hash(v)
        return v
    except TypeError:
        return ("id", id(v))


class ModuleBuilder:
    def __init__(self, context: ir.Context | None = None):
        self.context = context or ir.Context()
        # Fixed-point ops live in the unregistered `allo` namespace (see lang/fixed_ops.py).
        self.context.allow_unregistered_dialects = True
        with self.context, ir.Location.unknown():
            self.module = ir.Module.create()
        self.functions: dict = {}  # kernel key -> symbol name
        self.py_functions: dict = {}  # symbol name -> python function
        # symbol name -> (arg names, arg types, result types) in the language's types; the frontend
        # registers its generated top function here too, since that one has no Python source.
        self.signatures: dict = {}
        self._globals: dict = {}

    def compile_function(self, fn: Callable, name: str | None = None) -> str:
        from .compiler import FunctionCompiler

        key = _kernel_key(fn)
        if key in self.functions:
            return self.functions[key]
        sym = self._unique(name or fn.__name__)
        self.functions[key] = sym
        self.py_functions[sym] = fn
        from .compiler import kernel_signature

        self.signatures[sym] = kernel_signature(fn)
        with self.context, ir.Location.unknown():
            FunctionCompiler(self, fn, sym).compile()
        return sym

    def _unique(self, base: str) -> str:
        taken = {op.attributes["sym_name"].value for op in self.module.body.operations
                 if "sym_name" in op.attributes}
        taken |= set(self.py_functions)
        name, k = base, 1
        while name in taken:
            name = f"{base}_{k}"
            k += 1
        return name

    def lookup_func(self, sym: str):
        for op in self.module.body.operations:
            if op.operation.name == "func.func" and op.attributes["sym_name"].value == sym:
                return op.operation
        raise KeyError(sym)

    def constant_buffer(self, array: np.ndarray, node_name: str = "const", dtype=None):
        """A numpy array as a ``memref.global`` constant, read with ``memref.get_global``. With a
        fixed-point ``dtype`` the values are quantised to it (its modes) and stored as raw integers,
        the global and the read tagged ``allo.elem``."""
        from . import fixed as fx
        from .values import Buffer

        arr = np.array(array, order="C", copy=True)  # not ascontiguousarray: it turns 0-d into 1-d
        fixed = dtype is not None and dtype.is_fixed
        if fixed:
            arr = np.array(fx.quantize(arr.astype(np.float64), dtype), dtype=np.int64).astype(dtype.storage_numpy)
            t = dtype[tuple(arr.shape)]
        elif dtype is not None:
            arr = arr.astype(dtype.numpy)
            t = dtype[tuple(arr.shape)]
        else:
            t = from_numpy(arr.dtype)[tuple(arr.shape)]
        digest = hashlib.sha1(arr.tobytes() + str(arr.shape).encode() + str(t).encode()).hexdigest()[:12]
        if digest not in self._globals:
            sym = self._unique(f"__const_{node_name}_{digest}")
            with ir.InsertionPoint.at_block_begin(self.module.body), ir.Location.unknown():
                attr = dense_attr(arr, ir.RankedTensorType.get(list(arr.shape), t.dtype.mlir()))
                g = memref.GlobalOp(sym, ir.TypeAttr.get(t.mlir()), sym_visibility="private",
                                    initial_value=attr, constant=True)
                if fixed:
                    g.attributes["allo.elem"] = ir.StringAttr.get(fx.spec(dtype))
                    if dtype.bits not in (8, 16, 32, 64):  # numpy cannot read an i17 attribute back: keep a copy
                        c = arr.dtype.itemsize * 8
                        g.attributes["allo.raw"] = ir.DenseElementsAttr.get(
                            arr.view(f"int{c}"), type=ir.RankedTensorType.get(list(arr.shape), ir.IntegerType.get_signless(c)))
            self._globals[digest] = sym
        sym = self._globals[digest]
        read = memref.get_global(t.mlir(), sym)
        if fixed:
            read.owner.attributes["allo.elem"] = ir.StringAttr.get(fx.spec(dtype))
        return Buffer(read, t, node_name)


def dense_attr(arr: np.ndarray, ttype):
    """A DenseElementsAttr of ``arr``; integer widths the buffer protocol cannot carry (i17, i33: not
    a power of two above 16 bits) go through the textual form."""
    try:
        return ir.DenseElementsAttr.get(arr, type=ttype)
    except ValueError:
        if arr.dtype.kind not in "iu":
            raise
        w = ir.IntegerType(ttype.element_type).width
        vals = [int(v) - (1 << w) if int(v) >= 1 << (w - 1) else int(v) for v in arr.reshape(-1).tolist()]
        body = "[" + ", ".join(map(str, vals)) + "]" if arr.ndim else str(vals[0])
        if arr.ndim > 1:  # nested lists, row-major
            nested = np.array(vals, dtype=object).reshape(arr.shape).tolist()
            body = str(nested)
        return ir.Attribute.parse(f"dense<{body}> : {ttype}")


def dense_values(attr) -> np.ndarray:
    """The values of an integer DenseElementsAttr as int64 (also for widths numpy cannot view)."""
    try:
        return np.array(ir.DenseElementsAttr(attr))
    except (ValueError, TypeError, RuntimeError):
        import re

        t = ir.ShapedType(ir.DenseElementsAttr(attr).type)
        nums = [int(x) for x in re.findall(r"-?\d+", str(attr).split(":")[0].replace("dense<", ""))]
        shape = list(t.shape)
        n = int(np.prod(shape)) if shape else 1
        if len(nums) == 1 and n > 1:
            nums = nums * n
        return np.array(nums, dtype=np.int64).reshape(shape)
