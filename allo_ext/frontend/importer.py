"""torch.export graph -> one MLIR module: a top function that calls library kernels.

Each ``call_function`` node is looked up in the lowering table (``register_lowering``) by its
full name (``aten.linear.default``) and then its packet name (``aten.linear``). A lowering gets a
``LoweringContext`` and the node's arguments with every tensor already replaced by a ``Buffer``
(activations) or a numpy array (parameters, buffers, constants), and returns a Buffer (or a tuple
for multi-output ops). Parameters are folded to ``memref.global`` constants only when a kernel
consumes them, so anything the model computes from its weights at run time stays exact.
"""
from __future__ import annotations

import operator
from typing import Callable

import numpy as np
import torch
from torch_mlir import ir
from torch_mlir.dialects import arith, func

from ..lang.errors import AlloError
from ..lang.module import ModuleBuilder
from ..lang.types import DType, float32
from ..lang.values import Buffer
from .errors import UnsupportedOpError
from .precision import make_precision

LOWERINGS: dict[str, Callable] = {}

# Host-side checks torch.export leaves in the graph; they compute nothing the hardware needs.
IGNORED = {
    "aten._assert_tensor_metadata.default", "aten._assert_scalar.default", "aten.sym_constrain_range_for_size.default",
    "aten._assert_async.msg",
}


def register_lowering(*targets: str):
    """Register ``fn(ctx, node, *args, **kwargs) -> Buffer`` as the lowering of torch ops ``targets``
    (e.g. ``"aten.gelu.default"`` or the whole packet ``"aten.gelu"``)."""

    def deco(fn):
        for t in targets:
            LOWERINGS[t] = fn
        return fn

    return deco


def op_name(target) -> str:
    if isinstance(target, torch._ops.OpOverload):
        return f"{target.namespace}.{target._opname}.{target._overloadname}"
    if target is operator.getitem:
        return "getitem"
    return getattr(target, "__name__", str(target))


def find_lowering(target) -> Callable | None:
    name = op_name(target)
    if name in LOWERINGS:
        return LOWERINGS[name]
    packet = name.rsplit(".", 1)[0]
    return LOWERINGS.get(packet)


# expand/repeat of a parameter to the batch (a class token) stay kernels: folded, they would be
# batch-sized constants.
NOT_FOLDED = {"aten.expand.default", "aten.repeat.default"}


def _has_buffer(x) -> bool:
    if isinstance(x, Buffer):
        return True
    if isinstance(x, (list, tuple)):
        return any(_has_buffer(a) for a in x)
    if isinstance(x, dict):
        return any(_has_buffer(a) for a in x.values())
    return False


def _fold(target, args, kwargs):
    """An op on constants only, evaluated by torch itself at compile time (exactly what eager computes)."""
    def to_torch(a):
        if isinstance(a, np.ndarray) or isinstance(a, np.generic):
            return torch.from_numpy(np.array(a))
        if isinstance(a, (list, tuple)):
            return type(a)(to_torch(x) for x in a)
        return a

    def to_numpy(r):
        if isinstance(r, torch.Tensor):
            return r.detach().numpy()
        if isinstance(r, (list, tuple)):
            return type(r)(to_numpy(x) for x in r)
        return r

    with torch.no_grad():
        return to_numpy(target(*to_torch(list(args)), **{k: to_torch(v) for k, v in kwargs.items()}))


