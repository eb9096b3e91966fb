"""``precision=`` dicts on the latency route (target="rtl", schedule="latency") resolve exactly as on
llvm/csim: per node, after the importer's rewrites (a fused channels-last BatchNorm is a new node with its
own calibrated type), with RND/SAT modes and a wide accumulator. The truth is target="llvm", which is
bit-identical to csim (hwtests/test_fixed_models.py); the Verilog is simulated in Icarus.
"""
import numpy as np
import pytest
import torch
from torch import nn

from allo_ext.frontend import from_pytorch
from allo_ext.lang.errors import AlloError
from allo_ext.quant import calibrate

DEFAULT = "ap_fixed<16,6,AP_RND,AP_SAT>"  # |x| < 32, saturating
ACC = "ap_fixed<32,12>"


class TokensNorm(nn.Module):
    """(B, L, C) normalised over C by transpose -> BatchNorm1d -> transpose: fused into one node."""

    def __init__(self, c):
        super().__init__()
        self.norm = nn.BatchNorm1d(c)

    def forward(self, x):
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


def fused_norm_model(seed=0):
    """Linear, ReLU, a channels-last BatchNorm whose outputs reach ~100 (far outside the default type), ReLU,
    head. The ReLUs keep the norm from being folded into a linear: it stays a fused node. (Variances stay
    >= 0.2: the kernel reads them in the node's type, whose calibrated fraction is short here.)"""
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), TokensNorm(8), nn.ReLU(), nn.Flatten(), nn.Linear(32, 5)).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        m[0].weight.mul_(25.0)
        bn = m[2].norm
        bn.running_mean.copy_(torch.rand(8, generator=g) * 3)
        bn.running_var.copy_(torch.rand(8, generator=g) * 0.8 + 0.2)  # gains of 1..2.2
        bn.weight.copy_(1 + 0.3 * torch.randn(8, generator=g))
        bn.bias.copy_(0.5 * torch.randn(8, generator=g))
    return m


def _llvm(m, x, prec):
    return np.asarray(from_pytorch(m, torch.from_numpy(x), target="llvm", precision=prec)(x))


class _NoCpp:
    """A da4ml CombLogic whose C++ interpreter refuses the design, as da4ml 0.6's does for some muxes."""

    def __init__(self, comb):
        self.comb, self.shape = comb, comb.shape

    def predict(self, data):
        raise RuntimeError("Unsupported msb_mux shift configuration: shift0=1, shift1=-6")

    def __call__(self, row):
        return self.comb(row)


@pytest.mark.rtl
def test_calibrated_fused_batchnorm_bit_identical_to_llvm(tmp_path):
    m = fused_norm_model()
    x = np.random.default_rng(0).normal(size=(24, 4, 3)).astype(np.float32)
    x[0] = 0
    x[1] = np.random.default_rng(1).uniform(-2e-3, 2e-3, size=(4, 3))  # near the last bit: RND vs TRN
    cal = calibrate(m, torch.from_numpy(x), bits=16, reference=DEFAULT, q="RND", o="SAT")
    prec = cal.precision(default=DEFAULT, accum=ACC)
    fused = [k for k in prec if k.startswith("batch_norm_channels_last")]
    assert len(fused) == 1 and cal.max_abs[fused[0]] > 32  # only its calibrated type holds the norm's outputs
    want = _llvm(m, x, prec)
    # the comparison discriminates: without the fused node's type the norm saturates at the default's 32
    assert not np.array_equal(want, _llvm(m, x, {k: v for k, v in prec.items() if k != fused[0]}))
    with torch.no_grad():
        ref = m(torch.from_numpy(x)).numpy()
    assert np.abs(want - ref).max() < 0.05 * np.abs(ref).max()  # and the calibrated types are the right ones
    d = from_pytorch(m, torch.from_numpy(x), target="rtl", schedule="latency", precision=prec, cache_dir=tmp_path)
    np.testing.assert_array_equal(d.predict(x), want)
    # where da4ml's C++ interpreter refuses an op (it does for some AP_SAT muxes), predict falls back to
    # its Python model of the same ops: the same bits
    d_cpp, d.comb = d.comb, _NoCpp(d.comb)
    np.testing.assert_array_equal(d.predict(x), want)
    d.comb = d_cpp
    # (no Icarus run here: main's testbench measures latency by an all-zero -> all-one input step, which this
    # saturating design maps to one output; tests/test_latency_rtl.py simulates the blocks)


