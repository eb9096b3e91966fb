"""target="rtl", schedule="latency": the static da4ml pipeline, simulated in Icarus, against target="llvm".

The llvm target's fixed-point models are bit-exact with csim (hwtests/test_fixed_models.py), so
equality with llvm is equality with the C simulation. Inputs are drawn where quantisation bugs show:
large values that wrap the 16-bit types, tiny ones near the last bit, very negative logits.
"""
import numpy as np
import pytest
import torch
from torch import nn

from allo_ext.backends.latency import LatencyDesign, StaticLoweringError
from allo_ext.frontend import from_pytorch
from allo_ext.lang.errors import AlloError, CallError

pytestmark = pytest.mark.rtl

P16 = "ap_fixed<16,6>"
WIDE = {"default": "ap_fixed<16,6>", "accum": "ap_fixed<32,12>"}


def chain(seed=0, scale=1.0):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(8, 12), nn.ReLU(), nn.Linear(12, 5)).eval()
    with torch.no_grad():
        m[0].weight.mul_(scale)
    return m


def hard_inputs(n, shape, seed=0):
    """Gaussian rows, rows near the 16-bit range (wrap), rows of values below the last bit, zeros."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n,) + shape).astype(np.float32) * 2
    x[0] = 0
    x[1] = 20.0 * np.sign(rng.normal(size=shape))  # overflows ap_fixed<16,6> after one layer: WRAP shows
    x[2] = rng.uniform(-2e-3, 2e-3, size=shape)  # around the last bit (2**-10): TRN vs RND shows
    x[3] = -31.9
    return x


def llvm(model, x, precision):
    return from_pytorch(model, torch.from_numpy(x), target="llvm", precision=precision)(x)


@pytest.mark.parametrize("precision", [P16, WIDE], ids=["acc16", "acc32"])
def test_linear_relu_linear_bit_exact_in_icarus(precision, tmp_path):
    m = chain(scale=3.0)
    x = hard_inputs(40, (8,))
    d = from_pytorch(m, torch.from_numpy(x), target="rtl", schedule="latency", precision=precision,
                     cache_dir=tmp_path)
    assert isinstance(d, LatencyDesign)
    want = llvm(m, x, precision)
    out = np.full_like(want, np.nan)  # poison: every element must come from the simulation
    out[:] = d(x)
    np.testing.assert_array_equal(out, want)
    assert d.ii == 1
    # measured in the simulation: one clock per pipeline register (input, stage boundaries, output)
    assert d.cycles == d.stages + 1 and d.last_cycles == d.cycles
    assert np.abs(want).max() > 1  # the comparison is not on zeros
    np.testing.assert_array_equal(d.predict(x), want)


def test_rounding_mode_is_traced_not_assumed(tmp_path):
    """RND and SAT types change the bits; the trace follows them (and differs from TRN/WRAP)."""
    m = chain(seed=1, scale=3.0)
    x = hard_inputs(24, (8,), seed=1)
    p = {"default": "ap_fixed<16,6,AP_RND,AP_SAT>"}
    d = from_pytorch(m, torch.from_numpy(x), target="rtl", schedule="latency", precision=p, cache_dir=tmp_path)
    want = llvm(m, x, p)
    np.testing.assert_array_equal(d(x), want)
    trn = llvm(m, x, P16)
    assert not np.array_equal(trn, want)


def test_particle_mlp_bit_exact(tmp_path):
    from allo_ext.models.baselines import ParticleMLP

    torch.manual_seed(0)
    m = ParticleMLP(n_particles=4, n_features=3, hidden=(16, 8)).eval()
    x = hard_inputs(24, (4, 3), seed=2)
    d = from_pytorch(m, torch.from_numpy(x), target="rtl", schedule="latency", precision=P16, cache_dir=tmp_path)
    want = llvm(m, x, P16)
    np.testing.assert_array_equal(d(x), want)
    assert (want < -5).any()  # log_softmax of confident rows: very negative outputs are compared too


def test_delay_budget_trades_stages_for_logic_depth():
    m = chain()
    x = torch.randn(4, 8)
    deep = from_pytorch(m, x, target="rtl", schedule="latency", precision=P16, delay=2.0)
    shallow = from_pytorch(m, x, target="rtl", schedule="latency", precision=P16, delay=20.0)
    assert deep.cycles > shallow.cycles
    assert deep.resources["ff"] > shallow.resources["ff"]
    np.testing.assert_array_equal(deep.predict(x.numpy()), shallow.predict(x.numpy()))


def test_resources_count_multipliers_as_dsp():
    """Weights are constants (shift-add, no DSP); QK^T-style activation products need multipliers."""

    class Gram(nn.Module):
        def forward(self, x):
            return torch.bmm(x, x.transpose(1, 2))

    x = torch.randn(2, 3, 4)
    d = from_pytorch(Gram(), x, target="rtl", schedule="latency", precision=P16)
    assert d.resources["dsp"] == d.resources["multipliers"] > 0
    lin = from_pytorch(chain(), torch.randn(2, 8), target="rtl", schedule="latency", precision=P16)
    assert lin.resources["dsp"] == 0 and lin.resources["lut"] > 0
    want = llvm(Gram(), x.numpy(), P16)
    np.testing.assert_array_equal(d.predict(x.numpy()), want)


def test_write_project_and_refuse_foreign_directory(tmp_path):
    d = from_pytorch(chain(), torch.randn(2, 8), target="rtl", schedule="latency", precision=P16)
    out = d.write(tmp_path / "prj")
    assert (out / "src" / "forward.v").is_file() and (out / "sim" / "tb.v").is_file()
    assert "module forward" in (out / "src" / "forward.v").read_text()
    d.write(out)  # ours: rewritten
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(AlloError, match="refusing to overwrite"):
        d.write(foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_refusals_name_the_kernel_and_node():
    class G(nn.Module):
        def forward(self, x):
            return nn.functional.gelu(x)

    with pytest.raises(StaticLoweringError, match=r"kernel 'gelu' of node 'gelu'.*no static"):
        from_pytorch(G().eval(), torch.randn(2, 4), target="rtl", schedule="latency", precision=P16)
    with pytest.raises(StaticLoweringError, match="fixed-point precision"):
        from_pytorch(chain(), torch.randn(2, 8), target="rtl", schedule="latency")
    with pytest.raises(AlloError, match="reuse_factor"):
        from_pytorch(chain(), torch.randn(2, 8), target="rtl", schedule="latency", precision=P16, reuse_factor=4)
    with pytest.raises(StaticLoweringError, match="RND_CONV"):
        from_pytorch(chain(), torch.randn(2, 8), target="rtl", schedule="latency",
                     precision="ap_fixed<16,6,AP_RND_CONV>")
    d = from_pytorch(chain(), torch.randn(2, 8), target="rtl", schedule="latency", precision=P16)
    with pytest.raises(CallError, match=r"shape \(B, 8\)"):
        d(np.zeros((2, 7), np.float32))


# ---------------------------------------------------------------------------- JetFormer pieces
def _randomise_norms(model, seed=0):
    """BatchNorm with non-trivial statistics (an identity norm would hide a wrong fold or scale)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                c = mod.num_features
                mod.running_mean.copy_(torch.randn(c, generator=g) * 0.5)
                mod.running_var.copy_(torch.rand(c, generator=g) * 2 + 0.05)
                mod.weight.copy_(1 + 0.3 * torch.randn(c, generator=g))
                mod.bias.copy_(0.2 * torch.randn(c, generator=g))
    return model.eval()


