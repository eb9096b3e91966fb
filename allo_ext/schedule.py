"""Schedules: Allo's ``customize`` and its primitives, applied to the MLIR module in place.

Loop-structure primitives (``split``, ``reorder``) rewrite the IR immediately. ``unroll`` is
recorded as ``hls.unroll`` and realised on the CPU at build time (MLIR's transform dialect), since
the HLS backend wants the loop kept and a pragma emitted instead. ``pipeline``, ``partition`` and
``dataflow`` are attributes for the HLS backend (``hls.pipeline_ii``, ``hls.partition``,
``hls.dataflow``).

Loops are addressed as ``"kernel:loop"`` (the kernel's symbol name, then the loop's
``loop_name`` or, if unique in that kernel, its last component: ``"gemm:mm.j"`` or
``"gemm:j"``), as ``"loop"`` inside the top kernel, or through the handles of ``get_loops``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch_mlir import ir
from torch_mlir.dialects import affine

from .lang.errors import NoSuchBuffer, ScheduleError
from .lang.module import ModuleBuilder, _kernel_key
from .passes.dataflow_check import check_dataflow

PARTITION_KINDS = ("complete", "cyclic", "block")


@dataclass(frozen=True)
class LoopHandle:
    kernel: str
    name: str

    def __str__(self) -> str:
        return f"{self.kernel}:{self.name}"


@dataclass(frozen=True)
class BufferHandle:
    """A kernel's argument or local buffer, as Allo's ``s.A`` (or ``s.get_buffer("A")``)."""

    kernel: str
    name: str

    def __str__(self) -> str:
        return f"{self.kernel}:{self.name}"


@dataclass(frozen=True)
class ReuseHandle(BufferHandle):
    """The reuse (line/window) buffer ``reuse_at``/``buffer_at`` describe: a hint, see there."""


class LoopBand:
    """The loops of one band (a top-level loop nest and every loop inside it), by their names
    relative to the band (``"i"``, ``"i.outer"``): Allo's ``s.get_loops()["C"]["i"]`` or ``.C.i``."""

    def __init__(self, name: str, loops: dict):
        self.name = name
        self.loops = loops

    def __getitem__(self, key):
        if key in self.loops:
            return self.loops[key]
        raise ScheduleError(f"band '{self.name}' has no loop '{key}'; its loops: {', '.join(self.loops)}")

    def __getattr__(self, key):
        if key.startswith("__"):
            raise AttributeError(key)
        return self[key]

    def __iter__(self):
        return iter(self.loops.items())

    def __repr__(self) -> str:
        return f"LoopBand({self.name!r}, {list(self.loops)})"


class LoopNests(dict):
    """``get_loops``: a dict of full loop name -> LoopHandle (as before), which also answers band
    names the way Allo does: ``loops["C"]["i"]``, ``loops.C.i``, ``loops.S_i_0.j`` (Allo's name for
    the k-th unnamed top-level nest over ``i``)."""

    def __init__(self, items, bands: dict):
        super().__init__(items)
        self._bands = bands

    def __missing__(self, key):
        if key in self._bands:
            return self._bands[key]
        raise ScheduleError(f"no loop or band named '{key}'; bands: {', '.join(self._bands)}; "
                            f"loops: {', '.join(self)}")

    def __getattr__(self, key):
        if key.startswith("_"):
            raise AttributeError(key)
        return self._bands[key] if key in self._bands else self[key]

    def bands(self) -> dict:
        return dict(self._bands)


def _for_ops(func_op) -> list:
    out = []

    def cb(op):
        if op.name in ("affine.for", "scf.for") and "loop_name" in op.attributes:
            out.append(op)
        return ir.WalkResult.ADVANCE

    func_op.walk(cb)
    return out


def _loop_name(op) -> str:
    return ir.StringAttr(op.attributes["loop_name"]).value if "loop_name" in op.attributes else "?"