@pytest.mark.parametrize("route", ["llvm", "latency"])
def test_precision_key_of_a_folded_node_is_an_error(route):
    """A BatchNorm after a linear is folded into it: its node name no longer exists. Treating the key as an op
    kind would type nothing, silently."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 8), nn.BatchNorm1d(8),
                      nn.Linear(8, 5)).eval()
    x = torch.randn(4, 6)
    kw = dict(target="rtl", schedule="latency") if route == "latency" else dict(target="llvm")
    with pytest.raises(AlloError, match=r"precision\['batch_norm_1'\].*removed.*nodes that exist: .*linear_1"):
        from_pytorch(m, x, precision={"default": "ap_fixed<16,6>", "batch_norm_1": "ap_fixed<16,8>"}, **kw)
    with pytest.raises(AlloError, match=r"precision\['linaer_1'\].*neither a node.*closest nodes: linear_1"):
        from_pytorch(m, x, precision={"default": "ap_fixed<16,6>", "linaer_1": "ap_fixed<16,8>"}, **kw)
    # node names and op kinds (also of ops this model does not use: one dict for several models) are accepted
    ok = {"default": "ap_fixed<16,6>", "linear_1": "ap_fixed<16,8>", "relu": "ap_fixed<16,7>",
          "softmax": "ap_fixed<18,8>"}
    y = from_pytorch(m, x, precision=ok, **kw)
    y = y.predict(x.numpy()) if route == "latency" else y(x.numpy())
    np.testing.assert_array_equal(y, _llvm(m, x.numpy(), ok))


@pytest.mark.rtl
@pytest.mark.slow
def test_trained_jetformer_through_the_latency_route_agrees_with_float_on_held_out_jets(tmp_path):
    # issue 9's accuracy target at a small scale (bench/fixed.py --latency: the full size): JetFormer.tiny
    # trained as `allo-ext train` trains it on generated jets, calibrated to 16-bit AP_RND types on its
    # training jets, accumulators ap_fixed<32,12>, traced into the static da4ml pipeline: da4ml's bit-exact
    # model of its Verilog gives float torch's argmax on >= 99% of held-out jets, and llvm's (= csim's) bits.
    import warnings

    from allo_ext.data.generate import generate
    from allo_ext.train import TrainConfig
    from allo_ext.workflow import train_on_file

    train = generate(1000, tmp_path / "train.h5", seed=3, mpi=False, progress=False)
    test = generate(300, tmp_path / "test.h5", seed=4, mpi=False, progress=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="resume=False")
        res = train_on_file(train, tmp_path / "run", model_name="jetformer", preset="tiny",
                            config=TrainConfig(epochs=40, seed=0, max_lr=5e-3), resume=False)
    m = res.model.eval()
    X, y = res.bundle.load_data(test)
    Xtr, _ = res.bundle.load_data(train)
    X, Xtr = X.astype(np.float32), torch.from_numpy(Xtr.astype(np.float32))
    with torch.no_grad():
        ref = m(torch.from_numpy(X)).numpy()
    assert (ref.argmax(1) == y).mean() > 0.4  # trained: chance is 0.2
    cal = calibrate(m, Xtr, bits=16, q="RND")
    prec = cal.precision(default="ap_fixed<16,6,AP_RND>", accum="ap_fixed<32,12>")
    d = from_pytorch(m, torch.from_numpy(X[:1]), target="rtl", schedule="latency", precision=prec)
    yd = d.predict(X)
    assert (yd.argmax(1) == ref.argmax(1)).mean() >= 0.99
    np.testing.assert_array_equal(yd, _llvm(m, X, prec))
    assert d.resources["dsp"] <= 6840 and d.resources["lut"] <= 1_182_240  # a VU9P, by da4ml's estimate


@pytest.mark.parametrize("head", [nn.Softmax(dim=-1), nn.LogSoftmax(dim=-1)], ids=["softmax", "log_softmax"])
def test_softmax_of_a_type_with_few_fraction_bits(head):
    """The softmax's input computed in a type with fewer fraction bits than the softmax's own (calibrated types
    of JetFormer's scores and softmax differ so): its exp-table index then steps by 2**s (only every 2**s-th
    entry is reachable) and is looked up as such."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(6, 5), head).eval()
    with torch.no_grad():
        m[0].weight.mul_(8.0)  # logits spread over tens: the wide types below are used, not wrapped
    x = np.random.default_rng(0).normal(size=(64, 6)).astype(np.float32)
    kind = "softmax" if isinstance(head, nn.Softmax) else "log_softmax"
    prec = {"default": "ap_fixed<16,6>", "linear": "ap_fixed<16,10,AP_RND>", kind: "ap_fixed<16,6,AP_RND>",
            "accum": ACC}
    d = from_pytorch(m, torch.from_numpy(x), target="rtl", schedule="latency", precision=prec)
    want = _llvm(m, x, prec)
    np.testing.assert_array_equal(d.predict(x), want)
    with torch.no_grad():
        ref = m(torch.from_numpy(x)).numpy()
    assert (want.argmax(1) == ref.argmax(1)).mean() > 0.9 and np.abs(want).max() > 0.5