class LoweringContext:
    """What a lowering may use: kernel calls, constants, shapes of the node being lowered."""

    def __init__(self, mb: ModuleBuilder, dtype=float32, target: str = "llvm", precision=None):
        self.mb = mb
        self.precision = make_precision(precision)
        self.dtype = self.precision.default if precision is not None else dtype
        self.target = target
        self.node = None
        self.kernels_used: list[str] = []

    def buffer(self, x, name: str = "w", dtype=None) -> Buffer:
        """A Buffer as is; a constant as a float32 global (bools as 0/1 and integers exactly, as every
        tensor is computed in float32: integers up to 2**24 are exact). With a fixed-point ``dtype``:
        constants are quantised to it, and a Buffer of another type is converted (see ``convert``)."""
        if isinstance(x, Buffer):
            if dtype is not None and x.type.dtype != dtype and (dtype.is_fixed or x.type.dtype.is_fixed):
                return self.convert(x, dtype)
            return x
        arr = np.asarray(x)
        if arr.dtype != np.float32 and arr.dtype.kind in "fbiu":
            arr = arr.astype(np.float32)
        if dtype is not None and dtype.is_fixed and arr.dtype.kind == "f":
            return self.mb.constant_buffer(arr, node_name=name, dtype=dtype)
        return self.mb.constant_buffer(arr, node_name=name)

    def convert(self, x: Buffer, dtype) -> Buffer:
        """``x`` as ``dtype`` elementwise (fixed point: quantised with its modes)."""
        from .convert import convert_kernel

        return self.call(convert_kernel(x.type.dtype, dtype, tuple(x.type.shape)), x)

    @property
    def acc(self):
        """The accumulator type for products and normalisation scales (fixed point only)."""
        return self.precision.acc_for(self.dtype)

    def call(self, kernel_fn, *args) -> Buffer | tuple:
        """Call a library kernel instance on Buffers or numpy constants."""
        from ..lang.compiler import kernel_signature

        names, arg_types, res_types = kernel_signature(kernel_fn)
        if len(args) != len(arg_types):
            raise AlloError(f"lowering of {op_name(self.node.target) if self.node else '?'} passes {len(args)} "
                            f"arguments to kernel '{kernel_fn.__name__}', which takes {len(arg_types)}")
        operands = []
        for n, t, a in zip(names, arg_types, args):
            if isinstance(t, DType):  # a scalar argument: a compile-time number becomes a constant
                if isinstance(a, Buffer) or np.ndim(a) != 0:
                    raise AlloError(f"lowering of {self.where()}: argument '{n}' of kernel '{kernel_fn.__name__}' "
                                    f"is a scalar {t}; pass a number, got {a!r}")
                if t.is_fixed:
                    from ..lang.fixed_ops import constant

                    operands.append(constant(float(a), t))
                    continue
                v = float(a) if t.is_float else int(a)
                operands.append(arith.constant(t.mlir(), v))
                continue
            if not isinstance(a, Buffer) and t.dtype.is_float:
                a = np.asarray(a, dtype=t.dtype.numpy)
            if isinstance(a, Buffer):
                b = self.buffer(a, name=n, dtype=t.dtype)  # converted when fixed-point types differ
            elif t.dtype.is_fixed:
                b = self.mb.constant_buffer(np.asarray(a, dtype=np.float64), node_name=n, dtype=t.dtype)
            else:
                b = self.mb.constant_buffer(np.asarray(a), node_name=n)
            if b.type != t:
                raise AlloError(f"lowering of {self.where()}: argument '{n}' of kernel '{kernel_fn.__name__}' "
                                f"expects {t}, got {b.type}")
            operands.append(b.value)
        sym = self.mb.compile_function(kernel_fn)
        self.kernels_used.append(sym)
        call = func.CallOp([t.mlir() for t in res_types], ir.FlatSymbolRefAttr.get(sym), operands)
        outs = [Buffer(r, t, f"{sym}_out") for r, t in zip(call.results, res_types)]
        return outs[0] if len(outs) == 1 else tuple(outs)

    @property
    def loop_order(self) -> str:
        """Matrix-product loop order: unit-stride vectorisable on the CPU, dot products for HLS (and for
        fixed point everywhere: it accumulates each output in one wide scalar)."""
        return "ikj" if self.target == "llvm" and not self.dtype.is_fixed else "ijk"

    def where(self) -> str:
        return op_name(self.node.target) if self.node is not None else "?"

    @property
    def out_shape(self) -> tuple:
        val = self.node.meta.get("val")
        return tuple(int(d) for d in val.shape)


def _shape(x) -> tuple:
    return tuple(x.type.shape) if isinstance(x, Buffer) else tuple(np.shape(x))


def graph_constants(ep: torch.export.ExportedProgram) -> dict:
    """Placeholder name -> array for the exported program's parameters, buffers and constants."""
    sig = ep.graph_signature
    state = {**ep.state_dict, **getattr(ep, "constants", {})}
    out = {}
    for spec in sig.input_specs:
        if spec.target is not None and spec.target in state:
            out[spec.arg.name] = state[spec.target].detach().cpu().numpy()
    return out


def rewrite_graph(graph: torch.fx.Graph, consts: dict) -> None:
    """The rewrites every import applies before lowering (in place; ``consts`` gains folded weights).
    ``allo_ext.quant.calibrate`` runs the same graph, so its per-node ranges are those compiled."""
    from .fusion import fold_batchnorm_into_linear, fuse_channels_last_batchnorm

    fuse_channels_last_batchnorm(graph)
    fold_batchnorm_into_linear(graph, consts)


def resolve_precision(precision, graph: torch.fx.Graph, consts: dict):
    """``rewrite_graph``, then ``precision=`` resolved against the node names after it: a fused BatchNorm
    is a new node that precision= may name, and a key naming a node the rewrites removed is an error.
    Every importer (MLIR and the latency route's tracer) resolves types here, so they agree."""
    before = {n.name for n in graph.nodes}
    rewrite_graph(graph, consts)
    after = [n.name for n in graph.nodes]
    return make_precision(precision, after, graph=graph, removed=before - set(after))