class Schedule:
    """A kernel's MLIR module plus the transformations applied to it so far."""

    def __init__(self, mb: ModuleBuilder, top: str):
        self.mb = mb
        self.top = top
        self.log: list[tuple] = []

    # ------------------------------------------------------------------ inspection
    @property
    def module(self) -> ir.Module:
        return self.mb.module

    @property
    def context(self) -> ir.Context:
        return self.mb.context

    def __str__(self) -> str:
        return str(self.module)

    def kernels(self) -> list[str]:
        return [op.attributes["sym_name"].value for op in self.module.body.operations
                if op.operation.name == "func.func"]

    def _func(self, kernel: str):
        try:
            return self.mb.lookup_func(kernel)
        except KeyError:
            raise ScheduleError(f"no kernel named '{kernel}' in this schedule; kernels: {', '.join(self.kernels())}") \
                from None

    def get_loops(self, kernel: str | None = None) -> LoopNests:
        kernel = kernel or self.top
        func_op = self._func(kernel)
        items = {_loop_name(op): LoopHandle(kernel, _loop_name(op)) for op in _for_ops(func_op)}
        return LoopNests(items, _bands(kernel, func_op))

    @property
    def top_func_name(self) -> str:
        return self.top

    def get_buffer(self, name: str, kernel: str | None = None) -> BufferHandle:
        kernel = kernel or self.top
        if name not in self.buffers(kernel):
            raise ScheduleError(f"no buffer named '{name}' in kernel '{kernel}'; buffers: "
                                f"{', '.join(self.buffers(kernel)) or '(none)'}")
        return BufferHandle(kernel, name)

    def __getattr__(self, name):
        # Allo's s.A: only reached for names that are not attributes of the schedule itself
        if name.startswith("_") or name in ("mb", "top", "log"):
            raise AttributeError(name)
        for kernel in [self.top] + [k for k in self.kernels() if k != self.top]:
            if name in self.buffers(kernel):
                return BufferHandle(kernel, name)
        raise NoSuchBuffer(f"schedule of '{self.top}' has no attribute or buffer named '{name}' (buffers are the "
                           "arguments and local arrays of its kernels; a call's result is a buffer of the callee)")

    def _split_ref(self, ref) -> tuple[str, str]:
        if isinstance(ref, LoopHandle):
            return ref.kernel, ref.name
        if not isinstance(ref, str):
            raise ScheduleError(f"a loop is addressed as 'kernel:loop' or a LoopHandle, got {ref!r}")
        kernel, _, name = ref.rpartition(":")
        return kernel or self.top, name

    def _loop(self, ref):
        kernel, name = self._split_ref(ref)
        loops = _for_ops(self._func(kernel))
        exact = [op for op in loops if _loop_name(op) == name]
        if len(exact) == 1:
            return kernel, exact[0]
        by_axis = [op for op in loops if _loop_name(op).split(".")[-1] == name]
        if len(by_axis) == 1:
            return kernel, by_axis[0]
        if not by_axis:  # a name relative to its band, as Allo writes them after a split: "i.outer"
            by_axis = [op for op in loops if _loop_name(op).endswith("." + name)]
            if len(by_axis) == 1:
                return kernel, by_axis[0]
        names = sorted(_loop_name(op) for op in loops)
        why = "is ambiguous" if len(by_axis) > 1 else "does not exist"
        raise ScheduleError(f"loop '{name}' {why} in kernel '{kernel}'; its loops are: {', '.join(names) or '(none)'}")

    def _record(self, prim: str, *args, **kw):
        self.log.append((prim, args, kw))

    # ------------------------------------------------------------------ HLS attributes
    def pipeline(self, loop, ii: int = 1, initiation_interval: int | None = None, rewind: bool = False):
        if initiation_interval is not None:
            ii = initiation_interval
        if int(ii) < 1:
            raise ScheduleError(f"pipeline II must be >= 1, got {ii}")
        kernel, op = self._loop(loop)
        with self.context:
            op.attributes["hls.pipeline_ii"] = ir.IntegerAttr.get(ir.IntegerType.get_signless(32), int(ii))
        self._record("pipeline", LoopHandle(kernel, _loop_name(op)), ii=ii)
        return self

    def unroll(self, loop, factor: int = 0):
        if int(factor) < 0:
            raise ScheduleError(f"unroll factor must be >= 0 (0 unrolls fully), got {factor}")
        kernel, op = self._loop(loop)
        with self.context:
            op.attributes["hls.unroll"] = ir.IntegerAttr.get(ir.IntegerType.get_signless(32), int(factor))
        self._record("unroll", LoopHandle(kernel, _loop_name(op)), factor=factor)
        return self

    def dataflow(self, kernel: str | None = None):
        kernel = kernel or self.top
        f = self._func(kernel)
        funcs = {op.attributes["sym_name"].value: op for op in self.module.body.operations
                 if op.operation.name == "func.func"}
        with self.context:
            check_dataflow(f, funcs)
            f.attributes["hls.dataflow"] = ir.UnitAttr.get()
        self._record("dataflow", kernel)
        return self

    def buffers(self, kernel: str | None = None) -> dict[str, tuple]:
        """name -> shape of every argument and local buffer of a kernel."""
        f = self._func(kernel or self.top)
        out = {}
        names = [ir.StringAttr(a).value for a in ir.ArrayAttr(f.attributes["allo.arg_names"])]
        for n, a in zip(names, f.regions[0].blocks[0].arguments):
            if isinstance(a.type, ir.MemRefType) or str(a.type).startswith("memref<"):
                out[n] = tuple(ir.MemRefType(a.type).shape)

        def cb(op):
            if op.name == "memref.alloc" and "name" in op.attributes:
                out[ir.StringAttr(op.attributes["name"]).value] = tuple(ir.MemRefType(op.results[0].type).shape)
            elif op.name == "func.call" and "allo.result_names" in op.attributes:  # temp = k(...)
                for n, r in zip(ir.ArrayAttr(op.attributes["allo.result_names"]), op.results):
                    if ir.StringAttr(n).value:
                        out[ir.StringAttr(n).value] = tuple(ir.MemRefType(r.type).shape)
            return ir.WalkResult.ADVANCE

        f.walk(cb)
        return out

    def partition(self, buffer, dim: int = 0, factor: int = 0, kind: str = "complete", partition_type=None):
        """Array partitioning; ``dim=0`` means every dimension (as in Vitis), dims count from 1.
        ``buffer`` is ``"kernel:name"``, ``"name"`` or a handle (``s.A``); ``partition_type`` is
        Allo's spelling of ``kind`` (``Partition.Complete``/``Cyclic``/``Block``)."""
        if partition_type is not None:
            kinds = {0: "complete", 1: "block", 2: "cyclic"}  # Allo's Partition.Complete/Block/Cyclic
            pt = getattr(partition_type, "value", partition_type)
            kind = kinds.get(pt, str(pt).lower()) if isinstance(pt, int) else str(pt).lower()
        if isinstance(buffer, ReuseHandle):
            pass
        elif isinstance(buffer, BufferHandle) or hasattr(buffer, "func") and hasattr(buffer, "name"):
            buffer = f"{getattr(buffer, 'kernel', None) or getattr(buffer, 'func')}:{buffer.name}"
        if isinstance(buffer, ReuseHandle):  # partitioning a reuse buffer: part of that hint
            self._mark_unrealised(buffer.kernel, f"partition({buffer.name}, dim={dim})")
            self._record("partition", buffer, dim=dim, factor=factor, kind=kind)
            return self
        if not isinstance(buffer, str):
            raise ScheduleError(f"partition: expected a buffer name or handle (s.A), got {buffer!r}")
        kernel, _, name = buffer.rpartition(":")
        kernel = kernel or self.top
        bufs = self.buffers(kernel)
        if name not in bufs:
            raise ScheduleError(f"no buffer named '{name}' in kernel '{kernel}'; buffers: {', '.join(bufs) or '(none)'}")
        if kind not in PARTITION_KINDS:
            raise ScheduleError(f"partition kind must be one of {PARTITION_KINDS}, got {kind!r}")
        rank = len(bufs[name])
        if not 0 <= dim <= rank:
            raise ScheduleError(f"partition dim {dim} is out of range for '{name}' of rank {rank} "
                                f"(use 1..{rank}, or 0 for all dimensions)")
        if kind != "complete" and factor < 1:
            raise ScheduleError(f"{kind} partitioning needs a factor >= 1, got {factor}")
        f = self._func(kernel)
        with self.context:
            entry = ir.DictAttr.get({"name": ir.StringAttr.get(name),
                                     "dim": ir.IntegerAttr.get(ir.IntegerType.get_signless(32), dim),
                                     "factor": ir.IntegerAttr.get(ir.IntegerType.get_signless(32), factor),
                                     "kind": ir.StringAttr.get(kind)})
            old = list(ir.ArrayAttr(f.attributes["hls.partition"])) if "hls.partition" in f.attributes else []
            f.attributes["hls.partition"] = ir.ArrayAttr.get(old + [entry])
        self._record("partition", f"{kernel}:{name}", dim=dim, factor=factor, kind=kind)
        return self

    # ------------------------------------------------------------------ memory-structure hints
    # reuse_at, buffer_at and compute_at change where values are kept (line buffers, write-back
    # buffers, fused producer loops), never what is computed. They are checked and recorded on the
    # loop and the kernel ("allo.unrealised"): the CPU target computes the same numbers without them,
    # and the HLS backend refuses such a schedule, naming them, until it can build those buffers.
    def _mark_unrealised(self, kernel: str, what: str):
        f = self._func(kernel)
        with self.context:
            old = list(ir.ArrayAttr(f.attributes["allo.unrealised"])) if "allo.unrealised" in f.attributes else []
            f.attributes["allo.unrealised"] = ir.ArrayAttr.get(old + [ir.StringAttr.get(what)])

    def _buffer_ref(self, target) -> tuple[str, str]:
        if isinstance(target, ReuseHandle):
            return target.kernel, target.name
        if isinstance(target, BufferHandle):
            kernel, name = target.kernel, target.name
        elif isinstance(target, str):
            kernel, _, name = target.rpartition(":")
            kernel = kernel or self.top
        else:
            raise ScheduleError(f"expected a buffer (s.A, 'kernel:A' or a reuse buffer), got {target!r}")
        if name not in self.buffers(kernel):
            raise ScheduleError(f"no buffer named '{name}' in kernel '{kernel}'; buffers: "
                                f"{', '.join(self.buffers(kernel)) or '(none)'}")
        return kernel, name

    def _hint_loop(self, kernel: str, axis):
        ref = axis if isinstance(axis, LoopHandle) or (isinstance(axis, str) and ":" in axis) else f"{kernel}:{axis}"
        return self._loop(ref)

    def reuse_at(self, target, axis) -> ReuseHandle:
        """Allo's reuse buffer of ``target`` along loop ``axis`` (a hint: see above)."""
        kernel, name = self._buffer_ref(target)
        _, op = self._hint_loop(kernel, axis)
        loop = _loop_name(op)
        self._mark_unrealised(kernel, f"reuse_at({name}, {loop})")
        self._record("reuse_at", target if isinstance(target, BufferHandle) else BufferHandle(kernel, name), loop)
        return ReuseHandle(kernel, f"{name}.reuse.{loop}")

    def buffer_at(self, target, axis) -> ReuseHandle:
        """Allo's write-back buffer of ``target`` at loop ``axis`` (a hint: see above)."""
        kernel, name = self._buffer_ref(target)
        _, op = self._hint_loop(kernel, axis)
        loop = _loop_name(op)
        self._mark_unrealised(kernel, f"buffer_at({name}, {loop})")
        self._record("buffer_at", target if isinstance(target, BufferHandle) else BufferHandle(kernel, name), loop)
        return ReuseHandle(kernel, f"{name}.buffer.{loop}")

    def compute_at(self, from_loop, target_loop):
        """Allo's producer-into-consumer loop fusion (a hint: see above)."""
        kernel, a = self._loop(from_loop)
        kernel_b, b = self._loop(target_loop)
        if kernel != kernel_b:
            raise ScheduleError("compute_at: both loops must belong to the same kernel")
        self._mark_unrealised(kernel, f"compute_at({_loop_name(a)}, {_loop_name(b)})")
        self._record("compute_at", LoopHandle(kernel, _loop_name(a)), LoopHandle(kernel, _loop_name(b)))
        return self

    # ------------------------------------------------------------------ loop transformations
    def split(self, loop, factor: int) -> tuple[LoopHandle, LoopHandle]:
        """``for i`` becomes ``for i.outer (step factor)`` around ``for i.inner``; a remainder is
        handled with a ``min`` upper bound, so any factor is legal."""
        kernel, op = self._loop(loop)
        factor = int(factor)
        if factor < 1:
            raise ScheduleError(f"split factor must be >= 1, got {factor}")
        if op.name != "affine.for":
            raise ScheduleError(f"split needs constant loop bounds; '{_loop_name(op)}' in '{kernel}' has run-time "
                                "bounds")
        fop = op.opview
        lbm = ir.AffineMapAttr(op.attributes["lowerBoundMap"]).value
        ubm = ir.AffineMapAttr(op.attributes["upperBoundMap"]).value
        step = ir.IntegerAttr(op.attributes["step"]).value
        if not (_is_const_map(lbm) and _is_const_map(ubm)):
            raise ScheduleError(f"split needs constant loop bounds; '{_loop_name(op)}' in '{kernel}' has "
                                f"bounds {lbm} to {ubm}")
        lb, ub = _const(lbm), _const(ubm)
        name = _loop_name(op)
        with self.context, op.location, ir.InsertionPoint(op):
            outer = affine.AffineForOp(lb, ub, step * factor)
            with ir.InsertionPoint(outer.body):
                d0 = ir.AffineDimExpr.get(0)
                hi = ir.AffineAddExpr.get(d0, ir.AffineConstantExpr.get(step * factor))
                exprs = [hi] if (ub - lb) % (step * factor) == 0 else [hi, ir.AffineConstantExpr.get(ub)]
                iv = outer.induction_variable
                inner = affine.AffineForOp(ir.AffineMap.get(1, 0, [d0]), ir.AffineMap.get(1, 0, exprs), step,
                                           lower_bound_operands=[iv], upper_bound_operands=[iv])
                affine.AffineYieldOp([])
            with ir.InsertionPoint(inner.body):
                affine.AffineYieldOp([])
            for kname, a in _attrs(op).items():
                if kname not in _BOUND_ATTRS:
                    inner.attributes[kname] = a
            band = ir.StringAttr(op.attributes["op_name"]) if "op_name" in op.attributes else ir.StringAttr.get(name)
            outer.attributes["loop_name"] = ir.StringAttr.get(f"{name}.outer")
            outer.attributes["op_name"] = band
            inner.attributes["loop_name"] = ir.StringAttr.get(f"{name}.inner")
            fop.induction_variable.replace_all_uses_with(inner.induction_variable)
            _move_body(fop.body, inner.body)
            op.erase()
        self._record("split", LoopHandle(kernel, name), factor=factor)
        return LoopHandle(kernel, f"{name}.outer"), LoopHandle(kernel, f"{name}.inner")

    def reorder(self, *loops):
        """Permute loops of one perfect nest: the given loops take, in the given order, the nest
        positions they occupy now (outermost first)."""
        if len(loops) < 2:
            raise ScheduleError("reorder needs at least two loops")
        resolved = [self._loop(ref) for ref in loops]
        kernel = resolved[0][0]
        if any(k != kernel for k, _ in resolved):
            raise ScheduleError("reorder: all loops must belong to the same kernel")
        ops = [op for _, op in resolved]
        names = [_loop_name(o) for o in ops]
        # The chain from the outermost to the innermost given loop must be perfectly nested.
        depth_sorted = sorted(ops, key=_depth)
        chain = [depth_sorted[0]]
        while len([o for o in ops if any(o == c for c in chain)]) < len(ops):
            body_ops = [o for o in chain[-1].opview.body.operations]
            if len(body_ops) != 2 or body_ops[0].operation.name != "affine.for":
                raise ScheduleError(f"reorder needs a perfect loop nest, but '{_loop_name(chain[-1])}' in "
                                    f"'{kernel}' contains more than one loop or other operations")
            chain.append(body_ops[0].operation)
        positions = [i for i, c in enumerate(chain) if any(c == o for o in ops)]
        if len(positions) != len(ops):
            raise ScheduleError("reorder: the loops do not form one nest (or a loop was given twice)")
        new_order = list(chain)
        for pos, op in zip(positions, ops):
            new_order[pos] = op
        old_ivs = [c.opview.induction_variable for c in chain]
        top = chain[0]
        new_loops, iv_map = [], {}
        with self.context, top.location:
            ip = ir.InsertionPoint(top)
            for c in new_order:
                fop = c.opview
                bounds = []
                for which in ("lowerBound", "upperBound"):
                    operands = list(getattr(fop, which + "Operands"))
                    mapped = []
                    for v in operands:
                        k = next((i for i, o in enumerate(old_ivs) if o == v), None)
                        if k is None:
                            mapped.append(v)
                        elif k in iv_map:
                            mapped.append(iv_map[k])
                        else:
                            raise ScheduleError(f"reorder would put loop '{_loop_name(c)}' outside loop "
                                                f"'{_loop_name(chain[k])}', on which its bounds depend")
                    bounds.append((ir.AffineMapAttr(c.attributes[which + "Map"]).value, mapped))
                with ip:
                    lp = affine.AffineForOp(bounds[0][0], bounds[1][0], ir.IntegerAttr(c.attributes["step"]).value,
                                            lower_bound_operands=bounds[0][1], upper_bound_operands=bounds[1][1])
                for n, a in _attrs(c).items():
                    if n not in _BOUND_ATTRS:
                        lp.attributes[n] = a
                with ir.InsertionPoint(lp.body):
                    affine.AffineYieldOp([])
                ip = ir.InsertionPoint.at_block_begin(lp.body)
                iv_map[next(i for i, o in enumerate(chain) if o == c)] = lp.induction_variable
                new_loops.append(lp)
        for k, old in enumerate(old_ivs):
            old.replace_all_uses_with(iv_map[k])
        _move_body(chain[-1].opview.body, new_loops[-1].body)
        top.erase()
        self._record("reorder", *[LoopHandle(kernel, n) for n in names])
        return self

    # ------------------------------------------------------------------ composition
    def compose(self, sub: "Schedule"):
        """Replay ``sub``'s primitives on the copies of its kernels inside this module."""
        mapping = {}
        for sym, fn in sub.mb.py_functions.items():
            key = _kernel_key(fn)
            if key not in self.mb.functions:
                raise ScheduleError(f"compose: kernel '{sym}' of the composed schedule is not called from "
                                    f"'{self.top}' (kernels here: {', '.join(self.kernels())})")
            mapping[sym] = self.mb.functions[key]

        def remap(a):
            if isinstance(a, BufferHandle):  # ReuseHandle included
                return type(a)(mapping[a.kernel], a.name)
            if isinstance(a, LoopHandle):
                return LoopHandle(mapping[a.kernel], a.name)
            if isinstance(a, str) and ":" in a:
                k, _, n = a.partition(":")
                return f"{mapping[k]}:{n}"
            if isinstance(a, str) and a in mapping:
                return mapping[a]
            return a

        for prim, args, kw in sub.log:
            getattr(self, prim)(*[remap(a) for a in args], **kw)
        return self

    # ------------------------------------------------------------------ build
    def estimate(self, **kw):
        """Static latency/resource estimate of this schedule (``allo_ext.passes.estimate.estimate``)."""
        from .passes.estimate import estimate

        return estimate(self, **kw)

    def build(self, target: str = "llvm", **options):
        from .backends import build

        return build(self, target, **options)