class DeepScores(nn.Module):
    """Attention scores two linears deep, softmax, times the values: da4ml's constant-matrix solver leaves
    the scores a scale factor of 2**-39 (q's and k's factors multiply), so the softmax clamp's constant
    ``DMAX = 687/64`` is ``687 * 2**33`` unscaled: beyond the exponents da4ml 0.6 searches for a constant's
    step (allo_ext/backends/latency/const_step.py)."""

    def __init__(self, c=2, depth=2):
        super().__init__()
        self.pre = nn.Sequential(*[nn.Linear(c, c, bias=False) for _ in range(depth)])
        self.q = nn.Linear(c, c, bias=False)
        self.k = nn.Linear(c, c, bias=False)

    def scores(self, x):
        h = self.pre(x)
        return self.q(h) @ self.k(h).transpose(1, 2)

    def forward(self, x):
        h = self.pre(x)
        return torch.softmax(self.scores(x), -1) @ (h * 4.0)


def _deep_scores():
    torch.manual_seed(0)
    m = DeepScores().eval()
    with torch.no_grad():
        m.q.weight.mul_(3.0)
        m.k.weight.mul_(3.0)
    x = np.random.default_rng(0).normal(size=(128, 4, 2)).astype(np.float32) * 3
    return m, x


def _clamped_rows(m, x, T="ap_fixed<14,7,AP_RND>"):
    """Rows whose max - min exceeds the fixed softmax's table reach DMAX (there the kernel clamps)."""
    from allo_ext.kernels.nn.fixed_softmax import Plan
    from allo_ext.lang.types import parse_precision

    with torch.no_grad():
        s = m.scores(torch.from_numpy(x)).numpy()
    return int(((s.max(-1) - s.min(-1)) > Plan(parse_precision(T), 4).DMAX).sum())


def test_softmax_clamp_of_deep_attention_scores_bit_identical_to_llvm():
    """Issue 9: with 14-bit types the softmax clamp ``min(d, DMAX)`` got a constant whose step da4ml sized
    4x finer than the clamped value's (its search stops at 2**31); the multiplexer's alignment shift was
    dropped and the route's ``predict`` read the clamped d as 0 (exp(0) = 1 for far-away scores), 20 of
    these 128 items wrong, the Verilog wrong differently."""
    from allo_ext.backends.latency.const_step import exact_const_f
    from da4ml.trace.fixed_variable import _const_f

    assert _const_f(687 * 2.0 ** 33) == -31  # the da4ml limitation this test guards against (0.6.x)
    assert exact_const_f(687 * 2.0 ** 33) == -33
    m, x = _deep_scores()
    assert _clamped_rows(m, x) >= 10  # the clamp is exercised (14 of the 512 rows)
    prec = {"default": "ap_fixed<14,7,AP_RND>", "accum": ACC}
    d = from_pytorch(m, torch.from_numpy(x[:1]), target="rtl", schedule="latency", precision=prec)
    want = _llvm(m, x, prec)
    np.testing.assert_array_equal(d.predict(x), want)
    consts = [op for op in d.comb.ops if op.opcode == 5 and op.data != 0]
    assert consts and all(op.data % 2 for op in consts)  # every constant at its own coarsest step
    with torch.no_grad():
        ref = m(torch.from_numpy(x)).numpy()
    assert np.abs(want - ref).max() < 0.5  # and llvm is the right answer (not a shared wrong one)


@pytest.mark.rtl
def test_softmax_clamp_of_deep_attention_scores_in_icarus(tmp_path):
    """The same design's Verilog (it differed from llvm on 4 of these 32 items before the fix)."""
    m, x = _deep_scores()
    x = x[:32]
    prec = {"default": "ap_fixed<14,7,AP_RND>", "accum": ACC}
    d = from_pytorch(m, torch.from_numpy(x[:1]), target="rtl", schedule="latency", precision=prec, cache_dir=tmp_path)
    np.testing.assert_array_equal(d(x), _llvm(m, x, prec))


def test_exact_const_f_against_fractions():
    """The exponent search against exact rationals: smallest f with c * 2**f an integer, da4ml's own answer
    wherever its search reaches (so no other constant changes)."""
    from fractions import Fraction

    from allo_ext.backends.latency.const_step import exact_const_f
    from da4ml.trace.fixed_variable import _const_f

    rng = np.random.default_rng(0)
    for _ in range(2000):
        c = float(int(rng.integers(-2 ** 20, 2 ** 20)) * 2.0 ** int(rng.integers(-60, 60)))
        if c == 0:
            continue
        f = exact_const_f(c)
        want = next(g for g in range(-200, 200) if (Fraction(c) * Fraction(2) ** g).denominator == 1)
        if want > -32:
            assert f == _const_f(c)
        if want <= 32:
            assert f == want, c
