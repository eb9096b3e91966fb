"""Layout kernels: transpose (any permutation), reshape, concat, class-token repeat, slice and select.

They are rank-generic: each loops with ``grid(*shape)``, which binds a tuple of indices, and maps
it through a compile-time helper (a plain Python function run on the index tuple while the
kernel is compiled), so every access stays an affine map that the HLS emitter and MLIR's affine
passes can read. Each factory's result is cached, so equal arguments give the same function
object and a composed module compiles each instance once.

The argument checks and schedule helpers at the top are shared with pool, attention and bitlinear.

No ``from __future__ import annotations`` here: kernel annotations must be evaluated eagerly.
"""
import builtins
import functools
import math
import numbers
import re

import numpy as np

from ...lang import grid
from ...lang.errors import AlloError
from ...passes.loop_info import loop_name
from ...passes.loop_info import trip_count as loop_trip_count
from ..registry import kernel, schedule_of

__all__ = ["transpose", "reshape", "concat", "repeat_cls", "slice", "select"]


class KernelArgumentError(AlloError, ValueError):
    """A kernel factory was given arguments that do not fit together (dims, shapes, perms)."""


def check_shape(kname: str, shape, what: str = "shape") -> tuple:
    """``shape`` as a tuple of positive ints, or a KernelArgumentError naming the kernel."""
    try:
        dims = tuple(int(d) for d in shape)
    except TypeError:
        raise KernelArgumentError(f"{kname}: {what} must be a sequence of ints, got {shape!r}") from None
    if any(d < 1 or d != s for d, s in zip(dims, shape)):
        raise KernelArgumentError(f"{kname}: every dimension of {what} must be an int >= 1, got {tuple(shape)}")
    return dims


def as_int(kname: str, what: str, v) -> int:
    """``v`` as a Python int (numpy ints too, bools not), or a KernelArgumentError naming the kernel."""
    if not isinstance(v, numbers.Integral) or isinstance(v, (bool, np.bool_)):
        raise KernelArgumentError(f"{kname}: {what} must be an int, got {v!r}")
    return int(v)


def check_dim(kname: str, dim, rank: int) -> int:
    """A torch-style dim (negative counts from the end) as a non-negative axis of a rank-``rank`` tensor."""
    dim = as_int(kname, "dim", dim)
    if not -rank <= dim < rank:
        raise KernelArgumentError(f"{kname}: dim {dim} is out of range for a tensor of rank {rank} "
                                  f"(expected {-rank}..{rank - 1})")
    return dim % rank


def replace_index(i, dim, k):
    """Compile-time helper: index tuple ``i`` with position ``dim`` replaced by ``k``."""
    return tuple(i[:dim]) + (k,) + tuple(i[dim + 1:])


def insert_index(i, dim, k):
    """Compile-time helper: index tuple ``i`` with ``k`` inserted at position ``dim``."""
    return tuple(i[:dim]) + (k,) + tuple(i[dim:])


def last_loop(s, fn: str, band: str) -> str | None:
    """Name of the innermost loop of ``band`` in kernel ``fn`` (``band.i0``, ``band.i1``, ...), if any."""
    loops = [n for n in s.get_loops(fn) if n.split(".")[0] == band]
    return max(loops, key=lambda n: int(re.search(r"(\d+)$", n).group(1))) if loops else None


def pipeline_band(s, fn, band):
    """Pipeline the innermost loop of a rank-generic band (a rank-0 band has no loop to pipeline)."""
    loop = last_loop(s, fn, band)
    if loop is not None:
        s.pipeline(f"{fn}:{loop}")


# The "latency" profile of every kernel (schedule_latency). A buffer of at most LATENCY_PARTITION_MAX
# elements becomes registers. One pipelined iteration may unroll at most LATENCY_UNROLL_BUDGET innermost
# loop bodies. On JetFormer.tiny at batch 1 (allo_ext.passes.estimate):
#
#   budget   cycles   DSPs
#       64    4393    2.0k
#      128    2973    4.0k
#      256    2766    6.9k
#
# Past 128, doubling the DSPs buys 7%: the float adder chains set the floor.
LATENCY_PARTITION_MAX = 256
LATENCY_UNROLL_BUDGET = 128


def _child_loops(op) -> list:
    return [o.operation for o in op.regions[0].blocks[0].operations if o.operation.name == "affine.for"]


def _bodies(op) -> float:
    """Innermost loop bodies that one iteration of ``op`` runs (inf if a trip count is not constant)."""
    total = 0.0
    for c in _child_loops(op):
        t = loop_trip_count(c)
        total += math.inf if t is None else t * _bodies(c)
    return total or 1.0


