"""Legality of ``s.dataflow(kernel)``: every buffer between processes has one producer and one consumer.

Vitis HLS turns each call (and each top-level loop) of a dataflow region into a process and each
buffer between them into a ping-pong channel or FIFO. A channel read by two processes, or written
by two, breaks that single-producer/single-consumer rule: Vitis then either serialises the region
(the overlap the schedule asked for never happens) or rejects it. The estimate would still report
the overlapped II, so the schedule refuses such a region up front and names the buffer.

Constant globals are exempt: each process gets its own ROM.
"""
from __future__ import annotations

from collections import defaultdict

from torch_mlir import ir

from ..lang.errors import ScheduleError

_STORES = ("memref.store", "affine.store")


def _is_memref(v) -> bool:
    return isinstance(v.type, ir.MemRefType)


def _walk(op, fn):
    for region in op.regions:
        for block in region.blocks:
            for inner in block.operations:
                fn(inner)
                _walk(inner, fn)


def _written_args(func, funcs: dict, memo: dict) -> set[int]:
    """Indices of ``func``'s memref arguments it stores into, directly or through its callees."""
    sym = ir.StringAttr(func.attributes["sym_name"]).value
    if sym in memo:
        return memo[sym]
    memo[sym] = set()  # recursion guard; call graphs here are DAGs
    args = list(func.regions[0].blocks[0].arguments)
    written: set[int] = set()

    def visit(op):
        name = op.operation.name
        if name in _STORES:
            target = op.operands[1]
            for k, a in enumerate(args):
                if target == a:
                    written.add(k)
        elif name == "func.call":
            callee = funcs.get(ir.FlatSymbolRefAttr(op.attributes["callee"]).value)
            if callee is None:
                return
            inner = _written_args(callee, funcs, memo)
            for pos, operand in enumerate(op.operands):
                if pos in inner:
                    for k, a in enumerate(args):
                        if operand == a:
                            written.add(k)

    _walk(func, visit)
    memo[sym] = written
    return written


def check_dataflow(func, funcs: dict) -> None:
    """Raise ScheduleError if a buffer of ``func``'s body has several readers or writers among its processes.

    ``funcs`` maps symbol names to the module's ``func.func`` ops.
    """
    sym = ir.StringAttr(func.attributes["sym_name"]).value
    block = func.regions[0].blocks[0]
    names = {}
    if "allo.arg_names" in func.attributes:
        for a, n in zip(block.arguments, ir.ArrayAttr(func.attributes["allo.arg_names"])):
            names[a] = f"argument '{ir.StringAttr(n).value}'"
    constants = set()
    readers: dict = defaultdict(list)
    writers: dict = defaultdict(list)
    memo: dict = {}

    def buffer_name(v):
        if v in names:
            return names[v]
        return f"buffer {v.get_name()}"

    for op in block.operations:
        name = op.operation.name
        if name == "memref.get_global":
            constants.add(op.results[0])
            continue
        if name == "func.call":
            callee = ir.FlatSymbolRefAttr(op.attributes["callee"]).value
            process = f"call @{callee}"
            written = _written_args(funcs[callee], funcs, memo) if callee in funcs else set()
            for pos, v in enumerate(op.operands):
                if _is_memref(v):
                    (writers if pos in written else readers)[v].append(process)
            for k, r in enumerate(op.results):
                if _is_memref(r):
                    writers[r].append(process)
                    names.setdefault(r, f"the output of call @{callee}" + (f" (result {k})" if len(op.results) > 1 else ""))
            continue
        if name == "func.return":
            for v in op.operands:
                if _is_memref(v):
                    readers[v].append(f"the return of @{sym}")
            continue
        if op.operation.regions:  # a top-level loop: a process of its own
            process = f"the top-level {name} at {op.location}"
            used, stored = set(), set()

            def visit(inner):
                if inner.operation.name in _STORES:
                    stored.add(inner.operands[1])
                for v in inner.operands:
                    if _is_memref(v):
                        used.add(v)

            _walk(op, visit)
            for v in used:
                (writers if v in stored else readers)[v].append(process)
    for v, procs in list(readers.items()) + list(writers.items()):
        if v in constants or len(procs) < 2:
            continue
        role = "read" if procs is readers.get(v) else "written"
        raise ScheduleError(
            f"dataflow('{sym}'): {buffer_name(v)} is {role} by {len(procs)} processes ({', '.join(procs)}); "
            "a dataflow channel needs exactly one producer and one consumer. Give each consumer its own copy "
            "of the buffer (a copy kernel per reader), or leave this kernel without dataflow")
