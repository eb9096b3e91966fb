"""target="llvm": lower the scheduled module to LLVM and run it through MLIR's ExecutionEngine.

Pipeline (see shared/notes/mlir-recipes.md for why each step is there):
1. unroll the loops the schedule marked ``hls.unroll`` (transform dialect);
2. results become out-parameters (``buffer-results-to-out-params`` with
   ``modify-public-functions``: without it the public function is skipped and its output is
   never written), then ownership-based deallocation of intermediate buffers;
3. vectorise (``vectorize=True``, the default): scalar temporaries become SSA values and loops
   whose accesses are unit-stride run on ``vector<8xf32>`` (see ``VECTORIZE``); a vector ``exp``
   becomes a polynomial (``vector_exp.py``) instead of one libm call per lane;
4. ``memref.copy`` becomes ``linalg.copy`` (the JIT has no ``memrefCopy`` runtime symbol);
5. affine/scf/vector/memref/arith/math to LLVM. Buffers come from ``aligned_alloc``: the
   default ``malloc``-and-round-up hides the allocation from LLVM's alias analysis (the aligned
   pointer is computed through an integer), which stopped every store-load reordering LLVM needs.
"""
from __future__ import annotations

import ctypes
import functools
import time

import numpy as np
from torch_mlir import ir, passmanager
from torch_mlir.dialects import linalg
from torch_mlir.execution_engine import ExecutionEngine

from ..lang.errors import AlloError, CallError
from ..lang import fixed as fx
from ..passes.fixed_to_int import fixed_to_int
from ..passes.loop_info import loop_name, span, trip_count
from ..passes.safety import TRAP, insert_runtime_checks, trap_message
from .poison import run_poisoned
from .vector_exp import expand_vector_exp
from ..lang.types import ArrayType

BUFFERIZE = ("builtin.module(buffer-results-to-out-params{modify-public-functions=1 hoist-static-allocs=1 "
             "hoist-dynamic-allocs=1},buffer-deallocation-pipeline)")
# The kernels keep scalars in rank-0 buffers (``x0: T = X[i, k]``) read with memref.load, which the
# affine vectoriser cannot see through: raise those to affine ops, forward the stores to the loads
# (scalrep), then vectorise. Measured on JetFormer.tiny at B=1024: 2.2x faster than the scalar
# code LLVM's own vectorisers made of the same loops (they left the 8-wide channel loops scalar).
# 8 lanes: the channel counts of the FPGA-sized models are multiples of 8; wider loops unroll.
VECTORIZE = ("builtin.module(func.func(affine-raise-from-memref,affine-scalrep,"
             "affine-super-vectorize{virtual-vector-size=8}))")
# Math before vectors: convert-math-to-libm unrolls a vector erf into vector.extract/insert around
# scalar calls, which convert-vector-to-llvm then lowers.
LOWER = ("builtin.module(func.func(llvm-request-c-wrappers),func.func(convert-linalg-to-loops),"
         "convert-vector-to-scf,expand-strided-metadata,lower-affine,convert-scf-to-cf,convert-math-to-llvm,"
         "convert-math-to-libm,convert-vector-to-llvm,finalize-memref-to-llvm{use-aligned-alloc=1},"
         "convert-arith-to-llvm,convert-cf-to-llvm,convert-func-to-llvm,"
         "convert-index-to-llvm,convert-ub-to-llvm,reconcile-unrealized-casts)")



def _run(module: ir.Module, pipeline: str, what: str):
    try:
        passmanager.PassManager.parse(pipeline).run(module.operation)
    except ir.MLIRError as e:
        raise AlloError(f"MLIR lowering failed at stage '{what}': {e}") from e


