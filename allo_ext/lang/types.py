"""Element and array types of the kernel language.

A type is a Python object usable in annotations: ``float32`` is a scalar type and
``float32[4, 8]`` an array type. Signedness lives here, not in MLIR: MLIR integers are
signless, so the compiler picks signed or unsigned ops (divsi/divui, extsi/extui, ...)
from these objects.

``Fixed(bits, frac)`` has Allo's meaning (total and FRACTION bits; hls4ml's ``ap_fixed<16, 6>``
counts integer bits and is ``Fixed(16, 10)``) and is stored as a ``bits``-wide integer, which is
why every type exposes ``storage_bits``.
"""
from __future__ import annotations

import re
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


Q_MODES = ("TRN", "RND", "RND_ZERO", "RND_MIN_INF", "RND_INF", "RND_CONV", "TRN_ZERO")
O_MODES = ("WRAP", "SAT", "SAT_ZERO", "SAT_SYM")
MAX_FIXED_BITS = 64


class Fixed(DType):
    """``Fixed(bits, frac)``: a signed fixed-point number of ``bits`` bits in total, ``frac`` of them
    after the binary point, as in Allo (``allo.ir.types.Fixed(bits, fracs)``). The value is
    ``raw * 2**-frac`` where ``raw`` is a ``bits``-wide two's complement integer.

    hls4ml and Vitis spell the same type ``ap_fixed<W, I>`` with I = W - frac INTEGER bits:
    ``ap_fixed<16, 6>`` is ``Fixed(16, 10)``; :func:`parse_precision` reads that spelling.
    ``frac`` may exceed ``bits`` (all bits fractional, |x| < 2**(bits-frac-1)) or be negative
    (a step of ``2**-frac``), as ap_fixed's I may be negative or exceed W.

    ``q`` (quantisation) and ``o`` (overflow) apply whenever a value is converted INTO this type
    (assignment, store, cast), never to the exact intermediate results of + - *. They are
    ap_fixed's modes without the ``AP_`` prefix: q in TRN (default: toward minus infinity), RND
    (half toward plus infinity), RND_ZERO, RND_MIN_INF, RND_INF, RND_CONV (half to even),
    TRN_ZERO; o in WRAP (default), SAT, SAT_ZERO, SAT_SYM.

    In MLIR a fixed value is its raw ``i<bits>`` integer; the fixed type travels in the
    ``allo.fixed_*`` ops and ``allo.elem`` attributes (see ``allo_ext.passes.fixed_to_int``).
    """

    def __init__(self, bits: int, frac: int, q: str = "TRN", o: str = "WRAP", signed: bool = True):
        bits, frac = int(bits), int(frac)
        if not (1 <= bits <= MAX_FIXED_BITS) or (signed and bits < 2):
            raise ValueError(f"{'Fixed' if signed else 'UFixed'} needs 1..{MAX_FIXED_BITS} bits in total (2.. when "
                             f"signed), got bits={bits}")
        if abs(frac) > 4 * MAX_FIXED_BITS:
            raise ValueError(f"fraction bits must be within +-{4 * MAX_FIXED_BITS}, got frac={frac}")
        q, o = str(q).upper().removeprefix("AP_"), str(o).upper().removeprefix("AP_")
        if q not in Q_MODES:
            raise ValueError(f"unknown quantisation mode {q!r}; one of {', '.join(Q_MODES)}")
        if o not in O_MODES:
            raise ValueError(f"unknown overflow mode {o!r}; one of {', '.join(O_MODES)}")
        self.bits = bits
        self.frac = frac
        self.q, self.o = q, o
        self._signed = signed
        modes = "" if (q, o) == ("TRN", "WRAP") else f", {q!r}, {o!r}"
        self.name = f"{'' if signed else 'U'}Fixed({bits}, {frac}{modes})"

    # Allo's attribute name
    @property
    def fracs(self) -> int:
        return self.frac

    @property
    def frac_bits(self) -> int:
        return self.frac

    @property
    def int_bits(self) -> int:
        """ap_fixed's I: integer bits, sign included."""
        return self.bits - self.frac

    @property
    def is_fixed(self) -> bool:
        return True

    @property
    def signed(self) -> bool:
        return self._signed

    def with_modes(self, q: str | None = None, o: str | None = None) -> "Fixed":
        return Fixed(self.bits, self.frac, q or self.q, o or self.o, self._signed)

    @property
    def raw_min(self) -> int:
        return -(1 << (self.bits - 1)) if self._signed else 0

    @property
    def raw_max(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self._signed else (1 << self.bits) - 1

    @property
    def min(self) -> float:
        return self.raw_min * 2.0 ** -self.frac

    @property
    def max(self) -> float:
        return self.raw_max * 2.0 ** -self.frac

    @property
    def eps(self) -> float:
        return 2.0 ** -self.frac

    def ap_type(self) -> str:
        """The C++ type: ``ap_fixed<W, I, AP_Q, AP_O>`` (modes omitted when they are the defaults)."""
        base = f"ap_{'' if self._signed else 'u'}fixed<{self.bits}, {self.int_bits}"
        if (self.q, self.o) != ("TRN", "WRAP"):
            base += f", AP_{self.q}, AP_{self.o}"
        return base + ">"

    def spec(self) -> str:
        return f"{'s' if self._signed else 'u'}fixed<{self.bits},{self.frac},{self.q},{self.o}>"

    def mlir(self):
        from torch_mlir import ir

        return ir.IntegerType.get_signless(self.bits)

    @property
    def storage_numpy(self) -> np.dtype:
        """The numpy container of the raw integer (the smallest of 8/16/32/64 bits holding it)."""
        width = next(w for w in (8, 16, 32, 64) if w >= self.bits)
        return np.dtype(("int" if self._signed else "uint") + str(width))

    @property
    def numpy(self) -> np.dtype:
        """Compiled kernels take and return fixed-point arrays as float64 (exact up to 53 bits):
        inputs are quantised with the type's modes, outputs are the exact values."""
        return np.dtype(np.float64)

    def __call__(self, x):
        from .fixed import dequantize, quantize

        return dequantize(quantize(np.asarray(x, dtype=np.float64), self), self)


def UFixed(bits: int, frac: int, q: str = "TRN", o: str = "WRAP") -> Fixed:
    """``UFixed(bits, frac)``: unsigned, as Allo's; hls4ml's ``ap_ufixed<W, I>`` is ``UFixed(W, W - I)``."""
    return Fixed(bits, frac, q, o, signed=False)


_AP = re.compile(r"\s*ap_(u?)(fixed|int)\s*<\s*(-?\d+)\s*(?:,\s*(-?\d+)\s*)?(?:,\s*(?:AP_)?(\w+)\s*)?"
                 r"(?:,\s*(?:AP_)?(\w+)\s*)?(?:,\s*(\d+)\s*)?>\s*")


def parse_precision(p) -> DType:
    """A type from a DType (returned as is) or hls4ml's spelling: ``"ap_fixed<16,6>"`` is
    ``Fixed(16, 10)``; also ``ap_ufixed<W,I>``, ``ap_int<W>``, ``ap_uint<W>``,
    ``ap_fixed<W,I,AP_RND,AP_SAT>`` (modes, with or without ``AP_``), ``float32``/``float``."""
    if isinstance(p, DType):
        return p
    if not isinstance(p, str):
        raise TypeError(f"a precision is a type (e.g. Fixed(16, 10)) or a string such as 'ap_fixed<16,6>', got {p!r}")
    s = p.strip()
    named = {"float": float32, "float32": float32, "float64": float64, "double": float64}
    if s in named:
        return named[s]
    m = _AP.fullmatch(s)
    if m is None:
        raise ValueError(f"cannot read precision {p!r}: expected e.g. 'ap_fixed<16,6>', 'ap_ufixed<8,0>', "
                         "'ap_fixed<16,6,AP_RND,AP_SAT>', 'ap_int<8>' or 'float32'")
    uns, kind, w, i, q, o, n = m.groups()
    w = int(w)
    if kind == "int":
        if i is not None:
            raise ValueError(f"cannot read precision {p!r}: ap_int takes one parameter, the width")
        return Int(w, signed=not uns)
    if i is None:
        raise ValueError(f"cannot read precision {p!r}: ap_{uns}fixed needs <W, I> (total and integer bits)")
    if n not in (None, "0"):
        raise ValueError(f"cannot read precision {p!r}: the saturation-bit count N is not supported (only 0)")
    return Fixed(w, w - int(i), q or "TRN", o or "WRAP", signed=not uns)


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