def customize(kernel: Callable, name: str | None = None) -> Schedule:
    """Compile ``kernel`` (and every kernel it calls) into a module and return its Schedule."""
    mb = ModuleBuilder()
    top = mb.compile_function(kernel, name)
    mb.module.operation.verify()
    return Schedule(mb, top)


# ---------------------------------------------------------------------- helpers
def _op_name(op) -> str:
    return ir.StringAttr(op.attributes["op_name"]).value if "op_name" in op.attributes else _loop_name(op)


def _relative(op) -> str:
    """A loop's name within its band, as Allo names it: "j" for band "C" loop "C.j", and "i.outer"
    for a split range loop "i" (whose band is "i" itself)."""
    full, band = _loop_name(op), _op_name(op)
    base = full
    while base.endswith((".outer", ".inner")):
        base = base.rsplit(".", 1)[0]
    if base == band:
        return full
    return full[len(band) + 1:] if full.startswith(band + ".") else full


def _bands(kernel: str, func_op) -> dict:
    """Band name -> LoopBand. A band holds a top-level nest and every loop inside it; each loop
    also opens a band of its own name (so nested named grids are reachable directly), and the
    k-th top-level nest is also ``S_<its loop variables>_<k>`` as in Allo."""
    top = [op.operation for op in func_op.regions[0].blocks[0].operations
           if op.operation.name in ("affine.for", "scf.for") and "loop_name" in op.operation.attributes]
    bands: dict = {}

    def inner(op):  # pre-order: outer loops first, as Allo lists them
        out = []

        def cb(o):
            if o.name in ("affine.for", "scf.for") and "loop_name" in o.attributes:
                out.append(o)
            return ir.WalkResult.ADVANCE

        op.walk(cb, walk_order=ir.WalkOrder.PRE_ORDER)
        return out

    user = [op for op in top if "allo.generated" not in op.attributes]  # Allo counts the user's loops only
    for op in top:
        loops = {}
        for o in inner(op):
            loops.setdefault(_relative(o), LoopHandle(kernel, _loop_name(o)))
        band = _op_name(op)
        axes = []
        for o in inner(op):
            if _op_name(o) != band:
                continue
            full = _loop_name(o)
            while full.endswith((".outer", ".inner")):  # a split loop keeps its variable's name
                full = full.rsplit(".", 1)[0]
            axes.append(full[len(band) + 1:] if full.startswith(band + ".") else full)
        if band in bands:
            bands[band].loops.update({n: h for n, h in loops.items() if n not in bands[band].loops})
        else:
            bands[band] = LoopBand(band, loops)
        if any(op == u for u in user):
            k = next(i for i, u in enumerate(user) if u == op)
            alias = "S_" + "_".join(a.split(".")[0] for a in dict.fromkeys(axes)) + f"_{k}"
            bands.setdefault(alias, LoopBand(alias, loops))
    for o in _for_ops(func_op):
        band = _op_name(o)
        if band not in bands:
            bands[band] = LoopBand(band, {_relative(x): LoopHandle(kernel, _loop_name(x)) for x in inner(o)})
    return bands