def _tokens(n=12, seed=3, shape=(5, 4)):
    """Small token tensors: an Icarus build of the unrolled block stays within seconds."""
    x = hard_inputs(n, shape, seed=seed)
    x[1] = np.clip(x[1], -4, 4)
    return x


def test_ffn_block_bit_exact_in_icarus(tmp_path):
    from allo_ext.models.layers import FeedForward

    torch.manual_seed(0)
    m = _randomise_norms(FeedForward(4, 8, "batch", "relu"))
    x = _tokens(8)
    d = from_pytorch(m, torch.from_numpy(x), target="rtl", schedule="latency", precision=P16, cache_dir=tmp_path)
    want = llvm(m, x, P16)
    np.testing.assert_array_equal(d(x), want)
    assert d.resources["dsp"] == 0  # BN folded into the linears and constant weights: no multiplier


def test_attention_block_bit_exact_in_icarus(tmp_path):
    """QK^T and AV as multipliers, softmax through the kernel's exp/reciprocal tables."""
    from allo_ext.models.layers import SelfAttention

    torch.manual_seed(1)
    m = SelfAttention(4, 2).eval()
    with torch.no_grad():
        m.q.weight.mul_(3.0)  # peaked scores: softmax rows with entries far below the maximum
    x = _tokens(6, seed=4)
    d = from_pytorch(m, torch.from_numpy(x), target="rtl", schedule="latency", precision=P16, cache_dir=tmp_path)
    want = llvm(m, x, P16)
    np.testing.assert_array_equal(d(x), want)
    assert d.resources["dsp"] > 0


def test_icarus_and_verilator_agree_bit_for_bit_and_on_cycles(tmp_path):
    """The same Verilog and testbench in both simulators: outputs equal llvm (= csim) on every bit and
    both measure the same latency. The softmax tables are read with $readmemh: Verilator 5.006 drops a
    table's last word unless the simulated copy ends in a newline (22% of these rows differ without it)."""
    from allo_ext.models.layers import SelfAttention

    torch.manual_seed(1)
    m = SelfAttention(4, 2).eval()
    with torch.no_grad():
        m.q.weight.mul_(3.0)
    x = _tokens(60, seed=7)
    want = llvm(m, x, P16)
    cycles = {}
    for sim in ("icarus", "verilator"):
        d = from_pytorch(m, torch.from_numpy(x[:2]), target="rtl", schedule="latency", precision=P16,
                         cache_dir=tmp_path, simulator=sim)
        out = np.full_like(want, np.nan)
        out[:] = d(x)
        np.testing.assert_array_equal(out, want, err_msg=sim)
        assert d.simulator().simulator == sim
        cycles[sim] = d.cycles
    assert cycles["icarus"] == cycles["verilator"] == d.stages + 1