def schedule_latency(s, fn, budget=LATENCY_UNROLL_BUDGET, partition_max=LATENCY_PARTITION_MAX):
    """The "latency" profile of any kernel, chosen from its loop structure rather than its loop names.

    - Every argument or local buffer of at most ``partition_max`` elements is completely partitioned.
      It becomes registers that every unrolled copy can read in the same cycle.
    - A top-level loop nest that runs at most ``budget`` innermost bodies in all is fully unrolled.
      Its ops then overlap with those of the kernel's other unrolled nests.
    - Otherwise, the outermost loop whose single iteration runs at most ``budget`` bodies is pipelined at
      II=1, with every loop inside it unrolled (Vitis would unroll them anyway; marking them says so in
      the C++ and unrolls them on the CPU too). A nest that is not perfect is handled child by child.
    - A loop that holds only innermost loops is pipelined even over budget, as the default profile does
      with a long dot product. Pipelining the innermost loops instead would leave a float reduction at
      one term per fadd latency (4 cycles). Its inner loops are then left unmarked: Vitis unrolls them,
      and the CPU build keeps them rolled.
    """
    for name, shape in s.buffers(fn).items():
        if shape and math.prod(shape) <= partition_max:
            s.partition(f"{fn}:{name}", dim=0, kind="complete")

    def unroll_all(op):
        s.unroll(f"{fn}:{loop_name(op)}")
        for c in _child_loops(op):
            unroll_all(c)

    def visit(op, top_level):
        trip, inner, children = loop_trip_count(op), _bodies(op), _child_loops(op)
        if top_level and trip is not None and trip * inner <= budget:
            unroll_all(op)
        elif inner <= budget or all(not _child_loops(c) for c in children):
            s.pipeline(f"{fn}:{loop_name(op)}")
            if inner <= budget:
                for c in children:
                    unroll_all(c)
        else:
            for c in children:
                visit(c, False)

    for op in _child_loops(s.mb.lookup_func(fn)):
        visit(op, True)


# ---------------------------------------------------------------------------------------------- transpose
@kernel()
def transpose(T, shape, perm):
    shape = check_shape("transpose", shape)
    rank = len(shape)
    try:
        perm = tuple(as_int("transpose", "perm entry", p) for p in perm)
    except TypeError:
        raise KernelArgumentError(f"transpose: perm must be a sequence of ints, got {perm!r}") from None
    if sorted(p % rank if -rank <= p < rank else p for p in perm) != list(range(rank)):
        raise KernelArgumentError(f"transpose: perm {perm!r} is not a permutation of the {rank} dims of shape "
                                  f"{shape} (expected each of 0..{rank - 1} once, negatives allowed, e.g. "
                                  f"{tuple(reversed(range(rank)))})")
    return _transpose(T, shape, tuple(p % rank for p in perm))


@functools.lru_cache(maxsize=None)
def _transpose(T, shape, perm):
    out_shape = tuple(shape[p] for p in perm)

    def source(i):
        # out[i] = X[j] with j[perm[k]] = i[k], as torch.permute.
        j = [None] * len(perm)
        for k, p in enumerate(perm):
            j[p] = i[k]
        return tuple(j)

    def transpose(X: T[shape]) -> T[out_shape]:
        Z: T[out_shape]
        for i in grid(*out_shape, name="tr"):
            Z[i] = X[source(i)]
        return Z

    return transpose


@schedule_of(transpose)
def _schedule_transpose(s, fn, profile):
    if profile == "latency":
        return schedule_latency(s, fn)
    pipeline_band(s, fn, "tr")


# ---------------------------------------------------------------------------------------------- reshape
@kernel()
def reshape(T, shape_in, shape_out):
    shape_in = check_shape("reshape", shape_in, "shape_in")
    shape_out = check_shape("reshape", shape_out, "shape_out")
    n_in, n_out = _numel(shape_in), _numel(shape_out)
    if n_in != n_out:
        raise KernelArgumentError(f"reshape: cannot reshape {shape_in} ({n_in} elements) to {shape_out} "
                                  f"({n_out} elements); the element counts must be equal")
    return _reshape(T, shape_in, shape_out)


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _strides(shape) -> list[int]:
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= d
    return out[::-1]


@functools.lru_cache(maxsize=None)
def _reshape(T, shape_in, shape_out):
    s_in, s_out = _strides(shape_in), _strides(shape_out)

    def source(i):
        # Row-major: flatten the output index, then unflatten it over the input shape. The index
        # objects have no Python operators, hence the explicit affine helpers (kept affine so
        # the result is still one affine.load).
        flat = None
        for ik, st in zip(i, s_out):
            term = ik.mul_const(st)
            flat = term if flat is None else flat + term
        if flat is None:  # rank-0 output
            return tuple(0 for _ in shape_in)
        return tuple(flat.floordiv_const(st).mod_const(d) for st, d in zip(s_in, shape_in))

    def reshape(X: T[shape_in]) -> T[shape_out]:
        Z: T[shape_out]
        for i in grid(*shape_out, name="rs"):
            Z[i] = X[source(i)]
        return Z

    return reshape


@schedule_of(reshape)
def _schedule_reshape(s, fn, profile):
    if profile == "latency":
        return schedule_latency(s, fn)
    pipeline_band(s, fn, "rs")