def _is_const_map(m: ir.AffineMap) -> bool:
    if m.n_dims or m.n_symbols or len(m.results) != 1:
        return False
    try:
        ir.AffineConstantExpr(m.results[0])
        return True
    except (ValueError, TypeError):
        return False


def _const(m: ir.AffineMap) -> int:
    return ir.AffineConstantExpr(m.results[0]).value


_BOUND_ATTRS = ("lowerBoundMap", "upperBoundMap", "step", "operandSegmentSizes")


def _attrs(op) -> dict:
    out = {}
    for na in op.attributes:
        name = na.name if hasattr(na, "name") else na
        out[name] = op.attributes[name]
    return out


def _depth(op) -> int:
    d, p = 0, op.parent
    while p is not None and p.name != "func.func":
        d += 1
        p = p.parent
    return d


def _move_body(src_block, dst_block):
    """Move every op but the terminator of ``src_block`` in front of ``dst_block``'s terminator."""
    term = list(dst_block.operations)[-1]
    for o in list(src_block.operations)[:-1]:
        o.operation.move_before(term)


def unrealised(module: ir.Module) -> list[str]:
    """The schedule hints of every kernel in ``module`` that only the CPU target can honour."""
    out = []
    for op in module.body.operations:
        if op.operation.name == "func.func" and "allo.unrealised" in op.attributes:
            name = op.attributes["sym_name"].value
            out += [f"{name}: {ir.StringAttr(a).value}" for a in ir.ArrayAttr(op.attributes["allo.unrealised"])]
    return out
