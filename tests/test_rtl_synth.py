"""target="rtl", mode="synth": Yosys synth_xilinx resource counts; BitLinear without multipliers.

Each synthesis takes 10-40 s on 2 cores, so this file has two designs; results are cached by the
SystemVerilog's hash. Measured figures are in bench/results/hw.md (bench/hw.py).
"""
import numpy as np
import pytest

import allo_ext
from allo_ext.backends.rtl.yosys import parse_stat
from allo_ext.kernels import nn as K

pytestmark = [pytest.mark.rtl, pytest.mark.slow]

SHAPE = (2, 8, 4)  # M, K, N


def test_bitlinear_core_has_no_dsp_and_int8_linear_has_one():
    core = allo_ext.customize(K.bitlinear_core(*SHAPE)).build(target="rtl", mode="synth")
    base = allo_ext.customize(K.linear_int8(*SHAPE)).build(target="rtl", mode="synth")
    print(f"\nbitlinear_core {SHAPE}: {dict(core)}\nlinear_int8 {SHAPE}: {dict(base)}")
    assert core["dsp"] == 0, core.cells
    assert base["dsp"] >= 1, base.cells
    # both are real circuits (a design optimised away would be a few LUTs)
    assert core["lut"] > 100 and base["lut"] > 100 and core["ff"] > 50
    # and both compute Xq @ S.T (the RTL simulation of the very modules synthesised)
    rng = np.random.default_rng(3)
    Xq = rng.integers(-128, 128, SHAPE[:2]).astype(np.int8)
    S = np.where(rng.standard_normal(SHAPE[2:0:-1]) >= 0, 1, -1).astype(np.int8)
    want = Xq.astype(np.int32) @ S.T.astype(np.int32)
    np.testing.assert_array_equal(core.module(Xq, K.bitlinear_sign_bits(S)), want)
    np.testing.assert_array_equal(base.module(Xq, S), want)


def test_parse_stat_counts_cell_kinds():
    text = """
=== k ===
   Number of cells:                 9
     CARRY4                          2
     DSP48E1                         1
     FDRE                           10
     FDSE                            1
     LUT2                            5
     LUT6                            3
     RAMB18E1                        1
     RAM32M                          2
     SRL16E                          4
     SRLC32E                         1
"""
    r = parse_stat(text)
    # shift-register LUTs are LUTs (Vivado's "CLB LUTs"), LUT RAM is counted apart
    assert dict(r) == {"lut": 13, "ff": 11, "dsp": 1, "bram": 0.5, "lutram": 2, "carry": 2, "srl": 5}
