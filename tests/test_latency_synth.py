"""Yosys on the latency route's Verilog stage by stage (``backends/latency/synth.py``, ``per_stage=True``):
the way large designs (a JetFormer.tiny block, 2.1 MB of Verilog) get synthesised here at all. Held against
the flattened run of the same Verilog, where that finishes."""
import pytest
import torch

from allo_ext.backends.latency.synth import stage_widths, stage_wrapper
from allo_ext.backends.rtl.yosys import SynthesisError
from allo_ext.frontend import from_pytorch
from allo_ext.models.latency_cases import hard_inputs, kernel_cases

P16 = "ap_fixed<16,6>"
CASES = kernel_cases()


@pytest.mark.rtl
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "linear 16->5"])
def test_per_stage_sum_is_close_above_the_flattened_run(name, tmp_path):
    mk, shape = CASES[name]
    x = torch.from_numpy(hard_inputs(1, shape, seed=1))
    d = from_pytorch(mk(), x, target="rtl", schedule="latency", precision=P16, cache_dir=tmp_path)
    assert d.stages >= 2, "a single stage would not test the split"
    whole = d.synthesize()
    parts = d.synthesize(per_stage=True, jobs=2)
    assert parts["stages"] == d.stages + 1 or parts["stages"] == d.stages, parts
    report = f"whole {dict(whole)} | per stage {dict(parts)}"
    assert parts["dsp"] == whole["dsp"], report
    # registers: every register of the flattened run is in one stage's wrapper; only constant or duplicate
    # bits crossing a register are kept there and not in the flattened run
    assert whole["ff"] <= parts["ff"] <= 1.10 * whole["ff"], report
    assert abs(parts["lut"] - whole["lut"]) <= 0.10 * whole["lut"], report


def test_stage_layout_is_read_from_the_top_module():
    top = ("module forward (input clk, input [15:0] model_inp, output reg [7:0] model_out);\n"
           "    reg [15:0] stage0_inp;\n    reg [31:0] stage1_inp;\n    wire [31:0] stage0_out;\n"
           "    wire [7:0] stage1_out;\n"
           "    forward_stage0 stage0 (.model_inp(stage0_inp), .model_out(stage0_out));\n"
           "    forward_stage1 stage1 (.model_inp(stage1_inp), .model_out(stage1_out));\nendmodule\n")
    assert stage_widths(top, "forward") == [("forward_stage0", 16, 32), ("forward_stage1", 32, 8)]
    with pytest.raises(SynthesisError, match="per_stage=False"):
        stage_widths(top.replace("stage1_inp;", "stage7_inp;"), "forward")
    w = stage_wrapper("forward_stage1", 32, 8, last=True)
    assert "reg [31:0] r;" in w and "q_r <= y" in w and "forward_stage1 s (.model_inp(r)" in w
    assert "q_r" not in stage_wrapper("forward_stage0", 16, 32, last=False)
