"""Fixed-point QAT (allo_ext/compress/fixed_qat.py) is bit-exact with what the compiler builds.

- The torch rounding (``quantize_value``) and the numpy one (``lang.fixed.quantize``), one table on two
  array modules, against the independent ap_fixed model (hwtests/ap_model.py)
  for every quantisation and overflow mode, at ties, range edges and far outside the range.
- The fake-quantised forward against ``from_pytorch(..., target="llvm", precision=...)`` on MLPs
  (BatchNorm folded and unfolded, softmax and log_softmax, per-layer types, wide accumulators, every
  accumulation path: one-shot, per-product rounding, in-order) and on JetFormer.tiny: every output bit
  equal.
- The same comparison fails when the fake-quantised forward rounds differently or skips a
  quantisation point: the inputs are drawn where those differences show.
"""
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from allo_ext import Fixed
from allo_ext.compress import fixed_qat
from allo_ext.compress.fixed_qat import FixedFakeQuant, fake_quant, quantize_value
from allo_ext.frontend.compile import from_pytorch
from allo_ext.lang import fixed as fx
from allo_ext.lang.types import O_MODES, Q_MODES

import ap_model as ap  # hwtests/ap_model.py (pytest puts this directory on sys.path)


# ------------------------------------------------------------------------------------ rounding
@settings(max_examples=60, deadline=None)
@given(bits=st.integers(2, 30), frac=st.integers(-4, 34), signed=st.booleans(), q=st.sampled_from(Q_MODES),
       o=st.sampled_from(O_MODES), seed=st.integers(0, 2 ** 16))
def test_quantize_value_matches_ap_model(bits, frac, signed, q, o, seed):
    t = ap.T(bits, frac, signed, q, o)
    ours = Fixed(bits, frac, q, o, signed=signed)
    rng = np.random.default_rng(seed)
    step = 2.0 ** -frac
    raw = rng.integers(-(2 ** (bits + 1)), 2 ** (bits + 1), size=24)
    vals = np.concatenate([
        raw * step,                      # on the grid, in and out of range
        (raw + 0.5) * step,              # ties of every rounding mode
        (raw + rng.uniform(0, 1, 24)) * step,
        [ours.min, ours.max, ours.min - step / 2, ours.max + step / 2, 0.0, -step / 2, step / 2],
        rng.normal(0, 2.0 ** (bits - frac + 2), 8),  # far outside
    ])
    want = np.array([float(t.value(ap.quantise(Fraction(float(v)), t))) for v in vals])
    # the torch rounding of QAT and the numpy rounding of the compiled kernels' interfaces are one
    # table (lang.fixed.round_scaled) run on two array modules: both must match the model
    for name, got in (("torch", quantize_value(torch.from_numpy(vals), ours).numpy()),
                      ("numpy", fx.dequantize(fx.quantize(vals, ours), ours))):
        assert np.array_equal(got, want), (name, ours, vals[got != want], got[got != want], want[got != want])


def test_fake_quant_passes_the_gradient_straight_through():
    x = torch.tensor([0.1, -3.7, 100.0, 0.0], dtype=torch.float64, requires_grad=True)
    y = fake_quant(x, Fixed(8, 5))
    (y * torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)).sum().backward()
    assert torch.equal(x.grad, torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64))
    assert y[2].item() != 100.0  # wrapped: out of ap_fixed<8,3>'s range


# ------------------------------------------------------------------------------------ models
class MLP(torch.nn.Module):
    """BatchNorm after a linear (folded into it), before a ReLU (its own fixed kernel), a residual add,
    a scalar multiply, a division by a constant and both softmax kernels."""

    def __init__(self, f=6, h=16, n=5, log=True):
        super().__init__()
        self.fc1 = torch.nn.Linear(f, h)
        self.bn1 = torch.nn.BatchNorm1d(h)
        self.bn2 = torch.nn.BatchNorm1d(h)
        self.fc2 = torch.nn.Linear(h, h, bias=False)
        self.fc3 = torch.nn.Linear(h, n)
        self.log = log

    def forward(self, x):
        h = self.bn1(self.fc1(x))
        h = h + self.fc2(torch.relu(self.bn2(h))) * 0.75
        z = self.fc3(torch.relu(h)) / 3.0
        return torch.log_softmax(z, -1) if self.log else torch.softmax(z, -1)


def _scramble_bn(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) * 2 + 0.05)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)
    return model.eval()


def _mlp(log=True, seed=0):
    torch.manual_seed(seed)
    return _scramble_bn(MLP(log=log), seed)


