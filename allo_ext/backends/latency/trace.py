"""The kernel-call sink of the latency route: the frontend's lowerings call library kernels on it
exactly as they do when they build MLIR, and each call is traced into da4ml values instead.

Activations are ``Buffer``s whose ``value`` is a numpy object array of da4ml ``FixedVariable``s (and
exact floats where a value is a known constant), so every lowering (which tells activations from
constants by ``isinstance(x, Buffer)``) takes the same decisions it takes for the other targets:
the same kernels, types, conversions and quantisation points. A kernel with no da4ml implementation
is refused with the kernel and the graph node named; nothing is dropped.
"""
from __future__ import annotations

import numpy as np

from ...lang.compiler import kernel_signature
from ...lang.types import DType
from ...lang.values import Buffer
from . import fixed as F
from .errors import StaticLoweringError
from .kernels import IMPLS, params_of


def _node_label(node) -> str:
    if node is None:
        return "?"
    target = getattr(node.target, "__name__", str(node.target))
    where = ""
    trace = node.meta.get("stack_trace") if hasattr(node, "meta") else None
    if trace:
        lines = [ln.strip() for ln in trace.strip().splitlines() if ln.strip().startswith("File ")]
        if lines:
            where = f", {lines[-1]}"
    return f"node '{node.name}' ({target}{where})"


class TraceContext:
    """What a lowering may use (the interface of ``frontend.importer.LoweringContext``), tracing."""

    target = "rtl"

    def __init__(self, precision, hwconf):
        self.precision = precision
        self.dtype = precision.default
        self.hwconf = hwconf
        self.node = None
        self.mb = None
        self.kernels_used: list[str] = []

    # ------------------------------------------------------------------ graph boundary
    def input(self, name: str, t) -> Buffer:
        """A model input of type ``t``: raw words of t's width, in the order of ``t``'s shape."""
        from da4ml.trace import FixedVariableArray

        F.check_type(t.dtype, f"input '{name}'")
        k, i, f = F.kif(t.dtype)
        shape = tuple(t.shape)
        arr = FixedVariableArray.from_kif(np.full(shape, k), np.full(shape, i), np.full(shape, f), hwconf=self.hwconf)
        return Buffer(np.asarray(arr._vars, dtype=object), t, name)

    # ------------------------------------------------------------------ the LoweringContext interface
    @property
    def acc(self):
        return self.precision.acc_for(self.dtype)

    @property
    def loop_order(self) -> str:
        return "ijk"  # fixed point: one wide accumulator per output

    def where(self) -> str:
        return _node_label(self.node)

    @property
    def out_shape(self) -> tuple:
        return tuple(int(d) for d in self.node.meta.get("val").shape)

    def buffer(self, x, name: str = "w", dtype=None) -> Buffer:
        if isinstance(x, Buffer):
            if dtype is not None and x.type.dtype != dtype:
                return self.convert(x, dtype)
            return x
        raise StaticLoweringError(f"{self.where()}: a graph output or operand is the constant {np.shape(x)} array "
                                  f"'{name}'; the latency route computes only values that depend on the input")

    def convert(self, x: Buffer, dtype) -> Buffer:
        if dtype == x.type.dtype:
            return x
        return Buffer(F.quantize(x.value, dtype, f"conversion to {dtype} at {self.where()}"),
                      dtype[tuple(x.type.shape)], x.name)

    def call(self, kernel_fn, *args):
        names, arg_types, res_types = kernel_signature(kernel_fn)
        kname = getattr(kernel_fn, "__allo_kernel__", None) or kernel_fn.__name__
        where = f"kernel '{kname}' of {self.where()}"
        impl = IMPLS.get(kname)
        if impl is None:
            raise StaticLoweringError(
                f"{where} has no static (da4ml) lowering; the latency route implements "
                f"{', '.join(sorted(IMPLS))}. Compile this model with target='rtl' and schedule='default' "
                f"(the handshake route), or add an implementation in allo_ext/backends/latency/kernels.py")
        if len(args) != len(arg_types):
            raise StaticLoweringError(f"{where}: {len(args)} arguments passed, the kernel takes {len(arg_types)}")
        ins = []
        for n, t, a in zip(names, arg_types, args):
            if isinstance(t, DType):
                ins.append(a)
                continue
            dt = t.dtype
            if isinstance(a, Buffer):
                v = a.value if a.type.dtype == dt else F.quantize(a.value, dt, f"argument '{n}' of {where}")
            elif dt.is_fixed:
                v = F.constant(np.asarray(a, dtype=np.float64), dt)
            else:
                v = np.asarray(a)
            if tuple(np.shape(v)) != tuple(t.shape):
                raise StaticLoweringError(f"{where}: argument '{n}' has shape {np.shape(v)}, the kernel expects "
                                          f"{tuple(t.shape)}")
            ins.append(v)
        for t in res_types:
            F.check_type(t.dtype, where)
        self.kernels_used.append(kname)
        params = params_of(kernel_fn)
        params["__solver__"] = getattr(self, "solver_options", None)
        res = impl(params, ins, where, kernel_fn)
        res = res if isinstance(res, tuple) else (res,)
        outs = []
        for r, t in zip(res, res_types):
            r = np.asarray(r, dtype=object)
            if r.shape != tuple(t.shape):
                raise StaticLoweringError(f"{where}: traced result has shape {r.shape}, the kernel returns "
                                          f"{tuple(t.shape)} (a bug in allo_ext/backends/latency/kernels.py)")
            outs.append(Buffer(r, t, f"{kname}_out"))
        return outs[0] if len(outs) == 1 else tuple(outs)