def _apply_unroll(module: ir.Module):
    loops = []

    def cb(op):
        if op.name == "affine.for" and "hls.unroll" in op.attributes:
            loops.append(op)
        return ir.WalkResult.ADVANCE

    module.operation.walk(cb)
    if not loops:
        return
    lines = []
    for k, op in enumerate(loops):
        factor = ir.IntegerAttr(op.attributes["hls.unroll"]).value
        op.attributes["allo.unroll_id"] = ir.IntegerAttr.get(ir.IntegerType.get_signless(64), k)
        if factor == 0:
            factor = trip_count(op)
            if factor is None:
                raise AlloError(f"cannot fully unroll loop '{loop_name(op)}': its trip count is not constant")
        elif trip_count(op) is None and factor > 1:
            raise AlloError(f"cannot unroll loop '{loop_name(op)}' by {factor}: its trip count is not constant "
                            "(a split with a remainder has a min() upper bound); split by a factor that divides "
                            "the trip count, or unroll fully")
        if factor <= 1:
            continue
        lines.append(f'%l{k} = transform.structured.match ops{{["affine.for"]}} attributes {{allo.unroll_id = {k} : i64}}'
                     f" in %root : (!transform.any_op) -> !transform.any_op\n"
                     f"transform.loop.unroll %l{k} {{factor = {factor} : i64}} : !transform.any_op")
    # Innermost loops first: unrolling an outer loop clones its inner loops (and their ids).
    script = ("module attributes {transform.with_named_sequence} {\n"
              "transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {\n"
              + "\n".join(reversed(lines)) + "\ntransform.yield\n}\n}")
    tmod = ir.Module.parse(script)
    t_op = tmod.body.operations[0].operation
    t_op.move_before(module.body.operations[0].operation) if len(module.body.operations) else None
    # transform-interpreter looks for the named sequence in a nested module with that attribute.
    holder = ir.Operation.parse(
        'module attributes {transform.with_named_sequence} {}')
    module.body.append(holder)
    t_op.move_before(list(holder.regions[0].blocks[0].operations)[0]) if len(holder.regions[0].blocks[0].operations) \
        else holder.regions[0].blocks[0].append(t_op)
    _run(module, "builtin.module(transform-interpreter)", "unroll")
    holder.erase()


def _funcs(module: ir.Module) -> dict:
    return {op.attributes["sym_name"].value: op for op in module.body.operations
            if op.operation.name == "func.func"}


def _has_vector_transfer(op) -> bool:
    found = []

    def cb(o):
        if o.name.startswith("vector.transfer"):
            found.append(o)
            return ir.WalkResult.INTERRUPT
        return ir.WalkResult.ADVANCE

    op.walk(cb)
    return bool(found)


def _unsound_vector_loops(func) -> list[str]:
    """Loops around vector accesses whose range is not a whole number of their steps. The vectoriser
    makes such loops (a 6-iteration loop in steps of 8, or a split's 4-iteration inner loop) and
    then masks the partial vector against the buffer's bounds, not the loop's, or not at all: over
    a slice of a wider row (a concat writing columns 0..5 of 12) the last step writes past the
    loop's range. A function with one, or with a vector of odd-width integers, is kept scalar."""
    bad = []

    def cb(op):
        if op.name.startswith("vector.transfer"):
            # LLVM packs a vector of iN into N-bit lanes with no padding, while a scalar iN takes its
            # padded ABI slot in memory (i1 and i2..i7: a byte; i24: 4 bytes; i40: 8 bytes): unless N
            # is a power of two of at least 8, the layouts differ and such data stays scalar.
            t = ir.VectorType((op.results[0] if op.name.endswith("read") else op.operands[0]).type)
            if isinstance(t.element_type, ir.IntegerType) and t.element_type.width not in (8, 16, 32, 64, 128):
                bad.append(f"{op.name} of {t}")
        if op.name == "affine.for" and _has_vector_transfer(op):
            d = span(op)
            if d is None or d % ir.IntegerAttr(op.attributes["step"]).value:
                bad.append(loop_name(op))
        return ir.WalkResult.ADVANCE

    func.operation.walk(cb)
    return bad