class GraphImporter:
    """Walks one exported program and emits the top function into ``mb``."""

    def __init__(self, ep: torch.export.ExportedProgram, top_name: str = "forward", target: str = "llvm",
                 precision=None):
        self.ep = ep
        self.mb = ModuleBuilder()
        names = [n.name for n in ep.graph.nodes]
        self.precision = precision
        self.ctx = LoweringContext(self.mb, target=target, precision=make_precision(precision, names))
        self.top_name = top_name

    def run(self):
        graph = self.ep.graph
        consts = graph_constants(self.ep)
        self.ctx.precision = resolve_precision(self.precision, graph, consts)
        if self.ctx.target == "llvm" and self.precision is None:
            from .fusion import fuse_attention_heads

            fuse_attention_heads(graph)  # the CPU's vectorised attention (kernels/nn/attention.py)
        user_inputs = [n for n in graph.nodes if n.op == "placeholder" and n.name not in consts]
        # Every tensor is computed in float32 (bools as 0/1, integers exactly up to 2**24), inputs and
        # outputs too; CompiledModel converts at the boundary. With fixed point (precision=), float inputs
        # take their node's type and are quantised on the way in.
        fixed = self.ctx.precision.is_fixed
        in_types = [(self.ctx.precision.for_node(n) if fixed else float32)[tuple(int(d) for d in n.meta["val"].shape)]
                    for n in user_inputs]
        self.in_dtypes = [n.meta["val"].dtype for n in user_inputs]
        out_node = next(n for n in graph.nodes if n.op == "output")
        outs = out_node.args[0]
        outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
        res_types = [float32[tuple(int(d) for d in o.meta["val"].shape)] for o in outs]
        self.out_dtypes = [o.meta["val"].dtype for o in outs]
        with self.mb.context, ir.Location.unknown():
            # With fixed point the results' types are known once the graph is lowered: fixed up below.
            ftype = ir.FunctionType.get([t.mlir() for t in in_types], [t.mlir() for t in res_types])
            with ir.InsertionPoint(self.mb.module.body):
                f = func.FuncOp(self.top_name, ftype)
                f.attributes["allo.arg_names"] = ir.ArrayAttr.get([ir.StringAttr.get(n.name) for n in user_inputs])
                f.attributes["allo.top"] = ir.UnitAttr.get()
                entry = f.add_entry_block()
            env: dict = dict(consts)
            for n, t, a in zip(user_inputs, in_types, entry.arguments):
                env[n.name] = Buffer(a, t, n.name)
            with ir.InsertionPoint(entry):
                for node in graph.nodes:
                    if node.op != "call_function":
                        continue
                    env[node.name] = self.lower_node(node, env)
                results = []
                for k, (o, t) in enumerate(zip(outs, res_types)):
                    v = env[o.name] if hasattr(o, "name") else o
                    b = self.ctx.buffer(v, "out")
                    if b.type != t and self.ctx.precision.is_fixed and b.type.shape == t.shape:
                        res_types[k] = t = b.type  # a fixed-point result: the module returns its values
                    if b.type != t:
                        raise AlloError(f"graph output {o} has type {b.type}, expected {t}")
                    results.append(b.value)
                func.ReturnOp(results)
                if self.ctx.precision.is_fixed:
                    f.attributes["function_type"] = ir.TypeAttr.get(ir.FunctionType.get(
                        [t.mlir() for t in in_types], [t.mlir() for t in res_types]))
        self.mb.signatures[self.top_name] = ([n.name for n in user_inputs], in_types, res_types)
        self.mb.module.operation.verify()
        return self.mb, self.top_name

    def lower_node(self, node, env):
        name = op_name(node.target)
        if name in IGNORED:
            return None
        lowering = find_lowering(node.target)
        if lowering is None:
            from .decompose import root_op

            detail = "torch has no decomposition for it either" if isinstance(node.target, torch._ops.OpOverload) \
                else ""
            root = root_op(node, getattr(self.ep, "allo_decomposed_from", {}))
            if root is not None and root != name:
                raise UnsupportedOpError(root, node, f"torch's decomposition of it needs '{name}', which has no "
                                                     "lowering or decomposition")
            raise UnsupportedOpError(name, node, detail)

        def conv(a):
            if isinstance(a, torch.fx.Node):
                if a.name not in env:
                    raise AlloError(f"node {a.name} used before it was computed")
                return env[a.name]
            if isinstance(a, (list, tuple)):
                return type(a)(conv(x) for x in a)
            return a

        args = [conv(a) for a in node.args]
        kwargs = {k: conv(v) for k, v in node.kwargs.items()}
        if isinstance(node.target, torch._ops.OpOverload) and not _has_buffer((args, kwargs)) \
                and name not in NOT_FOLDED:
            return _fold(node.target, args, kwargs)
        self.ctx.node = node
        self.ctx.dtype = self.ctx.precision.for_node(node)
        with ir.Location.name(node.name):
            try:
                return lowering(self.ctx, node, *args, **kwargs)
            except (UnsupportedOpError, AlloError):
                raise
            except NotImplementedError as e:
                raise UnsupportedOpError(name, node, str(e), has_lowering=True) from e