def _inputs(n, shape, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((n,) + shape, generator=g) * scale
    x[: n // 4] *= 8  # large enough to overflow the narrow types (WRAP and SAT both exercised)
    return x


def _compiled(model, x, precision, batch=32):
    fn = from_pytorch(model, x[:1], target="llvm", precision=precision, batch_size=batch)
    return np.asarray(fn(x.numpy()), dtype=np.float64)


def _fake(model, x, precision, batch=32):
    with torch.no_grad():
        return FixedFakeQuant(model, precision, example=x[:1], batch_size=batch)(x).numpy()


MLP_PRECISIONS = [
    "ap_fixed<16,6>",                                             # accumulator = T: per-product rounding
    {"default": "ap_fixed<10,4>", "accum": "ap_fixed<24,8>"},     # wide accumulator: one-shot sum
    "ap_fixed<8,3,AP_RND,AP_SAT>",                                # saturating accumulator: in order
    "ap_fixed<10,4,AP_RND_CONV,AP_WRAP>",                         # ties to even: in order
    {"default": "ap_fixed<12,5>", "linear_1": "ap_fixed<16,6>", "softmax": "ap_fixed<9,2>",
     "log_softmax": "ap_fixed<9,4>", "accum": "ap_fixed<20,8,AP_TRN_ZERO,AP_WRAP>"},  # per layer, conversions
]


@pytest.mark.parametrize("log", [True, False], ids=["log_softmax", "softmax"])
@pytest.mark.parametrize("precision", MLP_PRECISIONS, ids=lambda p: str(p)[:40])
def test_mlp_fake_quant_is_bit_exact_with_llvm(precision, log):
    model = _mlp(log)
    x = _inputs(70, (6,))  # 70: three compiled batches of 32, the last padded
    want = _compiled(model, x, precision)
    got = _fake(model, x, precision)
    assert np.array_equal(got, want), f"{(got != want).sum()} outputs differ, max {np.abs(got - want).max()}"


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["ap_fixed<16,6>", {"default": "ap_fixed<8,3>", "accum": "ap_fixed<18,6>"}],
                         ids=["16_6", "8_3_acc18"])
def test_jetformer_tiny_fake_quant_is_bit_exact_with_llvm(precision):
    from allo_ext.models import JetFormer

    torch.manual_seed(1)
    model = _scramble_bn(JetFormer.tiny(), 1)
    x = _inputs(40, (8, 3), seed=1, scale=1.5)
    want = _compiled(model, x, precision)
    got = _fake(model, x, precision)
    assert np.array_equal(got, want), f"{(got != want).sum()} outputs differ, max {np.abs(got - want).max()}"


# ------------------------------------------------------------------------------------ the check can fail
def test_a_different_rounding_mode_is_detected():
    model = _mlp(True)
    x = _inputs(64, (6,))
    want = _compiled(model, x, "ap_fixed<16,6>")
    got = _fake(model, x, "ap_fixed<16,6,AP_RND,AP_WRAP>")
    assert not np.array_equal(got, want)
    got = _fake(model, x, "ap_fixed<16,6,AP_TRN,AP_SAT>")
    assert not np.array_equal(got, want)


@pytest.mark.parametrize("mutation", ["constants", "accumulator", "bn_scale", "softmax_sum", "conversion"])
def test_a_dropped_quantisation_point_is_detected(mutation, monkeypatch):
    # the BatchNorm scale and offset held with fewer fraction bits (12) than the activations' products
    # (10 + 10): their rounding shows in the outputs
    precision = {"default": "ap_fixed<16,6>", "linear_1": "ap_fixed<12,5>", "accum": "ap_fixed<20,8>"}
    model = _mlp(mutation != "softmax_sum")
    x = _inputs(64, (6,))
    want = _compiled(model, x, precision)
    if mutation == "constants":  # weights used at float32 instead of the node's type
        orig = fixed_qat.to_type
        monkeypatch.setattr(fixed_qat, "to_type",
                            lambda v, T: v.t.double() if isinstance(v, fixed_qat.Const) else orig(v, T))
    elif mutation == "accumulator":  # the sum rounded once instead of after every product
        monkeypatch.setattr(fixed_qat, "_accumulate", lambda self, T, prods, bias, k, what, total=None:
                            quantize_value(prods().sum(-1) + (0 if bias is None else bias), T))
    elif mutation == "bn_scale":  # the folded BatchNorm scale and offset kept in float64, unrounded
        from allo_ext.kernels.nn import norm

        monkeypatch.setattr(norm, "round_nearest", lambda x, frac: np.asarray(x, dtype=np.float64))
    elif mutation == "softmax_sum":  # exp values not rounded into the sum type
        orig_q = fixed_qat.quantize_value
        monkeypatch.setattr(fixed_qat, "quantize_value",
                            lambda v, T: v if not T.signed and T.frac >= 8 else orig_q(v, T))
    elif mutation == "conversion":  # a tensor of another type read without conversion
        orig = fixed_qat.to_type
        monkeypatch.setattr(fixed_qat, "to_type",
                            lambda v, T: v.t if isinstance(v, fixed_qat.Val) else orig(v, T))
    got = _fake(model, x, precision)
    assert not np.array_equal(got, want), f"dropping '{mutation}' went unnoticed"


def test_gradients_reach_every_parameter():
    model = _mlp(True)
    fq = FixedFakeQuant(model, "ap_fixed<16,6>", example=torch.zeros(1, 6), batch_size=32)
    model.zero_grad()
    out = fq(_inputs(32, (6,), scale=1.0))
    torch.nn.functional.nll_loss(out, torch.arange(32) % 5).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