def _vectorize(module: ir.Module) -> ir.Module:
    """``VECTORIZE`` on a copy of ``module``; functions with an unsound vector loop (see
    ``_unsound_vector_loops``) are taken back from the original, unvectorised."""
    vec = ir.Module.parse(module.operation.get_asm(enable_debug_info=True))
    _run(vec, VECTORIZE, "vectorize")
    orig = _funcs(module)
    for name, f in _funcs(vec).items():
        if _unsound_vector_loops(f):
            orig[name].operation.move_before(f.operation)
            f.operation.erase()
    return vec


def copies_to_linalg(module: ir.Module):
    """Rewrite every memref.copy as linalg.copy (the JIT has no memrefCopy runtime symbol)."""
    copies = []

    def cb(op):
        if op.name == "memref.copy":
            copies.append(op)
        return ir.WalkResult.ADVANCE

    module.operation.walk(cb)
    for op in copies:
        with op.location, ir.InsertionPoint(op):
            linalg.copy(op.operands[0], outs=[op.operands[1]])
        op.erase()


@functools.lru_cache(maxsize=None)
def _keep_freed_memory():
    """Make glibc reuse freed buffers instead of unmapping them.

    Kernels allocate their outputs with malloc. Blocks above glibc's mmap threshold (128 KiB at
    first) are mapped on every call and unmapped on free, so every call page-faults its whole
    working set again: on a 32-particle JetFormer at B=256 that was 163k page faults and 70% of
    the run time. Raising the mmap threshold (to glibc's documented 64-bit maximum, 32 MiB) and
    the trim threshold keeps that memory in the heap for the next call. This is process-wide and
    only affects how eagerly freed memory is returned to the OS.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False  # not glibc: nothing to tune
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    return bool(libc.mallopt(M_MMAP_THRESHOLD, 32 << 20) and libc.mallopt(M_TRIM_THRESHOLD, 512 << 20))


class CPUModule:
    """A compiled kernel: call it with numpy arrays, get numpy arrays back."""

    def __init__(self, schedule, opt_level: int = 2, checks: bool = True, vectorize: bool = True):
        _keep_freed_memory()
        t0 = time.perf_counter()
        self.name = schedule.top
        self.arg_names, self.arg_types, self.res_types = schedule.mb.signatures[schedule.top]
        self.checks = checks
        self._trapped: tuple | None = None
        with schedule.context:
            # With debug info: the check sites name the kernel's source lines.
            module = ir.Module.parse(schedule.module.operation.get_asm(enable_debug_info=True))
            fixed_to_int(module)
            self.entry = _box_scalar_results(module, self.name, self.res_types)
            _apply_unroll(module)
            # Bounds and division checks where they are not proven unnecessary (passes/safety.py).
            self.check_sites = insert_runtime_checks(module) if checks else []
            if vectorize:
                module = _vectorize(module)
                expand_vector_exp(module)
            _run(module, BUFFERIZE, "bufferize")
            copies_to_linalg(module)
            _check_outputs_written(module, self.entry, len(self.res_types))
            self.lowered_ir = str(module)
            _run(module, LOWER, "lower to LLVM")
            self.engine = ExecutionEngine(module, opt_level=opt_level)
            if self.check_sites:
                self._trap_cb = _TRAP_TYPE(self._on_trap)  # kept alive as long as the engine
                self.engine.register_runtime(TRAP, self._trap_cb)
            # The JIT generates code lazily, at the first lookup of a symbol; do it now so that the
            # first call is not slow and compile_seconds counts the code generation too.
            self._packed_fn = self.engine.lookup(self.entry)

        def storage(d):  # fixed point runs on its raw integers (see allo_ext.lang.fixed)
            return d.storage_numpy if d.is_fixed else d.numpy

        self._out_specs = [(t.shape, storage(t.dtype)) if isinstance(t, ArrayType) else ((), storage(t))
                           for t in self.res_types]
        self.compile_seconds = time.perf_counter() - t0

    def __call__(self, *args):
        if len(args) != len(self.arg_types):
            raise CallError(f"kernel '{self.name}' takes {len(self.arg_types)} argument(s) "
                            f"({', '.join(f'{n}: {t}' for n, t in zip(self.arg_names, self.arg_types))}), "
                            f"got {len(args)}")
        packed, keep = [], []
        for n, t, a in zip(self.arg_names, self.arg_types, args):
            if isinstance(t, ArrayType) and t.dtype.is_fixed:
                arr = np.asarray(a)
                if arr.shape != t.shape or arr.dtype.kind not in "fiu":
                    raise CallError(f"argument '{n}' of kernel '{self.name}': expected {t} as real numbers "
                                    f"(shape {t.shape}, quantised to {t.dtype} on the way in), got shape {arr.shape}, "
                                    f"dtype {arr.dtype}")
                arr = np.ascontiguousarray(fx.to_storage(fx.quantize(arr, t.dtype), t.dtype))
                keep.append(arr)
                packed.append(arr)
            elif not isinstance(t, ArrayType) and t.is_fixed:
                c = np.ctypeslib.as_ctypes_type(t.storage_numpy)(fx.to_storage(fx.quantize(a, t), t).item())
                keep.append(c)
                packed.append(c)
            elif isinstance(t, ArrayType):
                arr = np.asarray(a)
                if arr.shape != t.shape or arr.dtype != t.dtype.numpy:
                    raise CallError(f"argument '{n}' of kernel '{self.name}': expected {t} "
                                    f"(shape {t.shape}, dtype {t.dtype.numpy}), got shape {arr.shape}, dtype {arr.dtype}")
                arr = np.ascontiguousarray(arr)
                keep.append(arr)
                packed.append(arr)
            else:
                c = np.ctypeslib.as_ctypes_type(t.numpy)(a)
                keep.append(c)
                packed.append(c)
        def invoke(outs):
            self._trapped = None
            call_args, alive = _pack(packed + outs)
            self._packed_fn(call_args)
            del alive
            if self._trapped is not None:
                raise trap_message(self.check_sites, *self._trapped)

        outs = run_poisoned(self.name, self._out_specs, invoke)
        for t, arr in [*zip(self.arg_types, keep), *zip(self.res_types, outs or [])]:
            _sign_extend_odd_width(t, arr)
        outs = [fx.dequantize(fx.from_storage(o, _elem(t)), _elem(t)) if _elem(t).is_fixed else o
                for o, t in zip(outs, self.res_types)]
        if not outs:
            return None
        # scalar results come back boxed in rank-0 arrays (see _box_scalar_results)
        outs = [o[()] if not isinstance(t, ArrayType) else o for o, t in zip(outs, self.res_types)]
        return outs[0] if len(outs) == 1 else tuple(outs)


    def _on_trap(self, site: int, a: int, b: int) -> None:
        if self._trapped is None:  # the first failure is the one to report
            self._trapped = (site, a, b)


_TRAP_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64)


@functools.lru_cache(maxsize=None)
def _descriptor_class(rank: int):
    # A ranked memref descriptor: {allocated, aligned, offset, shape[rank], strides[rank]}. Built
    # here once per rank (torch_mlir.runtime.get_ranked_memref_descriptor makes a new ctypes class
    # per call, about 40 us per argument); the pointers are untyped, the element type lives in the
    # compiled code.
    fields = [("allocated", ctypes.c_void_p), ("aligned", ctypes.c_void_p), ("offset", ctypes.c_longlong)]
    if rank:
        fields += [("shape", ctypes.c_longlong * rank), ("strides", ctypes.c_longlong * rank)]
    return type(f"MemRef{rank}D", (ctypes.Structure,), {"_fields_": fields})


def _pack(args: list):
    """The argument array of the JIT's packed entry point: element k points at argument k's value;
    for a memref (a numpy array) that value is a pointer to its descriptor, for a scalar (a ctypes
    value) the value itself. Returns the array and the objects it points into, to keep alive."""
    packed = (ctypes.c_void_p * len(args))()
    alive = []
    for k, a in enumerate(args):
        if isinstance(a, np.ndarray):
            d = _descriptor_class(a.ndim)()
            d.allocated = d.aligned = a.ctypes.data
            if a.ndim:
                d.shape[:] = a.shape
                d.strides[:] = [st // a.itemsize for st in a.strides]
            a = ctypes.c_void_p(ctypes.addressof(d))
            alive.append(d)
        alive.append(a)
        packed[k] = ctypes.addressof(a)
    return packed, alive


def _elem(t):
    return t.dtype if isinstance(t, ArrayType) else t


def _sign_extend_odd_width(t, arr):
    """LLVM stores an iN with N below the storage width without defined upper bits (they read back
    as zeros): sign-extend signed odd-width integers (Int(5) in an int8 array) in place."""
    dt = t.dtype if isinstance(t, ArrayType) else t
    if not isinstance(arr, np.ndarray) or not getattr(dt, "is_int", False) or not dt.signed:
        return
    w = arr.dtype.itemsize * 8
    if dt.bits >= w:
        return
    shift = w - dt.bits
    arr[...] = (arr << shift) >> shift


def _box_scalar_results(module: ir.Module, top: str, res_types) -> str:
    """The function to invoke: ``top`` itself, or when it returns scalars, a wrapper that calls it
    and returns each scalar in a rank-0 memref, since only memref results become the
    out-parameters the JIT hands back (buffer-results-to-out-params leaves scalars alone)."""
    if all(isinstance(t, ArrayType) for t in res_types):
        return top
    from torch_mlir.dialects import func, memref

    f = next(op for op in module.body.operations
             if op.operation.name == "func.func" and op.attributes["sym_name"].value == top)
    ftype = ir.FunctionType(ir.TypeAttr(f.attributes["function_type"]).value)
    name = f"{top}__boxed"
    with ir.InsertionPoint(module.body), ir.Location.unknown():
        boxed = [r if isinstance(t, ArrayType) else ir.MemRefType.get([], r) for r, t in zip(ftype.results, res_types)]
        w = func.FuncOp(name, ir.FunctionType.get(list(ftype.inputs), boxed))
        block = w.add_entry_block()
        with ir.InsertionPoint(block):
            call = func.CallOp(list(ftype.results), ir.FlatSymbolRefAttr.get(top), list(block.arguments))
            outs = []
            for r, t, bt in zip(call.results, res_types, boxed):
                if isinstance(t, ArrayType):
                    outs.append(r)
                else:
                    m = memref.AllocOp(bt, [], []).result
                    memref.store(r, m, [])
                    outs.append(m)
            func.ReturnOp(outs)
    return name


def _check_outputs_written(module: ir.Module, top: str, n_results: int):
    """After out-param conversion every output argument of the top function must be written by something."""
    for op in module.body.operations:
        if op.operation.name == "func.func" and op.attributes["sym_name"].value == top:
            args = list(op.regions[0].blocks[0].arguments)
            for k, a in enumerate(args[len(args) - n_results:]):
                if not list(a.uses):
                    raise AlloError(f"kernel '{top}': output {k} is never written after lowering "
                                    "(an MLIR pass dropped it); refusing to return an unwritten buffer")


def build_llvm(schedule, opt_level: int = 2, checks: bool = True, vectorize: bool = True) -> CPUModule:
    """``checks=False`` leaves out the run-time bounds and division checks (for speed; accesses the
    compiler proves in bounds are never checked either way). ``vectorize=False`` skips the MLIR
    vectoriser (same results; for comparison and for isolating a lowering bug)."""
    return CPUModule(schedule, opt_level=opt_level, checks=checks, vectorize=vectorize)