# ---------------------------------------------------------------------------------------------- concat
@kernel()
def concat(T, shape_a, shape_b, dim):
    shape_a = check_shape("concat", shape_a, "shape_a")
    shape_b = check_shape("concat", shape_b, "shape_b")
    if len(shape_a) != len(shape_b):
        raise KernelArgumentError(f"concat: tensors must have the same rank, got {shape_a} (rank {len(shape_a)}) "
                                  f"and {shape_b} (rank {len(shape_b)})")
    dim = check_dim("concat", dim, len(shape_a))
    bad = [k for k in range(len(shape_a)) if k != dim and shape_a[k] != shape_b[k]]
    if bad:
        raise KernelArgumentError(f"concat: shapes {shape_a} and {shape_b} differ in dim {bad[0]} "
                                  f"({shape_a[bad[0]]} vs {shape_b[bad[0]]}); they may only differ in the "
                                  f"concatenation dim {dim}")
    return _concat(T, shape_a, shape_b, dim)


@functools.lru_cache(maxsize=None)
def _concat(T, shape_a, shape_b, dim):
    out_shape = replace_index(shape_a, dim, shape_a[dim] + shape_b[dim])
    off = shape_a[dim]

    def concat(A: T[shape_a], B: T[shape_b]) -> T[out_shape]:
        Z: T[out_shape]
        for i in grid(*shape_a, name="cat_a"):
            Z[i] = A[i]
        for j in grid(*shape_b, name="cat_b"):
            Z[replace_index(j, dim, j[dim] + off)] = B[j]
        return Z

    return concat


@schedule_of(concat)
def _schedule_concat(s, fn, profile):
    if profile == "latency":
        return schedule_latency(s, fn)
    pipeline_band(s, fn, "cat_a")
    pipeline_band(s, fn, "cat_b")


# ---------------------------------------------------------------------------------------------- repeat_cls
@kernel()
def repeat_cls(T, B, C):
    check_shape("repeat_cls", (B, C), "(B, C)")

    def repeat_cls(cls: T[1, 1, C]) -> T[B, 1, C]:
        Z: T[B, 1, C]
        for b, c in grid(B, C, name="rep"):
            Z[b, 0, c] = cls[0, 0, c]
        return Z

    return repeat_cls


@schedule_of(repeat_cls)
def _schedule_repeat_cls(s, fn, profile):
    if profile == "latency":
        return schedule_latency(s, fn)
    s.pipeline(f"{fn}:rep.c")


# ---------------------------------------------------------------------------------------------- slice
@kernel()
def slice(T, shape, dim, start, stop, step=1):  # noqa: A001 (torch's name for it)
    shape = check_shape("slice", shape)
    dim = check_dim("slice", dim, len(shape))
    start = None if start is None else as_int("slice", "start", start)
    stop = None if stop is None else as_int("slice", "stop", stop)
    step = as_int("slice", "step", step)
    if step < 1:
        raise KernelArgumentError(f"slice: step must be an int >= 1 (as in torch), got {step!r}")
    # Python's own normalisation of negative / None / out-of-range bounds.
    lo, hi, st = builtins.slice(start, stop, step).indices(shape[dim])
    n = len(range(lo, hi, st))
    if n == 0:
        raise KernelArgumentError(f"slice: [{start}:{stop}:{step}] of dim {dim} (size {shape[dim]}) is empty; "
                                  "empty tensors are not supported by the kernels")
    return _slice(T, shape, dim, lo, st, n)


@functools.lru_cache(maxsize=None)
def _slice(T, shape, dim, lo, st, n):
    out_shape = replace_index(shape, dim, n)

    def slice(X: T[shape]) -> T[out_shape]:  # noqa: A001
        Z: T[out_shape]
        for i in grid(*out_shape, name="sl"):
            Z[i] = X[replace_index(i, dim, i[dim] * st + lo)]
        return Z

    return slice


@schedule_of(slice)
def _schedule_slice(s, fn, profile):
    if profile == "latency":
        return schedule_latency(s, fn)
    pipeline_band(s, fn, "sl")


# ---------------------------------------------------------------------------------------------- select
@kernel()
def select(T, shape, dim, index):
    shape = check_shape("select", shape)
    dim = check_dim("select", dim, len(shape))
    index = as_int("select", "index", index)
    size = shape[dim]
    if not -size <= index < size:
        raise KernelArgumentError(f"select: index {index} is out of range for dim {dim} of shape {shape} "
                                  f"(size {size}; expected {-size}..{size - 1})")
    return _select(T, shape, dim, index % size)


@functools.lru_cache(maxsize=None)
def _select(T, shape, dim, index):
    out_shape = shape[:dim] + shape[dim + 1:]

    def select(X: T[shape]) -> T[out_shape]:
        Z: T[out_shape]
        for i in grid(*out_shape, name="sel"):
            Z[i] = X[insert_index(i, dim, index)]
        return Z

    return select


@schedule_of(select)
def _schedule_select(s, fn, profile):
    if profile == "latency":
        return schedule_latency(s, fn)
    pipeline_band(s, fn, "sel")
