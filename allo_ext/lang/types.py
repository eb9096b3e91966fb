"""Element and array types of the kernel language.

A type is a Python object usable in annotations: ``float32`` is a scalar type and
``float32[4, 8]`` an array type. Signedness lives here, not in MLIR: MLIR integers are
signless, so the compiler picks signed or unsigned ops (divsi/divui, extsi/extui, ...)
from these objects.

``Fixed(W, I)`` follows ap_fixed semantics and is stored as a W-bit integer, which is why
every type exposes ``storage_bits``: backends that lower fixed point to integers only need
that and ``frac_bits``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class DType:
    """A scalar element type."""

    name: str = "?"
    bits: int = 0

    # -- predicates used by the compiler
    @property
    def is_float(self) -> bool:
        return False

    @property
    def is_int(self) -> bool:
        return False

    @property
    def is_index(self) -> bool:
        return False

    @property
    def is_fixed(self) -> bool:
        return False

    @property
    def signed(self) -> bool:
        return True

    @property
    def storage_bits(self) -> int:
        return self.bits

    @property
    def fracs(self) -> int:
        """Fraction bits (Allo's name): 0 except for fixed point."""
        return getattr(self, "frac_bits", 0)

    def mlir(self):
        raise NotImplementedError

    @property
    def numpy(self) -> np.dtype:
        raise NotImplementedError

    def __getitem__(self, shape) -> "ArrayType":
        if not isinstance(shape, tuple):
            shape = (shape,)
        dims = []
        for d in shape:
            if isinstance(d, (tuple, list)):
                dims.extend(d)
            else:
                dims.append(d)
        for d in dims:
            if not isinstance(d, (int, np.integer)) or int(d) < 0:
                raise TypeError(
                    f"array dimensions must be non-negative Python ints, got {d!r} in {self.name}{list(shape)}"
                )
        return ArrayType(self, tuple(int(d) for d in dims))

    def __call__(self, x):
        # Outside a kernel a type is a numpy cast; inside one the compiler reads it as a cast op.
        return self.numpy.type(x)

    def __repr__(self) -> str:
        return self.name

    def __eq__(self, other) -> bool:
        return isinstance(other, DType) and repr(self) == repr(other)

    def __hash__(self) -> int:
        return hash(repr(self))


class Float(DType):
    def __init__(self, bits: int):
        if bits not in (16, 32, 64, "bf16"):
            raise ValueError(f"Float supports 16, 32 or 64 bits (or 'bf16'), got {bits}")
        self.is_bf16 = bits == "bf16"
        self.bits = 16 if self.is_bf16 else bits
        self.name = "bfloat16" if self.is_bf16 else f"float{bits}"

    @property
    def is_float(self) -> bool:
        return True

    @property
    def fracs(self) -> int:
        """Mantissa bits (Allo's name)."""
        return 7 if self.is_bf16 else {16: 10, 32: 23, 64: 52}[self.bits]

    @property
    def exponent(self) -> int:
        return 8 if self.is_bf16 else {16: 5, 32: 8, 64: 11}[self.bits]

    def mlir(self):
        from torch_mlir import ir

        if self.is_bf16:
            return ir.BF16Type.get()
        return {16: ir.F16Type.get, 32: ir.F32Type.get, 64: ir.F64Type.get}[self.bits]()

    @property
    def numpy(self) -> np.dtype:
        if self.is_bf16:
            try:
                import ml_dtypes
            except ImportError:
                raise TypeError("bfloat16 arrays need the ml_dtypes package (pip install ml_dtypes)") from None
            return np.dtype(ml_dtypes.bfloat16)
        return np.dtype(f"float{self.bits}")


class Int(DType):
    def __init__(self, bits: int, signed: bool = True):
        if not 1 <= int(bits) <= 128:
            raise ValueError(f"Int supports 1 to 128 bits, got {bits}")
        bits = int(bits)
        self.bits = bits
        self._signed = signed
        self.name = ("int" if signed else "uint") + str(bits) if bits != 1 else "bool"

    @property
    def is_int(self) -> bool:
        return True

    @property
    def signed(self) -> bool:
        return self._signed and self.bits != 1

    def mlir(self):
        from torch_mlir import ir

        return ir.IntegerType.get_signless(self.bits)

    @property
    def numpy(self) -> np.dtype:
        if self.bits == 1:
            return np.dtype(np.bool_)
        # odd widths (int4, uint12) are held in the next numpy width, as ap_int<N> is in C++
        if self.bits > 64:
            raise TypeError(f"{self.name} has no numpy dtype (wider than 64 bits)")
        width = next(w for w in (8, 16, 32, 64) if w >= self.bits)
        return np.dtype(("int" if self._signed else "uint") + str(width))


class Index(DType):
    name = "index"
    bits = 64

    @property
    def is_index(self) -> bool:
        return True

    def mlir(self):
        from torch_mlir import ir

        return ir.IndexType.get()

    @property
    def numpy(self) -> np.dtype:
        return np.dtype(np.int64)


class Fixed(DType):
    """ap_fixed<W, I>: W bits in total, I of them integer bits (sign included when signed).

    Stored as a W-bit integer holding ``value * 2**(W - I)``. Truncation and wrap-around are the
    defaults, as in ap_fixed; the arithmetic lowering arrives with the fixed-point backend work.
    """

    def __init__(self, W: int, I: int, signed: bool = True):
        if not (1 <= W <= 64):
            raise ValueError(f"Fixed width W must be in 1..64, got {W}")
        self.bits = W
        self.int_bits = I
        self._signed = signed
        self.name = f"{'' if signed else 'U'}Fixed({W}, {I})"

    @property
    def is_fixed(self) -> bool:
        return True

    @property
    def signed(self) -> bool:
        return self._signed

    @property
    def frac_bits(self) -> int:
        return self.bits - self.int_bits

    def mlir(self):
        from torch_mlir import ir

        return ir.IntegerType.get_signless(self.bits)

    @property
    def numpy(self) -> np.dtype:
        width = next(w for w in (8, 16, 32, 64) if w >= self.bits)
        return np.dtype(("int" if self._signed else "uint") + str(width))


def UFixed(W: int, I: int) -> Fixed:
    return Fixed(W, I, signed=False)


@dataclass(frozen=True)
class ArrayType:
    """``dtype[shape]``: a statically shaped array, lowered to a memref."""

    dtype: DType
    shape: tuple

    def mlir(self):
        from torch_mlir import ir

        return ir.MemRefType.get(list(self.shape), self.dtype.mlir())

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __repr__(self) -> str:
        return f"{self.dtype.name}[{', '.join(map(str, self.shape))}]"


float16 = Float(16)
bfloat16 = Float("bf16")
float32 = Float(32)
float64 = Float(64)
int1 = bool_ = Int(1)
int8, int16, int32, int64 = (Int(b) for b in (8, 16, 32, 64))
uint8, uint16, uint32, uint64 = (Int(b, signed=False) for b in (8, 16, 32, 64))
index = Index()

_BY_NUMPY = {t.numpy: t for t in (float32, float64, int8, int16, int32, int64, uint8, uint16, uint32, uint64)}


def from_numpy(dtype) -> DType:
    dt = np.dtype(dtype)
    if dt not in _BY_NUMPY:
        raise TypeError(f"no kernel type for numpy dtype {dt}; supported: {sorted(str(k) for k in _BY_NUMPY)}")
    return _BY_NUMPY[dt]
