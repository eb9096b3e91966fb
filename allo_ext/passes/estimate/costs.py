"""Operation costs of the estimate: latencies and resources per op (see the package docstring)."""
from __future__ import annotations

from dataclasses import dataclass

from torch_mlir import ir

from ...lang.errors import AlloError


class EstimateError(AlloError):
    """The estimator met IR it has no cost for, or a loop whose trip count it cannot know."""


# ------------------------------------------------------------------------------------------- constants
@dataclass(frozen=True)
class OpCost:
    latency: int
    dsp: int = 0
    lut: int = 0
    ff: int = 0


FREE = OpCost(0)
MEM_PORTS = 2
RAM_READ_LATENCY = 2
REG_READ_LATENCY = 1
STORE_LATENCY = 1
SCALAR_ACCESS_LATENCY = 0
LOOP_OVERHEAD = 1
LOOP_CONTROL_LUT = 40
LOOP_CONTROL_FF = 30
LUTRAM_MAX_BITS = 1024
BRAM18_SHAPES = ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512))  # (width, depth)

_F_ADD, _F_MUL = OpCost(4, 2, 220, 200), OpCost(3, 3, 130, 150)
_F_DIV, _F_SQRT = OpCost(12, 0, 800, 760), OpCost(12, 0, 480, 400)
_F_CMP, _F_LIB = OpCost(1, 0, 70, 0), OpCost(30, 10, 2500, 2500)
F32_OPS = {
    "arith.addf": _F_ADD, "arith.subf": _F_ADD, "arith.mulf": _F_MUL, "arith.divf": _F_DIV,
    "arith.remf": _F_DIV, "math.sqrt": _F_SQRT, "math.rsqrt": _F_SQRT,
    "math.exp": OpCost(9, 7, 800, 300), "math.log": OpCost(12, 8, 900, 600),
    "math.tanh": _F_LIB, "math.erf": _F_LIB, "math.powf": _F_LIB,
    "arith.cmpf": _F_CMP, "arith.maximumf": _F_CMP, "arith.minimumf": _F_CMP,
    "arith.maxnumf": _F_CMP, "arith.minnumf": _F_CMP,
    "arith.negf": FREE, "math.absf": FREE,
    "arith.sitofp": OpCost(5, 0, 220, 340), "arith.uitofp": OpCost(5, 0, 220, 340),
    "arith.fptosi": OpCost(4, 0, 200, 200), "arith.fptoui": OpCost(4, 0, 200, 200),
    "math.roundeven": OpCost(4, 0, 300, 200), "math.floor": OpCost(4, 0, 300, 200),
    "math.ceil": OpCost(4, 0, 300, 200), "math.round": OpCost(4, 0, 300, 200),
    "arith.extf": OpCost(1, 0, 100, 100), "arith.truncf": OpCost(2, 0, 150, 100),
}
F64_OPS = {
    **{k: OpCost(2 * v.latency, v.dsp * 2, v.lut * 2, v.ff * 2) for k, v in F32_OPS.items()},
    "arith.addf": OpCost(5, 3, 700, 600), "arith.subf": OpCost(5, 3, 700, 600),
    "arith.mulf": OpCost(6, 11, 300, 350), "arith.divf": OpCost(30, 0, 3200, 3000),
    "math.sqrt": OpCost(30, 0, 1800, 1700), "math.exp": OpCost(20, 26, 2000, 1500),
    "math.log": OpCost(20, 30, 2500, 2000),
    "arith.cmpf": _F_CMP, "arith.maximumf": _F_CMP, "arith.minimumf": _F_CMP,
    "arith.negf": FREE, "math.absf": FREE,
}
_INT_ONE_CYCLE = {"arith.addi", "arith.subi", "arith.cmpi", "arith.maxsi", "arith.minsi", "arith.maxui",
                  "arith.minui", "arith.shli", "arith.shrsi", "arith.shrui", "math.absi"}
_WIRES = {"arith.andi", "arith.ori", "arith.xori", "arith.extsi", "arith.extui", "arith.trunci",
          "arith.index_cast", "arith.index_castui", "arith.bitcast", "arith.select"}  # bit logic and muxes
_INT_DIV = {"arith.divsi", "arith.divui", "arith.remsi", "arith.remui", "arith.floordivsi", "arith.ceildivsi"}
_NO_TIME = {"arith.constant", "memref.alloc", "memref.alloca", "memref.get_global", "memref.dealloc",
            "affine.yield", "func.return", "cf.assert"}


def int_mul_cost(width: int) -> OpCost:
    """A DSP48E2 multiplies 27 x 18 bits: one up to 18 bits, three (a 2-stage cascade) up to 32."""
    if width <= 18:
        return OpCost(1, 1, 10, 20)
    if width <= 32:
        return OpCost(2, 3, 30, 60)
    return OpCost(4, 10, 80, 150)


# Fixed point (the ``allo.fixed_*`` ops of allo_ext.lang.fixed_ops; raw integers of the type's width):
# + - and compares are integer adders, * a DSP multiply by the operand widths. A cast that truncates and
# wraps (TRN/WRAP) only drops or sign-extends bits; rounding adds an incrementer and saturation a
# compare-and-select. Casts from and to float cost as the float<->int conversions.
_FIXED_ONE_CYCLE = {"allo.fixed_add", "allo.fixed_sub", "allo.fixed_neg", "allo.fixed_cmp", "allo.fixed_cast_round"}
_FIXED_WIRES = {"allo.fixed_constant", "allo.fixed_cast"}


def op_cost(name: str, type_: ir.Type, operand_widths=()) -> OpCost:
    """Latency/resources of op ``name`` on values of ``type_`` (its result, or its operand for compares)."""
    if name in _NO_TIME or name in _WIRES or isinstance(type_, ir.IndexType):  # index: address arithmetic
        return FREE
    if name in _FIXED_WIRES:
        return FREE
    if name.startswith("allo.fixed_") and isinstance(type_, ir.IntegerType):
        w = ir.IntegerType(type_).width
        if name in _FIXED_ONE_CYCLE:
            return OpCost(1, 0, w, w)
        if name == "allo.fixed_mul":
            return int_mul_cost(max(operand_widths) if operand_widths else w // 2)
    if isinstance(type_, ir.FloatType):
        table = F64_OPS if ir.FloatType(type_).width > 32 else F32_OPS
        if name in table:
            return table[name]
    elif isinstance(type_, ir.IntegerType):
        w = ir.IntegerType(type_).width
        if name in _INT_ONE_CYCLE:
            return OpCost(1, 0, w, w)
        if name == "arith.muli":
            return int_mul_cost(max(operand_widths) if operand_widths else w)
        if name in _INT_DIV:
            return OpCost(w + 4, 0, w * w // 2, w * 3)
    if name in F32_OPS:  # e.g. a float op whose type we did not recognise: cost it as float32
        return F32_OPS[name]
    raise EstimateError(f"no cost for op '{name}' on {type_}; add it to the tables in allo_ext/passes/estimate/costs.py")
