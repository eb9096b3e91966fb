"""Every cost constant of the estimate, pinned to the figure its documentation states.

The expected values are written out here from the cost-model documentation (the package docstring
of ``allo_ext.passes.estimate`` and the Vitis core latencies it cites); a change to any constant
fails a test and has to be made in both places, deliberately.
"""
import pytest
from torch_mlir import ir

from allo_ext.passes.estimate import costs
from allo_ext.passes.estimate.costs import F32_OPS, F64_OPS, OpCost, int_mul_cost, op_cost

# (latency, DSP, LUT, FF) per float32 op.
F32_EXPECTED = {
    "arith.addf": (4, 2, 220, 200), "arith.subf": (4, 2, 220, 200),
    "arith.mulf": (3, 3, 130, 150),
    "arith.divf": (12, 0, 800, 760), "arith.remf": (12, 0, 800, 760),
    "math.sqrt": (12, 0, 480, 400), "math.rsqrt": (12, 0, 480, 400),
    "math.exp": (9, 7, 800, 300), "math.log": (12, 8, 900, 600),
    "math.tanh": (30, 10, 2500, 2500), "math.erf": (30, 10, 2500, 2500), "math.powf": (30, 10, 2500, 2500),
    "arith.cmpf": (1, 0, 70, 0), "arith.maximumf": (1, 0, 70, 0), "arith.minimumf": (1, 0, 70, 0),
    "arith.maxnumf": (1, 0, 70, 0), "arith.minnumf": (1, 0, 70, 0),
    "arith.negf": (0, 0, 0, 0), "math.absf": (0, 0, 0, 0),
    "arith.sitofp": (5, 0, 220, 340), "arith.uitofp": (5, 0, 220, 340),
    "arith.fptosi": (4, 0, 200, 200), "arith.fptoui": (4, 0, 200, 200),
    "math.roundeven": (4, 0, 300, 200), "math.floor": (4, 0, 300, 200),
    "math.ceil": (4, 0, 300, 200), "math.round": (4, 0, 300, 200),
    "arith.extf": (1, 0, 100, 100), "arith.truncf": (2, 0, 150, 100),
}
F64_EXPECTED = {
    "arith.addf": (5, 3, 700, 600), "arith.subf": (5, 3, 700, 600), "arith.mulf": (6, 11, 300, 350),
    "arith.divf": (30, 0, 3200, 3000), "math.sqrt": (30, 0, 1800, 1700), "math.exp": (20, 26, 2000, 1500),
    "math.log": (20, 30, 2500, 2000),
    "arith.cmpf": (1, 0, 70, 0), "arith.maximumf": (1, 0, 70, 0), "arith.minimumf": (1, 0, 70, 0),
    "arith.negf": (0, 0, 0, 0), "math.absf": (0, 0, 0, 0),
}


def _t(c: OpCost):
    return (c.latency, c.dsp, c.lut, c.ff)


def test_float32_op_costs():
    assert {k: _t(v) for k, v in F32_OPS.items()} == F32_EXPECTED


def test_float64_op_costs():
    got = {k: _t(v) for k, v in F64_OPS.items()}
    for k, v in F64_EXPECTED.items():
        assert got[k] == v, k
    # Every other float64 op is its float32 cost doubled.
    for k in set(got) - set(F64_EXPECTED):
        lat, dsp, lut, ff = F32_EXPECTED[k]
        assert got[k] == (2 * lat, 2 * dsp, 2 * lut, 2 * ff), k


def test_memory_and_loop_constants():
    assert (costs.MEM_PORTS, costs.RAM_READ_LATENCY, costs.REG_READ_LATENCY, costs.STORE_LATENCY,
            costs.SCALAR_ACCESS_LATENCY, costs.LOOP_OVERHEAD) == (2, 2, 1, 1, 0, 1)
    assert (costs.LOOP_CONTROL_LUT, costs.LOOP_CONTROL_FF, costs.LUTRAM_MAX_BITS) == (40, 30, 1024)
    assert costs.BRAM18_SHAPES == ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512))
    assert all(w * d <= 18 * 1024 for w, d in costs.BRAM18_SHAPES)  # each shape fits one 18Kb block


@pytest.mark.parametrize("width,expected", [(1, (1, 1, 10, 20)), (18, (1, 1, 10, 20)), (19, (2, 3, 30, 60)),
                                            (32, (2, 3, 30, 60)), (33, (4, 10, 80, 150)), (64, (4, 10, 80, 150))])
def test_integer_multiplier_by_width(width, expected):
    assert _t(int_mul_cost(width)) == expected


@pytest.mark.parametrize("width", [8, 16, 32])
def test_integer_ops_by_width(width):
    with ir.Context():
        t = ir.IntegerType.get_signless(width)
        for name in ("arith.addi", "arith.subi", "arith.cmpi", "arith.maxsi", "arith.minsi", "arith.maxui",
                     "arith.minui", "arith.shli", "arith.shrsi", "arith.shrui", "math.absi"):
            assert _t(op_cost(name, t)) == (1, 0, width, width), name
        for name in ("arith.andi", "arith.ori", "arith.xori", "arith.extsi", "arith.extui", "arith.trunci",
                     "arith.index_cast", "arith.bitcast", "arith.select", "arith.constant"):
            assert _t(op_cost(name, t)) == (0, 0, 0, 0), name
        for name in ("arith.divsi", "arith.divui", "arith.remsi", "arith.remui"):
            assert _t(op_cost(name, t)) == (width + 4, 0, width * width // 2, width * 3), name
        # A product of narrow operands (extended from 8 bits) costs by its source width.
        assert _t(op_cost("arith.muli", t, operand_widths=(8, 8))) == (1, 1, 10, 20)
        assert _t(op_cost("arith.muli", t)) == _t(int_mul_cost(width))


def test_index_arithmetic_is_free_and_unknown_ops_are_refused():
    with ir.Context():
        assert _t(op_cost("arith.muli", ir.IndexType.get())) == (0, 0, 0, 0)
        with pytest.raises(costs.EstimateError, match="no cost for op 'arith.frobnicate'"):
            op_cost("arith.frobnicate", ir.IntegerType.get_signless(8))
