"""What the HLS emitter's parts share: its error, the records it produces (ports, functions,
buffers) and small helpers that read MLIR attributes, types and locations."""
from __future__ import annotations

import re
from dataclasses import dataclass

from torch_mlir import ir

from ...lang.errors import AlloError
from ...lang.types import DType


class EmitError(AlloError):
    """An op or attribute the HLS emitter cannot print; the message names it and its source line."""


@dataclass
class FuncInfo:
    """Where one kernel's C++ function lies in kernel.cpp (for compile-error messages)."""

    sym: str             # MLIR symbol
    cpp_name: str
    first_line: int      # 1-based, in kernel.cpp
    last_line: int
    source: str          # "file:line" of the kernel definition


@dataclass
class Port:
    """One parameter of the top function: an input, or an output (results come last)."""

    name: str            # C++ parameter name
    ctype: str           # element type
    shape: tuple         # () for scalars passed by value
    is_array: bool
    is_output: bool
    dtype: DType | None = None  # our type (for numpy conversion)
    const: bool = False         # a read-only input array
    scalar_result: bool = False  # a scalar kernel result, passed as a one-element array


# ---------------------------------------------------------------------------- helpers on IR
_LOC = re.compile(r'"([^"]*)":(\d+):(\d+)')


def loc_str(loc) -> str | None:
    m = _LOC.search(str(loc))
    return f"{m.group(1)}:{m.group(2)}" if m else None


def attr_str(op, name, default=None):
    return ir.StringAttr(op.attributes[name]).value if name in op.attributes else default


def attr_int(op, name, default=None):
    return ir.IntegerAttr(op.attributes[name]).value if name in op.attributes else default


def funcs_of(module) -> dict:
    return {ir.StringAttr(op.attributes["sym_name"]).value: op.operation
            for op in module.body.operations if op.operation.name == "func.func"}


def walk(op, cb):
    def f(o):
        cb(o)
        return ir.WalkResult.ADVANCE

    op.walk(f)


def memref_shape(t) -> tuple:
    return tuple(ir.MemRefType(t).shape)


def memref_elem(t):
    return ir.MemRefType(t).element_type


def is_memref(t) -> bool:
    return str(t).startswith("memref<")


_WRITES = {"affine.store", "memref.store", "memref.copy", "func.call"}
DROPPED = {"cf.assert"}  # host-only checks: no hardware meaning


def is_barrier(op) -> bool:
    """An op that may write memory: a read is never moved across one (nested regions count too)."""
    return op.name in _WRITES or len(op.regions) > 0


@dataclass
class Mem:
    """How a memref value is printed: a C++ array, a scalar variable or a one-element array."""

    name: str
    elem: str          # C element type
    shape: tuple
    kind: str          # "array", "scalar" (a C variable) or "cell" (a one-element array: name[0])
    elem_t: object     # MLIR element type
    const: bool = False
    fxt: object = None  # the Fixed type of its elements (their C type is then ap_fixed)
    sink: bool = False  # a scalar nobody reads: its stores are dead and not printed

    def access(self, idx: list[str]) -> str:
        if self.kind == "scalar":
            return self.name
        if self.kind == "cell":
            return f"{self.name}[0]"
        return self.name + "".join(f"[{i}]" for i in idx)

    def decl(self) -> str:
        dims = "".join(f"[{d}]" for d in self.shape) if self.kind == "array" else ""
        return f"{self.elem} {self.name}{dims}"


def param_decl(p: Port) -> str:
    if not p.is_array:
        return f"{p.ctype} {p.name}"
    dims = "".join(f"[{d}]" for d in p.shape) if p.shape else "[1]"
    return f"{'const ' if p.const else ''}{p.ctype} {p.name}{dims}"


def ctype_bytes(ctype: str) -> int:
    """Bytes per element, for the stack estimate only (ap types: an upper bound)."""
    fixed = {"float": 4, "int": 4, "double": 8, "bool": 1}
    if ctype in fixed:
        return fixed[ctype]
    m = re.fullmatch(r"u?int(\d+)_t", ctype)
    return int(m.group(1)) // 8 if m else 8

