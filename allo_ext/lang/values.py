"""What names in a kernel body stand for while it is being compiled."""
from __future__ import annotations

from dataclasses import dataclass

from torch_mlir import ir

from .types import ArrayType, DType


@dataclass
class TV:
    """A typed SSA scalar: MLIR integers are signless, so the DType carries signedness."""

    value: ir.Value
    dtype: DType


@dataclass
class Literal:
    """A Python number that takes the type of whatever it is combined with."""

    value: float | int | bool


@dataclass
class Buffer:
    """An array: a memref value with its ArrayType and the name users address it by."""

    value: ir.Value
    type: ArrayType
    name: str


@dataclass
class ScalarVar:
    """A mutable scalar, held in a rank-0 ``memref.alloca`` (LLVM's mem2reg turns it back into SSA,
    and the HLS emitter prints it as a plain C variable)."""

    slot: ir.Value
    dtype: DType
    name: str


@dataclass
class LiteralSelect:
    """``a if cond else b`` with two untyped constants: it takes a type where it is stored or combined."""

    cond: TV
    a: Literal
    b: Literal


@dataclass
class Table:
    """A constant array of a given element type (``table(values, T)`` in a kernel's closure): with a
    fixed-point type, the values are quantised to it at compile time (lookup tables for exp, 1/x)."""

    values: object
    dtype: DType