def test_latency_measurement_rejects_what_it_cannot_measure():
    """``sim.measure`` on hand-made sample streams (warm = 8, 2 items): the step gives the latency, and
    a stream it cannot trust is an error, never a guess."""
    from allo_ext.backends.latency.sim import measure
    from allo_ext.backends.rtl.simulate import RTLSimulationError

    def stream(latency, zero="00", one="ff", items=("11", "22"), warm=8, reset="xx"):
        """The outputs of an ideal pipeline of ``latency`` clocks (the identity), registers at ``reset``."""
        inputs = [zero] * warm + [one] * warm + list(items) + [zero] * warm
        out = [reset] * (latency - 1) + inputs[:len(inputs) - latency + 1]
        return out

    lat, got = measure(stream(3), 8, 2, "icarus")
    assert lat == 3 and got == ["11", "22"]
    assert measure(stream(1), 8, 2, "verilator") == (1, ["11", "22"])
    with pytest.raises(RTLSimulationError, match="same output"):
        measure(stream(3, one="00"), 8, 2, "verilator")
    with pytest.raises(RTLSimulationError, match="did not settle|deeper"):
        measure(stream(6, reset="00"), 8, 2, "verilator")  # deeper than half the warm-up
    uneven = stream(3)
    uneven[8 + 3] = "f0"  # a value between the two responses: paths of unequal latency
    with pytest.raises(RTLSimulationError, match="unequal latency"):
        measure(uneven, 8, 2, "verilator")
    late_x = stream(3)
    late_x[17] = "x1"
    with pytest.raises(RTLSimulationError, match="undefined"):
        measure(late_x, 8, 2, "icarus")
    early = stream(3)
    early[1] = "00"  # Icarus's first defined output disagrees with the step
    with pytest.raises(RTLSimulationError, match="disagree"):
        measure(early, 8, 2, "icarus")
    with pytest.raises(RTLSimulationError, match="samples"):
        measure(stream(3)[:-1], 8, 2, "icarus")


@pytest.mark.slow
def test_jetformer_tiny_whole_model_in_verilator_bit_exact():
    """The WHOLE JetFormer.tiny at ap_fixed<16,6> (4 blocks, class token, head, log_softmax), its
    Verilog simulated in Verilator with 300 jets streamed one per clock: every output bit equals llvm
    (= csim), the testbench measures <= 100 cycles (500 ns at 200 MHz), II = 1. Minutes: the Verilator
    build of 9 MB of Verilog (cached by content in $ALLO_EXT_CACHE/latency)."""
    from bench.rtl_whole import jets, whole_model

    m = whole_model()
    x = jets(300)
    d = from_pytorch(m, torch.from_numpy(x[:1]), target="rtl", schedule="latency", precision=P16,
                     simulator="verilator")
    want = llvm(m, x, P16)
    out = np.full_like(want, np.nan)
    out[:] = d(x)
    np.testing.assert_array_equal(out, want)
    assert d.ii == 1 and d.last_cycles == d.cycles <= 100
    assert (want < -3).any() and len(np.unique(want.argmax(1))) > 1  # not a constant answer


@pytest.mark.slow
def test_jetformer_tiny_whole_model_software_model_bit_exact():
    """The whole model traced (4 blocks, class token, head, log_softmax): da4ml's bit-exact model of the
    Verilog equals llvm (= csim) on every output bit."""
    from allo_ext.models import JetFormer

    torch.manual_seed(0)
    m = _randomise_norms(JetFormer.tiny(), seed=5)
    x = hard_inputs(32, (8, 3), seed=6)
    x[1] = np.clip(x[1], -4, 4)
    d = from_pytorch(m, torch.from_numpy(x), target="rtl", schedule="latency", precision=P16)
    want = llvm(m, x, P16)
    np.testing.assert_array_equal(d.predict(x), want)
    assert d.cycles == d.stages + 1 and d.ii == 1


def test_dsp_delay_model_shortens_multiplier_paths():
    """da4ml's own multiplier model is a LUT array (16 adder levels for 16-bit operands); as a DSP48E2
    the product takes dsp_delay levels: fewer stages, the same bits."""

    class Gram(nn.Module):
        def forward(self, x):
            return torch.bmm(x, x.transpose(1, 2))

    x = torch.randn(3, 3, 4)
    lut_array = from_pytorch(Gram(), x, target="rtl", schedule="latency", precision=P16, dsp_delay=None)
    dsp = from_pytorch(Gram(), x, target="rtl", schedule="latency", precision=P16)
    assert lut_array.stages > dsp.stages
    np.testing.assert_array_equal(lut_array.predict(x.numpy()), dsp.predict(x.numpy()))
